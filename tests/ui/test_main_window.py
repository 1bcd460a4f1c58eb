"""Drive the real main window: open a study, plan, select, drag, undo, save, reopen.

The tests of this module run in order on one window (a workflow), on the bundled sample
study (``sample_data/dicom``, T11-L3).  Segmentation is the sample's truth (so the test
does not depend on the segmentation's accuracy); planning is the real planner.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, QSettings, Qt

from needleplan.ui.main_window import MainWindow
from tests.ui.display import has_real_display
from tests.ui.sample import SAMPLE_DICOM, sample_study

WAIT_MS = 60_000


@pytest.fixture(scope="module")
def study_path():
    if not SAMPLE_DICOM.is_dir():
        pytest.skip("sample_data/dicom missing")
    vol, truth = sample_study()
    return SAMPLE_DICOM, SimpleNamespace(volume=vol, truth=truth)


@pytest.fixture(scope="module")
def window(themed_app, tmp_path_factory):
    ini = tmp_path_factory.mktemp("settings") / "needleplan.ini"
    w = MainWindow(enable_3d=has_real_display(), settings=QSettings(str(ini), QSettings.Format.IniFormat))
    w.resize(1500, 950)
    w.show()
    yield w
    w.session.modified = False
    w.close()
    w.deleteLater()


def _idle(qtbot, w):
    qtbot.waitUntil(lambda: not w.busy, timeout=WAIT_MS)


def test_open_study_runs_in_background(window, study_path, qtbot):
    path, ph = study_path
    window.open_study(path)
    assert window.busy  # returned at once: loading runs in a worker thread
    _idle(qtbot, window)
    vol = window.session.volume
    assert window.last_error is None
    assert vol is not None and vol.shape == ph.volume.shape
    assert np.allclose(vol.ijk_to_lps, ph.volume.ijk_to_lps, atol=1e-3)
    assert str(path.resolve()) in window.recent_studies()
    img = window.views["axial"].grab().toImage()
    arr = _qimage_gray(img)
    assert arr.std() > 20  # a CT slice, not a blank widget


def test_plan_fills_the_panel(window, study_path, qtbot):
    _, ph = study_path
    window.session.set_anatomy(ph.truth)
    window.run_planning()
    _idle(qtbot, window)
    s = window.session
    assert window.last_error is None
    assert len(s.trajectories) >= 5
    assert {t.level for t in s.trajectories} >= {"T12", "L1", "L2", "L3"}
    assert window.panel.trajs.topLevelItemCount() == len(s.trajectories)
    assert window.panel.levels.topLevelItemCount() == 5
    assert s.can_undo  # planning itself can be undone


def test_select_trajectory_in_panel(window, qtbot):
    item = window.panel.trajs.topLevelItem(1)
    window.panel.trajs.setCurrentItem(item)
    s = window.session
    assert s.selected == 1
    fv = window.fluoro["bullseye"]
    name = s.selected_trajectory.name
    qtbot.waitUntil(lambda: window.fluoro_idle and fv.carm_view is not None
                    and fv.carm_view.label.startswith(name), timeout=20_000)
    assert fv.image is not None
    t = s.selected_trajectory
    lao, cran = fv.carm_view.angles_deg
    assert lao == pytest.approx(t.carm["bullseye"]["lao_deg"], abs=0.5)
    assert cran == pytest.approx(t.carm["bullseye"]["cran_deg"], abs=0.5)


def test_bullseye_needle_dot_at_expected_pixel(window):
    from needleplan.geometry.views import project_points

    fv = window.fluoro["bullseye"]
    t = window.session.selected_trajectory
    entry_px, target_px = project_points(fv.carm_view, np.stack([t.skin_entry_lps, t.target_lps]))
    assert np.hypot(*(entry_px - target_px)) < 0.5  # the needle projects to one point
    # the steel needle seen end-on is by far the most attenuating spot of the DRR
    line = fv.drr.image
    assert line.shape == (320, 320)
    c0, r0 = np.round(target_px).astype(int) - 15
    win = line[r0:r0 + 31, c0:c0 + 31]
    assert win.max() > 5 * np.median(line)  # metal seen end-on, not bone
    rr, cc = np.nonzero(win >= 0.5 * win.max())
    rr, cc = rr + r0, cc + c0
    found = np.array([cc.mean(), rr.mean()])
    assert np.hypot(*(found - target_px)) <= 3.0, (found, target_px)
    # and the widget shows it there: the darkest display pixels sit at the same place
    disp = fv.image
    near = disp[rr, cc]
    assert near.mean() < np.median(disp) - 0.2
    shot = _qimage_gray(fv.grab().toImage())
    assert shot.std() > 15


def test_drag_target_in_axial_view_then_undo(window, qtbot):
    s = window.session
    i = s.selected
    t = s.trajectories[i]
    old_target = t.target_lps.copy()
    n_checks_before = len(t.checks)
    window.set_crosshair(old_target)
    view = window.views["axial"]
    qtbot.waitExposed(view)
    p0 = view.lps_to_screen(old_target)
    assert view.pick_handle(*p0) == (i, "target")
    p1 = p0 + np.array([12.0, -9.0])
    expected = view.screen_to_lps(*p1, view.geom.lps_to_c(old_target)[view.view.normal])
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(*np.round(p0).astype(int)))
    for f in (0.3, 0.6, 1.0):
        q = np.round(p0 + f * (p1 - p0)).astype(int)
        qtbot.mouseMove(view, pos=QPoint(*q))
        qtbot.wait(5)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(*np.round(p1).astype(int)))
    new = s.trajectories[i]
    assert np.linalg.norm(new.target_lps - expected) < 0.6  # moved where the mouse went (1 px)
    assert np.linalg.norm(new.target_lps - old_target) > 3.0
    assert new.target_lps[2] == pytest.approx(old_target[2], abs=1e-6)  # stays in the axial plane
    assert len(new.checks) == n_checks_before  # re-checked
    qtbot.waitUntil(lambda: window.fluoro_idle, timeout=20_000)
    assert window.fluoro["bullseye"].preview is False  # full view after release
    assert len(window.timings_ms["move"]) >= 2  # live updates happened (speed: benchmarks/bench_gui.py)
    assert "*" in window.windowTitle()
    window.actions_["undo"].trigger()
    assert np.allclose(s.trajectories[i].target_lps, old_target)
    window.actions_["redo"].trigger()
    assert np.allclose(s.trajectories[i].target_lps, new.target_lps)


def test_slice_view_draws_needle_handle(window):
    s = window.session
    t = s.selected_trajectory
    window.set_crosshair(t.target_lps)
    view = window.views["axial"]
    img = view.grab().toImage()
    x, y = np.round(view.lps_to_screen(t.target_lps)).astype(int)
    dpr = img.devicePixelRatio()
    col = img.pixelColor(int(x * dpr), int(y * dpr))
    from needleplan.ui.theme import status_color

    want = status_color(t.status)
    assert abs(col.red() - want.red()) + abs(col.green() - want.green()) + abs(col.blue() - want.blue()) < 60


def test_pedicle_outlines_and_level_names_drawn(window, study_path):
    _, ph = study_path
    ped = ph.truth.vertebra("L1").pedicles["left"]
    window.set_crosshair(ped.isthmus_center_lps)
    view = window.views["axial"]
    arr = _qimage_rgb(view.grab().toImage())
    yellow = (np.abs(arr[..., 0] - 255) < 30) & (np.abs(arr[..., 1] - 255) < 30) & (np.abs(arr[..., 2] - 120) < 40)
    assert yellow.sum() > 20  # the pedicle outline colour of the overlay
    xy = view.lps_to_screen(ped.isthmus_center_lps)
    ys, xs = np.nonzero(yellow)
    assert np.min(np.hypot(xs - xy[0], ys - xy[1])) < 15  # ... around the pedicle
    window.actions_["labels"].trigger()
    arr2 = _qimage_rgb(view.grab().toImage())
    yellow2 = (np.abs(arr2[..., 0] - 255) < 30) & (np.abs(arr2[..., 1] - 255) < 30) & (np.abs(arr2[..., 2] - 120) < 40)
    assert yellow2.sum() < yellow.sum() / 4  # labels off: no outlines
    window.actions_["labels"].trigger()


def test_save_and_reopen(window, study_path, tmp_path, qtbot, themed_app):
    s = window.session
    out = tmp_path / "plan.json"
    assert window.save_plan(path=str(out))
    assert not s.modified and "*" not in window.windowTitle()
    d = json.loads(out.read_text())
    assert d["schema"] == "needleplan.plan/1" and len(d["trajectories"]) == len(s.trajectories)
    saved = [t.target_lps.copy() for t in s.trajectories]
    # a second window reopens the plan together with its study
    w2 = MainWindow(enable_3d=False, settings=window.settings, auto_segment=False)
    qtbot.addWidget(w2)
    w2.open_plan(out)
    qtbot.waitUntil(lambda: w2.session.volume is not None and not w2.busy, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: len(w2.session.trajectories) == len(saved), timeout=WAIT_MS)
    assert w2.session.volume.shape == s.volume.shape
    for a, b in zip(w2.session.trajectories, saved):
        assert np.allclose(a.target_lps, b, atol=1e-3)
    w2.session.modified = False
    w2.close()


def test_delete_and_rename(window, qtbot):
    s = window.session
    n = len(s.trajectories)
    window.delete_trajectory(0)
    assert len(s.trajectories) == n - 1
    window.undo()
    assert len(s.trajectories) == n
    s.rename_level("L3", "L4")  # e.g. the count started one level too high
    assert "L4" in [window.panel.levels.topLevelItem(k).text(0) for k in range(window.panel.levels.topLevelItemCount())]
    window.undo()
    assert "L3" in {t.level for t in s.trajectories}


def test_bad_input_shows_one_line_error(window, tmp_path, qtbot):
    bad = tmp_path / "not_a_ct.txt"
    bad.write_text("hello")
    window.open_study(bad)
    _idle(qtbot, window)
    assert window.last_error and "\n" not in window.last_error
    assert "not_a_ct.txt" in window.last_error
    for box in list(window.error_boxes):
        box.close()


@pytest.mark.skipif(not has_real_display(), reason="VTK draws only with an X server (run under xvfb-run)")
def test_3d_view_looks_down_the_needle(window):
    v3 = window.view3d
    assert v3 is not None
    frame = v3.grab_frame()
    assert frame.std() > 5
    t = window.session.selected_trajectory
    window.look_down_needle()
    ren = v3.renderer
    pts = []
    for p in (t.skin_entry_lps + 0.3 * (t.target_lps - t.skin_entry_lps), t.target_lps):
        ren.SetWorldPoint(*p, 1.0)
        ren.WorldToDisplay()
        pts.append(np.array(ren.GetDisplayPoint()[:2]))
    assert np.hypot(*(pts[0] - pts[1])) < 1.0


def _qimage_rgb(img) -> np.ndarray:
    from PyQt6.QtGui import QImage

    img = img.convertToFormat(QImage.Format.Format_RGB888)
    w, h = img.width(), img.height()
    ptr = img.constBits()
    ptr.setsize(img.bytesPerLine() * h)
    return np.frombuffer(ptr, np.uint8).reshape(h, img.bytesPerLine())[:, :3 * w].reshape(h, w, 3).astype(int)


def _qimage_gray(img) -> np.ndarray:
    from PyQt6.QtGui import QImage

    img = img.convertToFormat(QImage.Format.Format_Grayscale8)
    w, h = img.width(), img.height()
    ptr = img.constBits()
    ptr.setsize(img.bytesPerLine() * h)
    return np.frombuffer(ptr, np.uint8).reshape(h, img.bytesPerLine())[:, :w].astype(float)
