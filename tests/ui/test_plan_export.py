"""Plan chosen levels, import vertebra labels and export the plan folder from the real window.

The sample study (``sample_data/dicom``, patient PHANTOM^SPINE) with its truth
segmentation; the real TPTBox L3 crop with its VerSe labels for the mouse-only path.
"""

from __future__ import annotations

import gzip
import json
import subprocess

import pytest
from PyQt6.QtCore import QPoint, QSettings, Qt
from PyQt6.QtWidgets import QFileDialog

from needleplan.ui.main_window import MainWindow
from tests.conftest import require_shared
from tests.ui.sample import SAMPLE_DICOM, sample_study

WAIT_MS = 120_000
#: identifying values of the sample series (see sample_data/dicom)
SAMPLE_IDENTIFIERS = ("PHANTOM^SPINE", "PHANTOM", "NP-PHANTOM-0001", "19580314", "NPACC0001")


@pytest.fixture(scope="module")
def window(themed_app, tmp_path_factory):
    ini = tmp_path_factory.mktemp("settings") / "needleplan.ini"
    w = MainWindow(enable_3d=False, settings=QSettings(str(ini), QSettings.Format.IniFormat))
    w.resize(1400, 900)
    w.show()
    yield w
    w.session.modified = False
    w.close()
    w.deleteLater()


@pytest.fixture(scope="module")
def planned(window):
    """The sample open with its truth segmentation (no plan yet)."""
    if not SAMPLE_DICOM.is_dir():
        pytest.skip("sample_data/dicom missing")
    vol, truth = sample_study()
    vol.meta.setdefault("source", str(SAMPLE_DICOM))
    window.session.set_study(vol, truth)
    return window


def _idle(qtbot, w, timeout=WAIT_MS):
    qtbot.waitUntil(lambda: not w.busy, timeout=timeout)


def _indicator(cb) -> QPoint:
    """Where a check box's tick square is (a click there toggles it whatever the widget width)."""
    from PyQt6.QtWidgets import QStyle, QStyleOptionButton

    opt = QStyleOptionButton()
    cb.initStyleOption(opt)
    return cb.style().subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, opt, cb).center()


def _choose_in_plan_dialog(qtbot, dlg, levels, approach, *, keep=None):
    """Tick exactly ``levels`` with mouse clicks, pick ``approach`` with the keyboard, press Plan."""
    qtbot.waitExposed(dlg)
    for name, cb in dlg.level_boxes.items():
        if cb.isChecked() != (name in levels):
            qtbot.mouseClick(cb, Qt.MouseButton.LeftButton, pos=_indicator(cb))
    assert [n for n, cb in dlg.level_boxes.items() if cb.isChecked()] == list(levels)
    combo = dlg.approach
    combo.setFocus()
    for _ in range(combo.count()):  # walk the list with the arrow key, as a keyboard user would
        if combo.currentText() == approach:
            break
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentText() == approach
    if keep is not None and dlg.keep.isVisibleTo(dlg) and dlg.keep.isChecked() != keep:
        qtbot.mouseClick(dlg.keep, Qt.MouseButton.LeftButton, pos=_indicator(dlg.keep))
    qtbot.mouseClick(dlg.ok_button, Qt.MouseButton.LeftButton)


def test_plan_dialog_plans_only_chosen_levels(planned, qtbot):
    w = planned
    w.actions_["plan"].trigger()
    dlg = w.active_dialog
    assert dlg is not None and list(dlg.level_boxes) == ["T11", "T12", "L1", "L2", "L3"]
    _choose_in_plan_dialog(qtbot, dlg, ["L1"], "bipedicular")
    _idle(qtbot, w)
    assert w.last_error is None, w.last_error
    s = w.session
    assert sorted(t.name for t in s.trajectories) == ["L1 left", "L1 right"]
    assert [lv.level for lv in s.plan.levels] == ["L1"]
    assert s.plan.request.approach == "bipedicular" and s.plan.request.levels == ["L1"]
    assert w.panel.trajs.topLevelItemCount() == 2
    ax = w.views["axial"]
    assert ax.zoom > 1.0  # the views close in on the planned needles
    for t in s.trajectories:  # ... with both ends of every needle on screen
        for p in (t.skin_entry_lps, t.target_lps):
            x, y = ax.lps_to_screen(p)
            assert 0 <= x <= ax.width() and (t.target_lps[2] != p[2] or 0 <= y <= ax.height())
    # a second level is added to the plan; L1's pair stays
    w.actions_["plan"].trigger()
    dlg = w.active_dialog
    assert dlg.keep.isVisibleTo(dlg) and dlg.keep.isChecked()
    _choose_in_plan_dialog(qtbot, dlg, ["L2"], "bipedicular")
    _idle(qtbot, w)
    assert [t.name for t in s.trajectories] == ["L1 left", "L1 right", "L2 left", "L2 right"]
    assert [lv.level for lv in s.plan.levels] == ["L1", "L2"]
    w.undo()  # the merge is one undo step
    assert [t.name for t in s.trajectories] == ["L1 left", "L1 right"]
    w.redo()
    assert len(s.trajectories) == 4


def _pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def _all_text(folder) -> dict[str, str]:
    """Every exported file as text (PDF through pdftotext; gzip unpacked; bytes as latin-1)."""
    out = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        raw = f.read_bytes()
        if f.suffix == ".gz":
            raw = gzip.decompress(raw)
        out[f.name] = raw.decode("latin-1")
        if f.suffix == ".pdf":
            out[f.name + " (text)"] = _pdf_text(f)
    return out


def _export_with_dialog(qtbot, w, folder, *, anonymize: bool):
    w.actions_["export"].trigger()
    dlg = w.active_dialog
    assert dlg is not None and dlg.objectName() == "exportDialog"
    dlg.folder.clear()
    qtbot.keyClicks(dlg.folder, str(folder))
    if dlg.anonymize.isChecked() != anonymize:
        qtbot.mouseClick(dlg.anonymize, Qt.MouseButton.LeftButton, pos=_indicator(dlg.anonymize))
    dlg.accept()
    _idle(qtbot, w)
    assert w.last_error is None, w.last_error


def test_export_plan_folder(planned, qtbot, tmp_path):
    w = planned
    assert len(w.session.trajectories) == 4  # from the test above
    assert not w.actions_["anonymize"].isChecked()
    out = tmp_path / "plan"
    _export_with_dialog(qtbot, w, out, anonymize=False)
    for name in ("plan.json", "plan.pdf", "plan.mrk.json", "vertebrae.nii.gz", "vertebrae.nrrd"):
        assert (out / name).is_file(), name
    assert str(out / "plan.pdf") in w.status_msg.text()
    text = _pdf_text(out / "plan.pdf")
    for level in ("L1", "L2"):
        assert f"{level} left" in text and f"{level} right" in text
    assert "PHANTOM" in text  # identified report: the test below can fail
    assert "1.2.826.0.1.3680043.8.498" in (out / "plan.json").read_text()  # the series UID (not identifying)
    d = json.loads((out / "plan.json").read_text())
    assert [t["level"] + " " + t["side"] for t in d["trajectories"]] == ["L1 left", "L1 right", "L2 left", "L2 right"]
    mk = json.loads((out / "plan.mrk.json").read_text())
    names = {m.get("label") or m.get("name") for m in mk["markups"]}
    assert {"L1 left", "L2 right"} <= names


def test_export_anonymised_has_no_identifier(planned, qtbot, tmp_path):
    w = planned
    out = tmp_path / "anon"
    _export_with_dialog(qtbot, w, out, anonymize=True)
    assert w.actions_["anonymize"].isChecked()  # the dialog's switch is the File menu's
    assert "anonymised" in w.status_msg.text()
    texts = _all_text(out)
    assert {"plan.json", "plan.pdf", "plan.mrk.json", "vertebrae.nii.gz"} <= set(texts)
    for name, text in texts.items():
        for ident in SAMPLE_IDENTIFIERS:
            assert ident.lower() not in text.lower(), f"{ident} found in {name}"
    assert "L1 left" in texts["plan.pdf (text)"]
    w.actions_["anonymize"].trigger()  # back off for the next tests
    assert not w.actions_["anonymize"].isChecked()


def test_export_into_a_file_shows_one_line_error(planned, qtbot, tmp_path):
    w = planned
    f = tmp_path / "a_file"
    f.write_text("x")
    w.export_plan(f)
    _idle(qtbot, w)
    assert w.last_error and "\n" not in w.last_error and "a_file" in w.last_error
    for box in list(w.error_boxes):
        box.close()
    w.last_error = None


def test_import_labels_bad_file_shows_one_line_error(planned, qtbot, tmp_path, monkeypatch):
    w = planned
    bad = tmp_path / "labels.nii.gz"
    bad.write_bytes(b"not a label map")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(bad), "")))
    w.actions_["import_labels"].trigger()
    _idle(qtbot, w)
    assert w.last_error and "\n" not in w.last_error and "labels.nii.gz" in w.last_error
    assert w.session.anatomy is not None  # the previous segmentation is kept
    for box in list(w.error_boxes):
        box.close()
    w.last_error = None


@pytest.mark.needs_data
def test_mouse_only_bipedicular_plan_on_real_scan(window, qtbot, monkeypatch):
    """Issue 5's 'done': open a real scan, import its labels, plan L3 bipedicular, see the checks."""
    ct = require_shared("tptbox-l3-1.5mm", "sub-ct_label-22_ct.nii.gz")
    labels = require_shared("tptbox-l3-1.5mm", "sub-ct_seg-vert_label-22_msk.nii.gz")
    w = window
    w.session.modified = False
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(ct), "")))
    w.actions_["open_file"].trigger()
    _idle(qtbot, w)
    assert w.session.volume is not None and w.session.anatomy is None, w.last_error
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(labels), "")))
    w.actions_["import_labels"].trigger()
    assert w.busy  # in the worker thread
    _idle(qtbot, w)
    assert w.last_error is None, w.last_error
    a = w.session.anatomy
    assert [v.name for v in a.sorted_vertebrae()] == ["L2", "L3", "L4"]
    assert "imported" in a.method or "verse" in a.method.lower()
    plan_button = w.toolbar.widgetForAction(w.actions_["plan"])
    qtbot.mouseClick(plan_button, Qt.MouseButton.LeftButton)  # Plan… on the toolbar
    dlg = w.active_dialog
    assert dlg is not None
    _choose_in_plan_dialog(qtbot, dlg, ["L3"], "bipedicular")
    _idle(qtbot, w)
    assert w.last_error is None, w.last_error
    ts = w.session.trajectories
    assert sorted(t.side for t in ts) == ["left", "right"] and {t.level for t in ts} == {"L3"}
    for t in ts:
        assert t.status != "unsafe", (t.name, [(c.name, c.value) for c in t.checks if not c.passed])
        assert t.checks and 3.0 < abs(t.medial_angle_deg) < 40.0
    # the checks are on screen: the panel lists them for the selected trajectory
    w.panel.trajs.setCurrentItem(w.panel.trajs.topLevelItem(1))
    assert w.session.selected == 1
    det = w.panel.details
    groups = {det.topLevelItem(i).text(0): det.topLevelItem(i) for i in range(det.topLevelItemCount())}
    assert "Checks" in groups and groups["Checks"].childCount() == len(ts[1].checks)
    qtbot.waitUntil(lambda: w.fluoro_idle and w.fluoro["bullseye"].carm_view is not None, timeout=30_000)
    w.session.modified = False
