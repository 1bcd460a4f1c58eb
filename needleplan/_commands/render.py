"""``needleplan render PATH --plan DIR/plan.json --out DIR2``: simulated fluoroscopy PNGs.

Per trajectory ``<level>_<side>_bullseye.png`` and ``<level>_<side>_progression.png``,
plus ``overview_ap.png`` and ``overview_lateral.png`` with every needle; each image shows
the needle, the C-arm angles in large type, the patient position and orientation letters.
Angles are for the procedure position (prone for pedicle routes, supine for anterolateral),
whatever the CT's scan position.  The files are written by
:func:`needleplan.report.exports.export_views` (the plan folder's views are the same).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from needleplan.errors import InputError, PlanFileError

__all__ = ["add_parser", "run", "render_plan"]

log = logging.getLogger("needleplan")


def add_parser(sub):
    p = sub.add_parser(
        "render", help="write bull's-eye and progression fluoroscopy views of a plan as PNGs",
        description="Render simulated fluoroscopy (DRR) of the CT for every planned trajectory: "
                    "the bull's-eye view (beam along the needle) and the progression view "
                    "(perpendicular), plus AP and lateral overviews, with the needle and the "
                    "C-arm angles drawn in.")
    p.add_argument("path", metavar="PATH", help="the CT the plan was made on (DICOM folder/file, NIfTI, NRRD, MHA)")
    p.add_argument("--plan", required=True, metavar="PLAN_JSON", help="plan.json written by 'needleplan plan'")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--size", type=int, default=512, metavar="PIXELS",
                   help="detector matrix in pixels per side (default 512)")
    p.add_argument("--series", metavar="UID", default=None, help="SeriesInstanceUID to load from a DICOM folder")
    p.set_defaults(func=run)
    return p


def render_plan(volume, plan, out_dir, *, size: int = 512, scan_position: str | None = None) -> list[Path]:
    """Write the PNGs of every trajectory of ``plan`` and the overviews; returns the paths.

    The same files as the plan folder's views (:func:`needleplan.report.exports.export_views`).
    """
    from needleplan.report.exports import export_views

    return list(export_views(plan, volume, out_dir, pixels=size, overviews=True,
                             scan_position=scan_position).values())


def run(args) -> int:
    from needleplan.io import load_ct, read_plan_json
    from needleplan.planner.model import Plan

    if not 64 <= args.size <= 2048:
        raise InputError(f"--size {args.size}: use 64 to 2048 pixels")
    try:
        plan = Plan.from_dict(read_plan_json(args.plan))
    except (KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, InputError):
            raise
        raise PlanFileError(f"plan file '{args.plan}' has an invalid trajectory: {exc}", path=args.plan) from exc
    volume = load_ct(args.path, series_uid=args.series)
    want = plan.input.get("series_uid")
    if want and volume.series_uid and want != volume.series_uid:
        log.warning("the plan was made on series %s but %s holds %s; the views may not match",
                    want, args.path, volume.series_uid)
    if not plan.trajectories:
        log.warning("plan '%s' has no trajectories: nothing to render", args.plan)
    for p in render_plan(volume, plan, args.out, size=args.size):
        print(p, file=sys.stdout)
    return 0
