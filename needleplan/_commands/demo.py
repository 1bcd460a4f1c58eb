"""``needleplan demo``: plan the bundled sample CT, write the report, open the GUI if possible.

The sample is ``sample_data/dicom`` of the repository checkout (or ``$NEEDLEPLAN_SAMPLE``);
when neither exists (an installed wheel) the same synthetic phantom is generated in
memory.  Works headless: without a display it writes the plan and says where the PDF is.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path

from needleplan.errors import InputError

log = logging.getLogger("needleplan")

DEFAULT_OUT = "needleplan-demo"


def add_parser(sub):
    p = sub.add_parser(
        "demo", help="plan the bundled sample CT, write the PDF report, open the GUI when there is a display",
        description="Plan every level of the bundled synthetic spine CT and write plan.pdf, plan.json, "
                    "plan.mrk.json and vertebrae.nii.gz into a folder; then open the GUI when a display "
                    "is available.")
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                   help=f"folder for the plan files (default: ./{DEFAULT_OUT}/)")
    p.add_argument("--no-gui", action="store_true", help="only write the files, do not open the GUI")
    p.add_argument("--anonymize", action="store_true", help="leave patient identity out of every output")
    p.set_defaults(func=run)
    return p


def find_sample() -> Path | None:
    """The sample CT: ``$NEEDLEPLAN_SAMPLE``, else ``sample_data/dicom`` next to the package."""
    env = os.environ.get("NEEDLEPLAN_SAMPLE")
    if env:
        p = Path(env)
        if not p.exists():
            raise InputError(f"NEEDLEPLAN_SAMPLE='{p}' does not exist", path=p)
        return p / "dicom" if (p / "dicom").is_dir() else p
    import needleplan

    root = Path(needleplan.__file__).resolve().parents[1] / "sample_data"
    for cand in (root / "dicom", root):
        if cand.is_dir() and any(f.is_file() for f in cand.rglob("*") if f.suffix.lower() in ("", ".dcm")):
            return cand
    return None


def _truth_labels(sample: Path | None) -> Path | None:
    """The bundled sample's reference vertebra labels (``sample_data/truth``), if any."""
    if sample is None:
        return None
    for folder in (Path(sample).parent / "truth", Path(sample) / "truth"):
        if (folder / "vertebrae.nii.gz").is_file():
            return folder / "vertebrae.nii.gz"
    return None


def _progress(done: int, total: int, what: str) -> None:
    print(f"needleplan demo: [{done + 1}/{total}] {what}", file=sys.stderr, flush=True)


def _can_show_gui() -> bool:
    """A display is there and PyQt6 is installed (checked without importing Qt here)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    return importlib.util.find_spec("PyQt6") is not None


def run(args) -> int:
    from needleplan.errors import SegmentationError
    from needleplan.pipeline import prepare_out_dir, run_plan_job

    out = prepare_out_dir(args.out)  # a bad --out fails at once, before any work
    sample = find_sample()
    if sample is None:
        print("needleplan demo: sample_data/ not found: generating the synthetic spine phantom",
              file=sys.stderr, flush=True)
        from needleplan.io import write_volume
        from needleplan.phantom import make_phantom

        sample = write_volume(make_phantom().volume, out / "sample_ct.nii.gz")  # so the GUI can open it
    print(f"needleplan demo: planning every level of the sample CT {sample}", file=sys.stderr, flush=True)
    try:
        job = run_plan_job(sample, out, anonymize=args.anonymize, progress=_progress)
    except SegmentationError as exc:
        truth = _truth_labels(sample)
        if truth is None:
            raise
        print(f"needleplan demo: segmentation failed ({exc}); using the sample's reference labels {truth}",
              file=sys.stderr)
        job = run_plan_job(sample, out, labels=truth, anonymize=args.anonymize, progress=_progress)
    files, the_plan = job.files, job.plan
    pdf = files.get("pdf")
    n = len(the_plan.trajectories)
    levels = ", ".join(f"{lv.level} {lv.recommendation}" for lv in the_plan.levels) or "none"
    print(f"Planned {n} trajectories ({levels}).")
    print(f"Plan folder: {out.resolve()}")
    for path in files.values():
        print(f"  {Path(path).name}")
    if args.no_gui or not _can_show_gui():
        if not args.no_gui:
            print("No display found: open the report instead.")
        print(f"Report: {pdf.resolve() if pdf else out.resolve()}")
        return 0
    try:
        from needleplan.ui import run_gui
    except ImportError as exc:
        print(f"The GUI is not available ({exc}). Report: {pdf.resolve() if pdf else out.resolve()}")
        return 0
    print("Opening the GUI ...", flush=True)
    try:
        status = run_gui(path=str(sample) if sample else None, plan_path=str(files["plan_json"]))
    except Exception as exc:  # a GUI failure must not hide the written report
        log.debug("GUI failed", exc_info=True)
        print(f"The GUI could not start ({type(exc).__name__}: {exc}). Report: {pdf.resolve() if pdf else out}")
        return 0
    if status:
        print(f"Report: {pdf.resolve() if pdf else out.resolve()}")
    return 0
