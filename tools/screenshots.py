"""Save screenshots of the main window with a plan open (for review and the README).

Run under a (virtual) X server so that the VTK 3-D view draws::

    xvfb-run -a -s "-screen 0 1600x1000x24" python tools/screenshots.py --out /tmp/ui

Cases: the bundled sample (``sample_data/dicom``, with its truth segmentation) and, when
the shared data are present, issue 5's mouse path on real scans (Open, Import vertebra
labels…, Plan… bipedicular, Export plan folder…): ``tptbox-l3-1.5mm`` (L3) and
``ts-abdomen-3mm`` with its TotalSegmentator labels (L1-L3), with the dialogs.  With ``--pipeline`` also the sample and the real
chest CT ``lidc0314`` opened and planned exactly as a user would (Open, then Plan).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import PyQt6  # noqa: E402,F401
from PyQt6.QtCore import QSettings  # noqa: E402
from PyQt6.QtGui import QImage, QPainter  # noqa: E402


def _wait(app, cond, timeout_s=300.0):
    t0 = time.time()
    while not cond():
        app.processEvents()
        time.sleep(0.01)
        if time.time() - t0 > timeout_s:
            raise TimeoutError("timed out waiting for the window")
    for _ in range(10):
        app.processEvents()


def grab_window(win) -> QImage:
    """The window as an image, with the VTK frame composed in (QWidget.grab() leaves it black)."""
    img = win.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    if win.view3d is not None and win.view3d.isVisible():
        frame = np.ascontiguousarray(win.view3d.grab_frame())
        h, w = frame.shape[:2]
        qf = QImage(frame.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        pos = win.view3d.vtk_widget.mapTo(win, win.view3d.vtk_widget.rect().topLeft())
        p = QPainter(img)
        p.drawImage(pos, qf.scaled(win.view3d.vtk_widget.size()))
        p.end()
    return img


def _anatomy_for(volume, truth=None, labels=None):
    try:
        from needleplan.segmentation import segment  # type: ignore[attr-defined]
    except ImportError:
        return truth
    if labels is not None:
        return segment(volume, labels=labels)
    return segment(volume) if truth is None else truth


def shoot(app, win, name: str, path, out: Path, *, truth=None, labels=None, select=0):
    from needleplan.planner import PlanRequest, plan

    win.open_study(path)
    _wait(app, lambda: not win.busy)
    if win.session.volume is None:
        print(f"{name}: could not open {path}: {win.last_error}", file=sys.stderr)
        return
    vol = win.session.volume
    anatomy = _anatomy_for(vol, truth, labels)
    if anatomy is None:
        print(f"{name}: no segmentation available", file=sys.stderr)
        return
    win.session.set_anatomy(anatomy)
    p = plan(vol, anatomy, PlanRequest())
    win.session.set_plan(p)
    if not p.trajectories and anatomy.vertebrae:
        # nothing recommended: place a bipedicular pair by hand at the middle level, as a user would
        mid = anatomy.sorted_vertebrae()[len(anatomy.vertebrae) // 2].name
        for side in ("left", "right"):
            win.session.new_trajectory(mid, side)
        print(f"{name}: planner proposed no trajectory; added {mid} left/right by hand", file=sys.stderr)
    if win.session.trajectories:
        win.session.select(min(select, len(win.session.trajectories) - 1))
        win.center_on_selected()
    win.set_preset("Bone")
    _wait(app, lambda: win.fluoro_idle)
    img = grab_window(win)
    f = out / f"{name}-window.png"
    img.save(str(f))
    print(f"wrote {f}")
    if win.view3d is not None and win.session.trajectories:
        win.look_down_needle()
        _wait(app, lambda: True)
        f = out / f"{name}-needle-camera.png"
        grab_window(win).save(str(f))
        print(f"wrote {f}")
        win.view3d.reset_camera()


def shoot_pipeline(app, win, name: str, path, out: Path):
    """What a user gets with the mouse alone: open, press Plan (segmentation + planner)."""
    win.session.modified = False
    win.open_study(path)
    _wait(app, lambda: not win.busy)
    win.run_planning()
    _wait(app, lambda: not win.busy, timeout_s=900)
    if win.session.trajectories:
        win.session.select(0)
        win.center_on_selected()
    _wait(app, lambda: win.fluoro_idle)
    f = out / f"{name}-window.png"
    grab_window(win).save(str(f))
    print(f"wrote {f} ({len(win.session.trajectories)} trajectories; {win.last_error or 'no error'})")


def _grab_widget(app, w, path: Path):
    _wait(app, lambda: True)
    w.grab().save(str(path))
    print(f"wrote {path}")


def walk(app, win, name: str, ct, labels, out: Path, *, levels=None, approach="bipedicular"):
    """Issue 5's 'done' path as a user clicks it: Open, Import vertebra labels, Plan… (levels,
    approach), look at the checks; then Export plan folder…  Screenshots of each dialog."""
    win.session.modified = False
    win.open_study(ct)
    _wait(app, lambda: not win.busy)
    if labels is not None:
        win.import_labels(labels)
        _wait(app, lambda: not win.busy)
    win.plan_dialog()  # without labels: the built-in segmentation runs first, then the dialog opens
    _wait(app, lambda: not win.busy, timeout_s=900)
    if win.session.anatomy is None:
        print(f"{name}: segmentation failed: {win.last_error}", file=sys.stderr)
        return
    dlg = win.active_dialog
    for lv, cb in dlg.level_boxes.items():
        cb.setChecked(levels is None or lv in levels)
    dlg.approach.setCurrentText(approach)
    _grab_widget(app, dlg, out / f"{name}-plan-dialog.png")
    dlg.accept()
    _wait(app, lambda: not win.busy, timeout_s=900)
    ts = win.session.trajectories
    print(f"{name}: {len(ts)} trajectories: " + ", ".join(f"{t.name} {t.approach} {t.status}" for t in ts)
          + f" · {win.last_error or 'no error'}")
    for lv in win.session.plan.levels:
        print(f"   {lv.level}: {lv.recommendation} ({'; '.join(lv.reasons)})")
    if ts:
        win.session.select(0)
        win.center_on_selected()
    win.set_preset("Bone")
    _wait(app, lambda: win.fluoro_idle)
    f = out / f"{name}-window.png"
    grab_window(win).save(str(f))
    print(f"wrote {f}")
    if ts:
        win.export_plan_dialog()
        dlg = win.active_dialog
        dlg.folder.setText(str(out / f"{name}-export"))
        _grab_widget(app, dlg, out / f"{name}-export-dialog.png")
        dlg.accept()
        _wait(app, lambda: not win.busy, timeout_s=300)
        print(f"{name}: export: {win.status_msg.text()}")
        f = out / f"{name}-after-export.png"
        grab_window(win).save(str(f))
        print(f"wrote {f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/ui", help="folder for the PNGs")
    ap.add_argument("--size", default="1600x1000", help="window size WxH")
    ap.add_argument("--pipeline", action="store_true",
                    help="also shoot the sample and the lidc0314 chest CT planned with the real "
                         "segmentation, as a user would with Open + Plan (slow)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from needleplan.ui.app import get_app
    from needleplan.ui.main_window import MainWindow

    app = get_app()
    w, h = (int(x) for x in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="needleplan-shots-"))
    win = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    win.resize(w, h)
    win.show()
    _wait(app, lambda: True)

    sample = REPO / "sample_data" / "dicom"
    truth = None
    if not sample.is_dir():
        from needleplan.io import write_volume
        from needleplan.phantom import make_phantom

        ph = make_phantom(("T12", "L1", "L2", "L3"))
        sample = write_volume(ph.volume, tmp / "phantom.nii.gz")
        truth = ph.truth
    else:
        from tests.ui.sample import sample_study

        truth = sample_study()[1]
    shoot(app, win, "sample", sample, out, truth=truth, select=2)
    if args.pipeline:
        shoot_pipeline(app, win, "sample-pipeline", sample, out)

    from tests.conftest import shared_data_dir

    tpt = shared_data_dir() / "tptbox-l3-1.5mm"
    if (tpt / "sub-ct_label-22_ct.nii.gz").exists():
        walk(app, win, "tptbox-l3", tpt / "sub-ct_label-22_ct.nii.gz", tpt / "sub-ct_seg-vert_label-22_msk.nii.gz",
             out, levels=["L3"], approach="bipedicular")
    real = shared_data_dir() / "ts-abdomen-3mm"
    if (real / "ct.nii.gz").exists():
        walk(app, win, "ts-abdomen", real / "ct.nii.gz", real / "totalseg-total.nii.gz", out,
             levels=["L1", "L2", "L3"], approach="bipedicular")
        walk(app, win, "ts-abdomen-builtin", real / "ct.nii.gz", None, out, levels=None, approach="auto")
    chest = shared_data_dir() / "lidc0314-chest-1mm" / "dicom"
    if args.pipeline and chest.is_dir():  # a real DICOM series, mouse-only path (about 1-2 min)
        shoot_pipeline(app, win, "lidc0314-pipeline", chest, out)
    win.session.modified = False
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
