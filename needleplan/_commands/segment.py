"""``needleplan segment PATH --out DIR``: vertebra labels and anatomy (landmarks) of a CT.

Writes ``DIR/vertebrae.nii.gz`` (VerSe numbers on the CT grid, LPS-correct affine) and
``DIR/anatomy.json`` (every landmark and measurement in LPS mm), both atomically.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from needleplan.errors import InputError

__all__ = ["add_parser", "run"]


def add_parser(sub):
    p = sub.add_parser(
        "segment", help="segment the spine: DIR/vertebrae.nii.gz and DIR/anatomy.json",
        description="Label the vertebrae of a CT (VerSe numbers) and measure canal, pedicles, "
                    "endplates and body heights.  With --labels an existing TotalSegmentator or "
                    "VerSe label map is used instead of segmenting.")
    p.add_argument("path", metavar="PATH", help="DICOM folder or file, or a NIfTI/NRRD/MHA CT")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created when missing)")
    p.add_argument("--labels", metavar="FILE", help="vertebra labels to import: a TotalSegmentator 'total' "
                   "file, a folder of vertebrae_*.nii.gz masks, or a VerSe label NIfTI")
    p.add_argument("--labels-format", choices=("auto", "totalseg", "verse", "folder"), default="auto",
                   help="how to read --labels when its ids are ambiguous (default: auto)")
    p.add_argument("--backend", choices=("auto", "classical", "totalsegmentator"), default="auto",
                   help="auto = TotalSegmentator when installed with its weights, else classical")
    p.add_argument("--series", metavar="UID", help="SeriesInstanceUID to use from a DICOM folder")
    p.set_defaults(func=run)
    return p


def _progress(what: str):
    t0 = time.perf_counter()

    def cb(done, total, msg=""):
        print(f"needleplan segment: {what} {done}/{total} {msg} ({time.perf_counter() - t0:.1f} s)",
              file=sys.stderr, flush=True)
    return cb


def _finite(obj):
    """JSON has no NaN: unmeasured numbers become null."""
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def run(args) -> int:
    from needleplan.io import atomic_write, load_ct, write_label_image
    from needleplan.segmentation import segment

    src = Path(args.path)
    if not src.exists():
        raise InputError(f"'{src}' does not exist", path=src)
    if args.labels and not Path(args.labels).exists():
        raise InputError(f"--labels '{args.labels}' does not exist", path=args.labels)
    from needleplan.io import prepare_out_dir

    out = prepare_out_dir(args.out)

    print(f"needleplan segment: loading {src}", file=sys.stderr, flush=True)
    volume = load_ct(src, series_uid=args.series, progress=_progress("loading"))
    print(f"needleplan segment: {'x'.join(str(s) for s in volume.shape)} voxels; "
          f"{'importing ' + str(args.labels) if args.labels else 'segmenting'}", file=sys.stderr, flush=True)
    anatomy = segment(volume, labels=args.labels, backend=args.backend, labels_format=args.labels_format,
                      progress=_progress("segmenting"))
    write_label_image(anatomy.labels, anatomy.ijk_to_lps, out / "vertebrae.nii.gz")
    doc = anatomy.to_dict()
    doc["input"] = {"source": str(src), "series_uid": volume.series_uid,
                    "shape": [int(s) for s in volume.shape],
                    "spacing_mm": [round(float(s), 4) for s in volume.spacing_mm]}
    with atomic_write(out / "anatomy.json", "w") as f:
        json.dump(_finite(doc), f, indent=1, allow_nan=False)
    for va in anatomy.sorted_vertebrae():
        peds = ", ".join(f"{p.side} {p.width_mm:.1f}x{p.height_mm:.1f} mm" for p in va.pedicles.values())
        extra = f"; {'; '.join(va.flags)}" if va.flags else ""
        print(f"needleplan segment: {va.name}: pedicles {peds or 'none'}{extra}", file=sys.stderr)
    for msg in anatomy.messages:
        print(f"needleplan segment: note: {msg}", file=sys.stderr)
    print(f"needleplan segment: {len(anatomy.vertebrae)} vertebrae -> {out / 'vertebrae.nii.gz'}, "
          f"{out / 'anatomy.json'}", file=sys.stderr)
    return 0
