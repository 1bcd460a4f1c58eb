"""`needleplan plan PATH --out DIR`: load, segment, plan; write plan.json and vertebrae.nii.gz."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from needleplan.errors import InputError, NeedlePlanError, OutputError

log = logging.getLogger("needleplan")

_APPROACHES = ("auto", "transpedicular", "bipedicular", "anterolateral", "parapedicular")


def add_parser(sub):
    p = sub.add_parser(
        "plan", help="plan needle trajectories on a CT (writes plan.json and vertebrae.nii.gz)",
        description="Segment the spine of a CT and plan safe needle paths for the requested levels.")
    p.add_argument("path", help="DICOM folder or file, or a NIfTI/NRRD/MHA CT")
    p.add_argument("--out", required=True, help="output folder (created when missing)")
    p.add_argument("--levels", nargs="+", metavar="LEVEL", help="levels to plan, e.g. L1 L2 (default: all in view)")
    p.add_argument("--approach", choices=_APPROACHES, default="auto",
                   help="auto = transpedicular for T/L, anterolateral for C3-C7 (default)")
    p.add_argument("--gauge", type=int, default=11, choices=(8, 10, 11, 13, 15), help="needle gauge (default 11)")
    p.add_argument("--needle-length", type=float, default=100.0, metavar="MM",
                   help="needle length in mm (default 100)")
    p.add_argument("--canal-margin", type=float, default=2.0, metavar="MM",
                   help="minimum distance needle surface to canal in mm (default 2)")
    p.add_argument("--labels", metavar="FILE", help="vertebra label map to use instead of segmenting "
                                                     "(VerSe or TotalSegmentator NIfTI)")
    p.add_argument("--series", metavar="UID", help="SeriesInstanceUID to use from a DICOM folder")
    p.add_argument("--anonymize", action="store_true",
                   help="leave the input path and every identifying field out of the outputs")
    p.set_defaults(func=run)
    return p


def _progress(what: str):
    t0 = time.perf_counter()

    def cb(done, total, msg=""):
        print(f"needleplan plan: {what} {done}/{total} {msg} ({time.perf_counter() - t0:.1f} s)",
              file=sys.stderr, flush=True)
    return cb


def _segment(volume, labels_path):
    """``needleplan.segmentation.segment`` (the label file imported when given)."""
    from needleplan.segmentation import segment

    return segment(volume, labels=labels_path, progress=_progress("segmenting"))


def run(args) -> int:
    from needleplan.io import load_ct, write_label_image, write_plan_json
    from needleplan.planner import PlanRequest, plan

    src = Path(args.path)
    if not src.exists():
        raise InputError(f"'{src}' does not exist", path=src)
    if args.labels and not Path(args.labels).exists():
        raise InputError(f"--labels '{args.labels}' does not exist", path=args.labels)
    if not (20.0 <= args.needle_length <= 300.0):
        raise InputError(f"--needle-length {args.needle_length:g} must be 20-300 mm")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder '{out}': {exc.strerror or exc}", path=out) from exc
    if not os.access(out, os.W_OK):
        raise OutputError(f"output folder '{out}' is not writable", path=out)

    print(f"needleplan plan: loading {'input' if args.anonymize else src}", file=sys.stderr, flush=True)
    volume = load_ct(src, series_uid=args.series, progress=_progress("loading"))
    print(f"needleplan plan: {volume.shape[0]}x{volume.shape[1]}x{volume.shape[2]} voxels; segmenting",
          file=sys.stderr, flush=True)
    anatomy = _segment(volume, args.labels)
    if not anatomy.vertebrae:
        raise NeedlePlanError(f"no vertebra found in '{'input' if args.anonymize else src}'")
    levels = None
    if args.levels:
        from needleplan.segmentation.model import level_label, level_name

        try:
            levels = [level_name(level_label(lv)) for lv in args.levels]
        except ValueError as exc:
            raise InputError(f"--levels: {exc}") from None
        have = {va.name for va in anatomy.vertebrae.values()}
        missing = [lv for lv in levels if lv not in have]
        if missing:
            raise InputError(f"--levels {' '.join(missing)} not in the scan (found: "
                             f"{', '.join(va.name for va in anatomy.sorted_vertebrae())})")
    request = PlanRequest(levels=levels, approach=args.approach, gauge=args.gauge,
                          needle_length_mm=args.needle_length, canal_margin_mm=args.canal_margin)
    t0 = time.perf_counter()
    result = plan(volume, anatomy, request,
                  progress=lambda i, n, name: print(f"needleplan plan: planning {name} ({i + 1}/{n})",
                                                    file=sys.stderr, flush=True))
    log.debug("planned in %.2f s", time.perf_counter() - t0)
    result.input.update(_input_identity(volume, src, anonymize=args.anonymize))
    if args.anonymize:
        for key in ("series_uid", "study_uid", "source"):
            result.input.pop(key, None)
    result.input["segmentation"] = anatomy.method if not args.anonymize else anatomy.method.split(":")[0]
    write_label_image(anatomy.labels, anatomy.ijk_to_lps, out / "vertebrae.nii.gz")
    write_plan_json(result, out / "plan.json")
    # ---- REPORT HOOK (lead / report engineer): write out/plan.pdf and out/plan.mrk.json here,
    # ---- from `result` (Plan) and `volume`, honouring args.anonymize.
    for lp in result.levels:
        print(f"needleplan plan: {lp.level}: {lp.recommendation}"
              + (f" ({lp.reasons[0]})" if lp.reasons else ""), file=sys.stderr)
    n_ok = sum(t.status == "ok" for t in result.trajectories)
    print(f"needleplan plan: {len(result.trajectories)} trajectories ({n_ok} ok) -> {out / 'plan.json'}",
          file=sys.stderr)
    return 0


def _input_identity(volume, src: Path, *, anonymize: bool) -> dict:
    """Non-identifying description of the input (never PHI; no path when anonymising)."""
    meta = volume.meta or {}
    d = {"series_uid": None if anonymize else meta.get("series_uid"),
         "study_uid": None if anonymize else meta.get("study_uid"),
         "patient_position": meta.get("patient_position"),
         "modality": meta.get("modality"),
         "shape": [int(x) for x in volume.shape],
         "spacing_mm": [round(float(x), 4) for x in volume.spacing_mm],
         "axes": "".join(volume.axis_codes),
         "anonymized": bool(anonymize)}
    if not anonymize:
        d["source"] = str(src)
    return {k: v for k, v in d.items() if v is not None}
