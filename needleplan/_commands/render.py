"""``needleplan render PATH --plan DIR/plan.json --out DIR2``: simulated fluoroscopy PNGs.

Per trajectory ``<level>_<side>_bullseye.png`` and ``<level>_<side>_progression.png``,
plus ``overview_ap.png`` and ``overview_lateral.png`` with every needle; each image shows
the needle, the C-arm angles in large type, the patient position and orientation letters.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import numpy as np

from needleplan.errors import InputError, OutputError, PlanFileError

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


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(name)).strip("-") or "x"


def _describe(traj) -> tuple[str, ...]:
    parts = [f"{traj.gauge}G", f"{traj.length_mm:.0f} mm"]
    if np.isfinite(traj.medial_angle_deg):
        parts.append(f"medial {traj.medial_angle_deg:.0f}°")
    if np.isfinite(traj.craniocaudal_angle_deg):
        parts.append(f"cc {traj.craniocaudal_angle_deg:+.0f}°")
    return ("  ".join(parts),)


def render_plan(volume, plan, out_dir, *, size: int = 512, patient_position: str | None = None) -> list[Path]:
    """Write the PNGs of every trajectory of ``plan`` and the overviews; returns the paths."""
    from needleplan.geometry.annotate import save_png
    from needleplan.geometry.fluoro import needle_of, overview_views, render_views, trajectory_views

    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder '{out_dir}': {exc.strerror or exc}", path=out_dir) from exc
    pp = patient_position or plan.input.get("patient_position") or volume.patient_position
    needles = [needle_of(t) for t in plan.trajectories]
    written: list[Path] = []
    used: set[str] = set()
    n = len(plan.trajectories)
    for i, traj in enumerate(plan.trajectories, 1):
        log.info("rendering %s %s (%d/%d)", traj.level, traj.side, i, n)
        stem = f"{_safe(traj.level)}_{_safe(traj.side)}"
        k = 2
        while stem in used:
            stem = f"{_safe(traj.level)}_{_safe(traj.side)}_{k}"
            k += 1
        used.add(stem)
        rendered = render_views(volume, trajectory_views(traj, pp), needles=[needle_of(traj)], size=size,
                                extra_lines=_describe(traj))
        for kind in ("bullseye", "progression"):
            written.append(save_png(rendered[kind].rgb, out_dir / f"{stem}_{kind}.png"))
    if plan.trajectories:
        log.info("rendering AP and lateral overviews")
        rendered = render_views(volume, overview_views(plan.trajectories, pp), needles=needles, size=size)
        for kind in ("ap", "lateral"):
            written.append(save_png(rendered[kind].rgb, out_dir / f"overview_{kind}.png"))
    return written


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
