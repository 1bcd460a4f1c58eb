#!/usr/bin/env python
"""Regenerate ``sample_data/`` bit-for-bit: a synthetic spine CT (DICOM) and its truth.

Usage::

    python tools/make_sample_data.py            # rewrites sample_data/dicom and sample_data/truth
    python tools/make_sample_data.py --out DIR  # writes DIR/dicom and DIR/truth instead

The phantom, its DICOM files (RLE lossless, fixed UIDs and dates) and the truth files
depend only on :data:`SAMPLE` and the code, so two runs give identical bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

from needleplan.io.dicom_write import write_dicom_series  # noqa: E402
from needleplan.phantom import make_phantom  # noqa: E402

#: The bundled sample: T11-L3, prone, ribs on T11/T12, a lytic lesion in L1.
SAMPLE = dict(levels=("T11", "T12", "L1", "L2", "L3"), spacing_mm=(1.0, 1.0, 1.25),
              patient_position="HFP", lesion_level="L1", noise_hu=18.0, seed=2024)
UID_SEED = "needleplan-sample-data-v1"
SERIES_DESCRIPTION = "SPINE T11-L3 synthetic phantom (needleplan)"


def _write_labels(labels: np.ndarray, ijk_to_lps: np.ndarray, path: Path) -> Path:
    """NIfTI label map with the CT's geometry (SimpleITK writes LPS -> RAS itself)."""
    import SimpleITK as sitk

    aff = np.asarray(ijk_to_lps, float)
    sp = np.linalg.norm(aff[:3, :3], axis=0)
    img = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(labels, np.uint8).transpose(2, 1, 0)))
    img.SetSpacing([float(v) for v in sp])
    img.SetOrigin([float(v) for v in aff[:3, 3]])
    img.SetDirection([float(v) for v in (aff[:3, :3] / sp).ravel()])
    tmp = path.with_name(path.name + ".tmp.nii.gz")
    sitk.WriteImage(img, str(tmp), useCompression=True)
    tmp.replace(path)
    return path


def make_sample_data(out: Path) -> list[Path]:
    """Write ``out/dicom/*.dcm`` and ``out/truth/*``; return every file written."""
    out = Path(out)
    ph = make_phantom(**SAMPLE)
    dicom_dir, truth_dir = out / "dicom", out / "truth"
    for d in (dicom_dir, truth_dir):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    files = write_dicom_series(ph.volume, dicom_dir, series_description=SERIES_DESCRIPTION,
                               transfer_syntax="RLELossless", uid_seed=UID_SEED)
    aff = ph.truth.ijk_to_lps
    files.append(_write_labels(ph.truth.labels, aff, truth_dir / "vertebrae.nii.gz"))
    files.append(_write_labels(ph.truth.parts, aff, truth_dir / "parts.nii.gz"))
    files.append(_write_labels(ph.truth.canal, aff, truth_dir / "canal.nii.gz"))
    doc = ph.truth.to_dict()
    doc["phantom"] = {"generator": "needleplan.phantom.make_phantom", "params": ph.params,
                      "lesion_voxels": int(ph.structures["lesion"].sum()) if "lesion" in ph.structures else 0}
    path = truth_dir / "anatomy.json"
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    files.append(path)
    return files


def digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder/dicom`` and ``folder/truth`` (relative names)."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for sub in ("dicom", "truth") for p in sorted((folder / sub).rglob("*")) if p.is_file()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "sample_data", help="output folder")
    args = ap.parse_args(argv)
    files = make_sample_data(args.out)
    size = sum(p.stat().st_size for p in files)
    print(f"wrote {len(files)} files, {size / 1e6:.2f} MB, to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
