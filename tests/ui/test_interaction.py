"""Mouse and keyboard in the slice views, the series picker, cancelling a running step."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pydicom
import pytest
from PyQt6.QtCore import QPoint, QSettings, Qt

from needleplan.ui.main_window import MainWindow
from needleplan.ui.workers import JobRunner
from tests.ui.sample import SAMPLE_DICOM, sample_study


@pytest.fixture()
def win(themed_app, qtbot, tmp_path):
    w = MainWindow(enable_3d=False, settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.resize(1300, 850)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.session.modified = False


@pytest.fixture()
def loaded(win):
    if not SAMPLE_DICOM.is_dir():
        pytest.skip("sample_data/dicom missing")
    vol, anatomy = sample_study()
    win.session.set_study(vol, anatomy)
    return win


def test_click_in_axial_moves_linked_crosshair(loaded, qtbot):
    ax, sag, cor = (loaded.views[k] for k in ("axial", "sagittal", "coronal"))
    pos = QPoint(ax.width() // 2 + 40, ax.height() // 2 - 30)
    want = ax.screen_to_lps(pos.x(), pos.y())
    qtbot.mouseClick(ax, Qt.MouseButton.LeftButton, pos=pos)
    # the sagittal view now shows the clicked x, the coronal view the clicked y
    assert sag.geom.c_to_lps(sag.crosshair_c)[0] == pytest.approx(want[0], abs=0.6)
    assert cor.geom.c_to_lps(cor.crosshair_c)[1] == pytest.approx(want[1], abs=0.6)
    z0 = ax.slice_index
    ax.setFocus()
    qtbot.keyClick(ax, Qt.Key.Key_Up)
    assert ax.slice_index == z0 + 1
    assert cor.geom.c_to_lps(cor.crosshair_c)[2] == pytest.approx(ax.geom.c_to_lps(ax.crosshair_c)[2], abs=1e-6)


def test_right_drag_changes_window_level_and_presets(loaded, qtbot):
    ax = loaded.views["axial"]
    loaded.set_preset("Soft tissue")
    assert (ax.width_hu, ax.level_hu) == (400.0, 40.0)
    c = QPoint(ax.width() // 2, ax.height() // 2)
    qtbot.mousePress(ax, Qt.MouseButton.RightButton, pos=c)
    qtbot.mouseMove(ax, pos=c + QPoint(100, -50))
    qtbot.mouseRelease(ax, Qt.MouseButton.RightButton, pos=c + QPoint(100, -50))
    assert ax.width_hu > 400.0 and ax.level_hu > 40.0
    assert loaded.views["sagittal"].width_hu == ax.width_hu  # all views follow
    assert loaded.preset.currentText() == "Custom"
    loaded.actions_["labels"].trigger()
    assert not ax.show_labels


def test_mouse_move_reports_lps_and_hu(loaded, qtbot):
    ax = loaded.views["axial"]
    pos = QPoint(ax.width() // 2, ax.height() // 2)
    qtbot.mouseMove(ax, pos=pos)
    qtbot.mouseMove(ax, pos=pos + QPoint(3, 2))
    text = loaded.cursor_label.text()
    assert text.startswith("LPS (") and "HU" in text


def test_series_picker_chooses_among_series(win, qtbot, tmp_path):
    if not SAMPLE_DICOM.is_dir():
        pytest.skip("sample_data/dicom missing")
    folder = tmp_path / "two_series"
    folder.mkdir()
    files = sorted(SAMPLE_DICOM.glob("*.dcm"))
    for f in files:
        shutil.copy(f, folder / f.name)
    new_uid = pydicom.uid.generate_uid()
    for n, f in enumerate(files[40:46]):  # a short second series (e.g. a thin reconstruction)
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = new_uid
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.SeriesDescription = "second"
        ds.save_as(folder / f"B{n:03d}.dcm")
    offered = []

    def pick(series):
        offered.extend(s.series_uid for s in series)
        return new_uid

    win.pick_series = pick
    win.open_study(folder)
    qtbot.waitUntil(lambda: not win.busy and win.session.volume is not None, timeout=60_000)
    assert len(offered) == 2 and new_uid in offered
    assert win.session.volume.shape[2] == 6
    assert win.session.volume.meta.get("series_uid") == new_uid


def test_series_picker_dialog_lists_series(themed_app, qtbot):
    from types import SimpleNamespace

    from needleplan.ui.dialogs import SeriesPicker

    series = [SimpleNamespace(series_uid=f"1.2.{k}", modality="CT", description=f"s{k}", n_files=10 * k,
                              rows=512, cols=512, problems=[]) for k in (3, 1)]
    dlg = SeriesPicker(series)
    qtbot.addWidget(dlg)
    assert dlg.tree.topLevelItemCount() == 2
    assert dlg.selected_uid() == "1.2.3"
    dlg.tree.setCurrentItem(dlg.tree.topLevelItem(1))
    assert dlg.selected_uid() == "1.2.1"


def test_cancel_stops_waiting_at_once(themed_app, qtbot):
    runner = JobRunner()
    finished = []
    runner.finished.connect(lambda label, res, msg, kind: finished.append(kind))
    done = []

    def slow(progress):
        for i in range(200):
            progress(i, 200, "working")
            time.sleep(0.01)
        return 42

    runner.start("slow", slow, done.append)
    qtbot.wait(50)
    assert runner.busy
    t0 = time.perf_counter()
    runner.cancel()
    assert time.perf_counter() - t0 < 0.1 and not runner.busy
    assert finished == ["cancelled"]
    qtbot.wait(300)
    runner.shutdown()
    assert done == []  # the late result of a cancelled job is dropped


def test_worker_reports_user_errors_as_one_line(themed_app, qtbot):
    from needleplan.errors import InputError

    runner = JobRunner()
    got = []

    def bad(progress):
        raise InputError("'/x/y' is not a CT\nsecond line")

    with qtbot.waitSignal(runner.finished, timeout=10_000) as sig:
        runner.start("bad", bad, on_error=lambda m, k: got.append((m, k)))
    assert sig.args[2] == "'/x/y' is not a CT second line" and sig.args[3] == "input"
    assert got == [("'/x/y' is not a CT second line", "input")]
    runner.shutdown()


def test_drop_a_folder_opens_it_and_remembers_it(win, qtbot):
    from PyQt6.QtCore import QMimeData, QPointF, QUrl
    from PyQt6.QtGui import QDropEvent

    if not SAMPLE_DICOM.is_dir():
        pytest.skip("sample_data/dicom missing")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(SAMPLE_DICOM))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    win.dropEvent(ev)
    qtbot.waitUntil(lambda: not win.busy and win.session.volume is not None, timeout=60_000)
    assert win.session.volume.shape[2] == 133
    assert win.recent_studies()[0] == str(SAMPLE_DICOM.resolve())
    assert win.recent_menu.actions()[0].text() == str(SAMPLE_DICOM.resolve())


def test_ctrl_wheel_zooms_about_the_mouse(loaded, qtbot):
    from PyQt6.QtCore import QPointF
    from PyQt6.QtGui import QWheelEvent

    ax = loaded.views["axial"]
    pos = QPointF(ax.width() * 0.3, ax.height() * 0.6)
    before = ax.screen_to_lps(pos.x(), pos.y())
    ev = QWheelEvent(pos, ax.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 240), Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.ControlModifier, Qt.ScrollPhase.NoScrollPhase, False)
    ax.wheelEvent(ev)
    assert ax.zoom == pytest.approx(1.15 ** 2)
    after = ax.screen_to_lps(pos.x(), pos.y())
    assert abs(after[0] - before[0]) < 1e-6 and abs(after[1] - before[1]) < 1e-6
    z0 = ax.slice_index
    ev = QWheelEvent(pos, ax.mapToGlobal(pos), QPoint(0, 0), QPoint(0, -120), Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    ax.wheelEvent(ev)
    assert ax.slice_index == z0 - 1


@pytest.mark.slow
def test_plan_button_segments_and_plans_in_background(win, qtbot):
    """The whole mouse path: open the sample, press Plan (real segmentation + planner)."""
    if not SAMPLE_DICOM.is_dir():
        pytest.skip("sample_data/dicom missing")
    win.open_study(SAMPLE_DICOM)
    qtbot.waitUntil(lambda: not win.busy and win.session.volume is not None, timeout=60_000)
    ticks = []
    from PyQt6.QtCore import QTimer

    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(50)
    win.actions_["plan"].trigger()  # segments first, then asks for levels and approach
    assert win.busy and win.cancel_btn.isVisibleTo(win)
    qtbot.waitUntil(lambda: not win.busy, timeout=240_000)
    timer.stop()
    assert win.last_error is None, win.last_error
    a = win.session.anatomy
    assert a is not None and len(a.vertebrae) >= 4
    dlg = win.active_dialog
    assert dlg is not None and sorted(dlg.level_boxes) == sorted(v.name for v in a.vertebrae.values())
    qtbot.mouseClick(dlg.ok_button, Qt.MouseButton.LeftButton)  # plan every level
    qtbot.waitUntil(lambda: not win.busy, timeout=240_000)
    assert win.last_error is None, win.last_error
    assert win.panel.levels.topLevelItemCount() >= 4 and win.session.trajectories
    # the GUI thread kept running while the worker segmented: no gap of more than 1 s
    gaps = np.diff(ticks)
    assert len(ticks) > 10 and gaps.max() < 1.0, gaps.max()
