"""`needleplan plan PATH --out DIR`: load, segment, plan and write the plan folder."""

from __future__ import annotations

import sys
import time

_APPROACHES = ("auto", "transpedicular", "bipedicular", "anterolateral", "parapedicular")


def add_parser(sub):
    p = sub.add_parser(
        "plan", help="plan needle trajectories on a CT (plan.json, plan.pdf, plan.mrk.json, label maps)",
        description="Segment the spine of a CT and plan safe needle paths for the requested levels. "
                    "Writes DIR/plan.json, DIR/plan.pdf, DIR/plan.mrk.json (3D Slicer) and "
                    "DIR/vertebrae.nii.gz (VerSe labels on the CT grid).")
    p.add_argument("path", help="DICOM folder or file, or a NIfTI/NRRD/MHA CT")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created when missing)")
    p.add_argument("--levels", nargs="+", metavar="LEVEL", help="levels to plan, e.g. L1 L2 (default: all in view)")
    p.add_argument("--approach", choices=_APPROACHES, default="auto",
                   help="auto = transpedicular for T/L, anterolateral for C3-C7 (default)")
    p.add_argument("--gauge", type=int, default=11, choices=(8, 10, 11, 13, 15), help="needle gauge (default 11)")
    p.add_argument("--needle-length", type=float, default=None, metavar="MM",
                   help="needle length in mm (default: 100 or 150, the shortest that reaches)")
    p.add_argument("--canal-margin", type=float, default=2.0, metavar="MM",
                   help="minimum distance needle surface to canal in mm (default 2)")
    p.add_argument("--labels", metavar="FILE", help="vertebra label map to use instead of segmenting "
                                                     "(VerSe or TotalSegmentator NIfTI)")
    p.add_argument("--series", metavar="UID", help="SeriesInstanceUID to use from a DICOM folder")
    p.add_argument("--views", action="store_true", help="also write bull's-eye and progression PNGs")
    p.add_argument("--label-formats", nargs="+", default=["nii.gz"], choices=("nii.gz", "nrrd", "mha"),
                   metavar="FMT", help="label map formats: nii.gz (default), nrrd, mha")
    p.add_argument("--anonymize", action="store_true",
                   help="leave the patient's identity, UIDs and the input path out of every output")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from needleplan.pipeline import run_plan_job

    t0 = time.perf_counter()

    def progress(done, total, what):
        print(f"needleplan plan: [{done}/{total}] {what} ({time.perf_counter() - t0:.1f} s)",
              file=sys.stderr, flush=True)

    job = run_plan_job(args.path, args.out, levels=args.levels, approach=args.approach, gauge=args.gauge,
                       needle_length_mm=args.needle_length, canal_margin_mm=args.canal_margin,
                       labels=args.labels, series_uid=args.series, anonymize=args.anonymize,
                       views=args.views, label_formats=tuple("." + f for f in args.label_formats),
                       progress=progress)
    for lp in job.plan.levels:
        print(f"needleplan plan: {lp.level}: {lp.recommendation}"
              + (f" ({lp.reasons[0]})" if lp.reasons else ""), file=sys.stderr)
    n_ok = sum(t.status == "ok" for t in job.plan.trajectories)
    print(f"needleplan plan: {len(job.plan.trajectories)} trajectories ({n_ok} ok) in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    for key, path in job.files.items():
        print(f"  {key:<10} {path}")
    return 0
