"""`needleplan gui [PATH] [--plan plan.json] [--labels FILE]`: the desktop application."""

from __future__ import annotations

from pathlib import Path

from needleplan.errors import InputError, NeedlePlanError


def add_parser(sub):
    p = sub.add_parser("gui", help="open the desktop application (slice views, 3-D, fluoroscopy, plan editing)",
                       description="Open the planning workstation, optionally with a study and a plan.")
    p.add_argument("path", nargs="?", help="DICOM folder, DICOM file or NIfTI/NRRD/MHA file to open")
    p.add_argument("--plan", dest="plan_path", metavar="PLAN_JSON", help="plan.json to open with the study")
    p.add_argument("--series", dest="series_uid", metavar="UID", help="series to open from a DICOM folder")
    p.add_argument("--labels", metavar="FILE",
                   help="vertebra label map (TotalSegmentator or VerSe NIfTI/NRRD) to use instead of segmenting")
    p.add_argument("--auto-plan", action="store_true", help="segment and plan right after loading")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    if args.path is not None and not Path(args.path).exists():
        raise InputError(f"'{args.path}' does not exist", path=args.path)
    if args.plan_path is not None and not Path(args.plan_path).is_file():
        raise InputError(f"plan file '{args.plan_path}' does not exist", path=args.plan_path)
    if args.labels is not None and not Path(args.labels).exists():
        raise InputError(f"label file '{args.labels}' does not exist", path=args.labels)
    if args.labels is not None and args.path is None:
        raise InputError("--labels needs the CT it belongs to: needleplan gui CT --labels FILE")
    from needleplan.ui import display_problem, run_gui

    problem = display_problem()
    if problem:
        raise NeedlePlanError(problem)
    return run_gui(args.path, args.plan_path, series_uid=args.series_uid, auto_plan=args.auto_plan,
                   labels=args.labels)
