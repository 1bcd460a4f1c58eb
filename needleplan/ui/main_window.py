"""The main window: slice views, 3-D view, fluoroscopy views and the plan panel.

All state lives in a :class:`~needleplan.planner.session.PlanSession`; the window turns
user actions into session calls and redraws on session events.  Slow steps (loading,
segmenting, planning) run in a worker thread (:mod:`needleplan.ui.workers`).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (QComboBox, QDockWidget, QGridLayout, QLabel, QMainWindow,
                             QMessageBox, QProgressBar, QPushButton, QSplitter, QToolBar, QVBoxLayout,
                             QWidget)

from needleplan.planner.session import PlanSession
from needleplan.ui.dialogs import AddTrajectoryDialog, RenameLevelDialog
from needleplan.ui.fluoro_view import FluoroView
from needleplan.ui.plan_actions import PlanActions
from needleplan.ui.plan_panel import PlanPanel
from needleplan.ui.slice_view import SliceView
from needleplan.ui.slicing import PRESETS, SliceGeometry
from needleplan.ui.theme import COLORS
from needleplan.ui.study_actions import StudyActions
from needleplan.ui.workers import JobRunner

__all__ = ["MainWindow"]


class _Bridge(QObject):
    """Carries results from worker threads to the GUI thread (queued signal)."""

    done = pyqtSignal(int, object)

log = logging.getLogger(__name__)

FLUORO_PIXELS = 320  # full DRR size in the window
PREVIEW_PIXELS = 128  # while dragging


class MainWindow(StudyActions, PlanActions, QMainWindow):
    """needleplan's workstation window.

    Parameters
    ----------
    session : PlanSession, optional
    enable_3d : bool
        Create the VTK 3-D view (off in some tests to save time).
    settings : QSettings, optional
        Where recent studies are stored (tests pass a temporary one).
    auto_segment : bool
        After a plan is reopened with its study, segment the study in the background (for
        the overlays and the checks of later edits).
    """

    def __init__(self, session: PlanSession | None = None, *, enable_3d: bool = True, settings=None,
                 auto_segment: bool = True):
        super().__init__()
        self.auto_segment = auto_segment  # segment in the background after reopening a plan
        self.session = session or PlanSession()
        self.settings = settings or QSettings("needleplan", "needleplan")
        self.setWindowTitle("needleplan")
        self.resize(1600, 1000)
        self.setAcceptDrops(True)
        self.runner = JobRunner(self)
        self.runner.started.connect(self._job_started)
        self.runner.progress.connect(self._job_progress)
        self.runner.finished.connect(self._job_finished)
        self.last_error: str | None = None
        self.error_boxes: list[QMessageBox] = []
        self.pick_series = self._pick_series_dialog  # replaceable (tests)
        self._geom: SliceGeometry | None = None
        self._dragging = False
        self._pending_move = None
        self.timings_ms: dict[str, list[float]] = {"move": [], "preview": [], "full": []}
        self.last_export: dict | None = None
        self._init_plan_actions()

        self._build_views(enable_3d)
        self._build_actions()
        self._build_statusbar()

        s = self.session
        s.connect("study_changed", self._on_study)
        s.connect("anatomy_changed", self._on_anatomy)
        s.connect("plan_changed", self._on_plan)
        s.connect("trajectory_changed", self._on_trajectory)
        s.connect("selection_changed", self._on_selection)
        s.connect("history_changed", self._on_history)

        self._move_timer = QTimer(self)
        self._move_timer.setSingleShot(True)
        self._move_timer.setInterval(0)
        self._move_timer.timeout.connect(self._apply_pending_move)
        self._fluoro_timer = QTimer(self)
        self._fluoro_timer.setSingleShot(True)
        self._fluoro_timer.setInterval(350)  # full-size views once the mouse rests
        self._fluoro_timer.timeout.connect(lambda: self.render_fluoro(preview=False))
        self._fluoro_soon = QTimer(self)  # coalesces the several events of one edit into one render
        self._fluoro_soon.setSingleShot(True)
        self._fluoro_soon.setInterval(0)
        self._fluoro_soon.timeout.connect(lambda: self.render_fluoro(preview=False))
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="needleplan-fluoro")
        self._closed = False
        self._fluoro_gen = 0
        self._fluoro_busy = 0
        self._bridge = _Bridge()
        self._bridge.done.connect(self._fluoro_done)
        self._on_history()
        self._update_title()

    # ------------------------------------------------------------------ layout
    def _build_views(self, enable_3d: bool):
        self.views = {name: SliceView(name) for name in ("axial", "sagittal", "coronal")}
        for v in self.views.values():
            v.crosshair_moved.connect(self.set_crosshair)
            v.cursor_moved.connect(self._cursor)
            v.handle_dragged.connect(self._handle_dragged)
            v.window_changed.connect(self._window_changed)
            v.trajectory_picked.connect(self.session.select)
        self.view3d = None
        from PyQt6.QtGui import QGuiApplication

        if enable_3d and QGuiApplication.platformName() in ("offscreen", "minimal"):
            enable_3d = False  # VTK cannot draw into an offscreen Qt window (HEADLESS.md)
        if enable_3d:
            try:
                from needleplan.ui.view3d import View3D

                self.view3d = View3D()
            except Exception as exc:  # no OpenGL: keep the 2-D workstation usable
                log.warning("3-D view disabled: %s", exc)
        grid = QWidget()
        g = QGridLayout(grid)
        g.setContentsMargins(0, 0, 0, 0)
        g.setSpacing(2)
        g.addWidget(self._framed(self.views["axial"]), 0, 0)
        g.addWidget(self._framed(self.views["sagittal"]), 0, 1)
        g.addWidget(self._framed(self.views["coronal"]), 1, 0)
        g.addWidget(self._framed(self.view3d if self.view3d is not None else
                                 QLabel("3-D view unavailable", alignment=Qt.AlignmentFlag.AlignCenter)), 1, 1)
        for i in range(2):
            g.setRowStretch(i, 1)
            g.setColumnStretch(i, 1)
        self.fluoro = {"bullseye": FluoroView("bullseye"), "progression": FluoroView("progression")}
        fl = QSplitter(Qt.Orientation.Vertical)
        fl.addWidget(self._framed(self.fluoro["bullseye"]))
        fl.addWidget(self._framed(self.fluoro["progression"]))
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(grid)
        split.addWidget(fl)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([860, 330])
        self.setCentralWidget(split)
        self.panel = PlanPanel(self.session)
        self.panel.add_requested.connect(self.add_trajectory_dialog)
        self.panel.delete_requested.connect(self.delete_trajectory)
        self.panel.rename_requested.connect(self.rename_level_dialog)
        self.panel.gauge_requested.connect(lambda i, g: self._guard(self.session.set_gauge, i, g))
        dock = QDockWidget("Plan", self)
        dock.setObjectName("planDock")
        dock.setWidget(self.panel)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        dock.setMinimumWidth(430)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)

    @staticmethod
    def _framed(w: QWidget) -> QWidget:
        f = QWidget()
        f.setStyleSheet(f"background: {COLORS['border']};")
        lay = QVBoxLayout(f)
        lay.setContentsMargins(1, 1, 1, 1)
        lay.addWidget(w)
        w.setStyleSheet("")
        return f

    def _act(self, text, slot, shortcut=None, tip=None, checkable=False) -> QAction:
        a = QAction(text, self)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(f"{tip} ({a.shortcut().toString()})" if shortcut else tip)
        a.setCheckable(checkable)
        a.triggered.connect(slot)
        self.addAction(a)
        return a

    def _build_actions(self):
        A = {}
        A["open"] = self._act("Open study…", self.open_study_dialog, "Ctrl+O", "Open a DICOM folder")
        A["open_file"] = self._act("Open image file…", self.open_file_dialog, "Ctrl+Shift+O",
                                   "Open a NIfTI / NRRD / MHA / DICOM file")
        A["open_plan"] = self._act("Open plan…", self.open_plan_dialog, "Ctrl+L", "Open a plan.json")
        A["save"] = self._act("Save plan", self.save_plan, "Ctrl+S", "Save the plan (plan.json)")
        A["save_as"] = self._act("Save plan as…", self.save_plan_as, "Ctrl+Shift+S", "Save the plan under a new name")
        A["quit"] = self._act("Quit", self.close, "Ctrl+Q")
        A["undo"] = self._act("Undo", self.undo, "Ctrl+Z", "Undo the last edit")
        A["redo"] = self._act("Redo", self.redo, "Ctrl+Shift+Z", "Redo")
        redo2 = QAction(self)
        redo2.setShortcut(QKeySequence("Ctrl+Y"))
        redo2.triggered.connect(self.redo)
        self.addAction(redo2)
        A["segment"] = self._act("Segment", self.run_segmentation, "Ctrl+G", "Find the vertebrae and pedicles")
        A["plan"] = self._act("Plan…", self.plan_dialog, "Ctrl+P",
                              "Segment (if needed), choose levels and approach, plan trajectories")
        A["import_labels"] = self._act("Import vertebra labels…", self.import_labels_dialog, "Ctrl+I",
                                       "Use a TotalSegmentator / VerSe label map instead of the built-in segmentation")
        A["export"] = self._act("Export plan folder…", self.export_plan_dialog, "Ctrl+E",
                                "Write plan.json, plan.pdf, Slicer markups and label maps into a folder")
        A["anonymize"] = self._act("Anonymise exports", self._anonymize_toggled, None,
                                   "Leave patient name, ID, birth date, dates and UIDs out of every export",
                                   checkable=True)
        A["anonymize"].blockSignals(True)
        A["anonymize"].setChecked(str(self.settings.value("anonymize", "false")).lower() in ("true", "1"))
        A["anonymize"].blockSignals(False)
        A["add"] = self._act("Add trajectory…", self.add_trajectory_dialog, "Ctrl+N", "Add a trajectory")
        A["delete"] = self._act("Delete trajectory", lambda: self.delete_trajectory(self.session.selected),
                                "Delete", "Delete the selected trajectory")
        A["next"] = self._act("Next trajectory", lambda: self._step_selection(1), "N", "Select the next trajectory")
        A["prev"] = self._act("Previous trajectory", lambda: self._step_selection(-1), "Shift+N",
                              "Select the previous trajectory")
        A["rename"] = self._act("Rename level…", lambda: self.rename_level_dialog(None), "F2", "Correct a level name")
        A["labels"] = self._act("Labels", self._toggle_labels, "L", "Show vertebra labels and pedicle outlines",
                                checkable=True)
        A["labels"].setChecked(True)
        A["reset"] = self._act("Reset views", self.reset_views, "R", "Fit all views")
        A["needle_cam"] = self._act("Look down needle", self.look_down_needle, "B",
                                    "Point the 3-D camera down the selected needle")
        A["goto"] = self._act("Go to needle", self.center_on_selected, "G", "Centre the slices on the selected needle")
        self.actions_ = A
        for k, short in (("open", "Open"), ("save", "Save"), ("export", "Export"), ("plan", "Plan"),
                         ("add", "Add"), ("delete", "Delete"),
                         ("reset", "Reset"), ("goto", "Go to needle"), ("needle_cam", "Needle view")):
            A[k].setIconText(short)
        st = self.style()
        from PyQt6.QtWidgets import QStyle

        for k, icon in (("open", QStyle.StandardPixmap.SP_DirOpenIcon),
                        ("save", QStyle.StandardPixmap.SP_DialogSaveButton),
                        ("export", QStyle.StandardPixmap.SP_DriveFDIcon),
                        ("undo", QStyle.StandardPixmap.SP_ArrowBack),
                        ("redo", QStyle.StandardPixmap.SP_ArrowForward),
                        ("plan", QStyle.StandardPixmap.SP_MediaPlay),
                        ("delete", QStyle.StandardPixmap.SP_TrashIcon)):
            A[k].setIcon(st.standardIcon(icon))
        for i, name in enumerate(PRESETS):
            self._act(f"Preset {name}", lambda _=False, n=name: self.set_preset(n), str(i + 1),
                      f"Window preset {name}")

        mb = self.menuBar()
        m = mb.addMenu("&File")
        for k in ("open", "open_file"):
            m.addAction(A[k])
        self.recent_menu = m.addMenu("Recent studies")
        self._fill_recent()
        m.addSeparator()
        m.addAction(A["import_labels"])
        m.addSeparator()
        for k in ("open_plan", "save", "save_as", None, "export", "anonymize"):
            m.addSeparator() if k is None else m.addAction(A[k])
        m.addSeparator()
        m.addAction(A["quit"])
        m = mb.addMenu("&Edit")
        for k in ("undo", "redo", None, "add", "delete", "next", "prev", None, "rename"):
            m.addSeparator() if k is None else m.addAction(A[k])
        m = mb.addMenu("&Planning")
        for k in ("segment", "import_labels", "plan"):
            m.addAction(A[k])
        m = mb.addMenu("&View")
        for k in ("labels", "reset", "goto", "needle_cam"):
            m.addAction(A[k])
        pm = m.addMenu("Window presets")
        for name, (w, lv) in PRESETS.items():
            a = pm.addAction(f"{name}  (W {w:.0f} / L {lv:.0f})")
            a.triggered.connect(lambda _=False, n=name: self.set_preset(n))
        m = mb.addMenu("&Help")
        A["keys"] = self._act("Mouse and keyboard…", self.show_help, "F1", "Mouse and keyboard controls")
        m.addAction(A["keys"])

        self.toolbar = tb = QToolBar("Main")
        tb.setObjectName("mainToolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(tb)
        for k in ("open", "save", "export", None, "undo", "redo", None, "plan", "add", "delete", None):
            tb.addSeparator() if k is None else tb.addAction(A[k])
        tb.addWidget(QLabel(" Window "))
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS) + ["Custom"])
        self.preset.setToolTip("Window/level preset (1–5); right-drag in a view to adjust")
        self.preset.textActivated.connect(lambda n: n in PRESETS and self.set_preset(n))
        tb.addWidget(self.preset)
        for k in ("labels", "reset", "goto", "needle_cam"):
            tb.addAction(A[k])

    def _build_statusbar(self):
        sb = self.statusBar()
        self.status_msg = QLabel("Open a study (Ctrl+O) or drop a DICOM folder on the window")
        sb.addWidget(self.status_msg, 1)
        self.cursor_label = QLabel("")
        self.cursor_label.setMinimumWidth(340)
        sb.addPermanentWidget(self.cursor_label)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setMaximumHeight(16)
        self.progress.hide()
        sb.addPermanentWidget(self.progress)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setMaximumHeight(20)
        self.cancel_btn.clicked.connect(self.cancel_job)
        self.cancel_btn.hide()
        sb.addPermanentWidget(self.cancel_btn)

    # ------------------------------------------------------------------ messages
    def show_status(self, text: str):
        self.status_msg.setText(text)

    def show_error(self, message: str, title: str = "needleplan"):
        """A non-blocking error box with the CLI's one-line message."""
        self.last_error = message
        self.show_status(f"Error: {message}")
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.finished.connect(lambda *_: self.error_boxes.remove(box) if box in self.error_boxes else None)
        self.error_boxes.append(box)
        box.open()

    def _guard(self, fn, *args, **kw):
        """Call a session edit; show ValueError/NeedlePlanError messages instead of raising."""
        try:
            return fn(*args, **kw)
        except (ValueError, IndexError, RuntimeError) as exc:
            self.show_error(" ".join(str(exc).split()))
            return None

    # ------------------------------------------------------------------ session -> views
    def _on_study(self):
        vol = self.session.volume
        self._geom = SliceGeometry(vol.ijk_to_lps, vol.shape) if vol is not None else None
        for v in self.views.values():
            v.set_volume(vol, self._geom)
        if vol is not None:
            self.set_crosshair(self._geom.c_to_lps((np.array(self._geom.shape) - 1) / 2.0))
        self._update_title()

    def _on_anatomy(self):
        a = self.session.anatomy
        for v in self.views.values():
            v.set_anatomy(a)
        if self.view3d is not None:
            try:
                self.view3d.set_anatomy(a, self.session.volume)
            except Exception as exc:  # surface extraction must never kill the window
                log.warning("3-D surface failed: %s", exc)

    def _on_plan(self):
        self._push_trajectories()
        self._fluoro_soon.start()

    def _on_trajectory(self, index):
        self._push_trajectories(with_3d=not self._dragging)
        if index == self.session.selected:
            if self._dragging:
                self.render_fluoro(preview=True)
                self._fluoro_timer.start()  # full view once the mouse rests
            else:
                self._fluoro_soon.start()

    def _on_selection(self, index):
        self._push_trajectories()
        self._fluoro_soon.start()

    def _on_history(self):
        self.actions_["undo"].setEnabled(self.session.can_undo)
        self.actions_["redo"].setEnabled(self.session.can_redo)
        self._update_title()

    def _push_trajectories(self, with_3d: bool = True):
        s = self.session
        for v in self.views.values():
            v.set_trajectories(s.trajectories, s.selected)
        if self.view3d is not None and with_3d:
            self.view3d.set_trajectories(s.trajectories, s.selected)

    def render_fluoro(self, preview: bool = False):
        """(Re)render the bull's-eye and progression views of the selected trajectory.

        Previews (while dragging) are rendered at once (small and fast); full-size views
        are rendered in a worker thread and shown when ready (stale results are dropped).
        """
        s = self.session
        self._fluoro_soon.stop()
        if self._closed:
            return
        args = (s.volume, list(s.trajectories), s.selected, s.patient_position)
        self._fluoro_gen += 1
        if preview:
            t0 = time.perf_counter()
            for kind, fv in self.fluoro.items():
                try:
                    fv.show_result(FluoroView.compute(kind, *args, pixels=PREVIEW_PIXELS, preview=True,
                                                      all_needles=False))
                except Exception as exc:  # a renderer failure must not break editing
                    log.warning("fluoroscopy preview failed: %s", exc)
                    fv.clear(f"Render failed: {exc}")
            self.timings_ms["preview"].append((time.perf_counter() - t0) * 1000)
            return
        gen = self._fluoro_gen
        self._fluoro_busy += 1

        def work():
            t0 = time.perf_counter()
            out = {}
            for kind in self.fluoro:
                try:
                    out[kind] = FluoroView.compute(kind, *args, pixels=FLUORO_PIXELS)
                except Exception as exc:  # reported in the view
                    out[kind] = {"trajectories": args[1], "selected": args[2], "preview": False,
                                 "message": f"Render failed: {exc}"}
            out["ms"] = (time.perf_counter() - t0) * 1000
            self._bridge.done.emit(gen, out)

        self._pool.submit(work)

    def _fluoro_done(self, gen: int, out: dict):
        self._fluoro_busy -= 1
        if gen != self._fluoro_gen:
            return  # the plan changed meanwhile: a newer render is on its way
        self.timings_ms["full"].append(out.pop("ms"))
        for kind, res in out.items():
            self.fluoro[kind].show_result(res)

    @property
    def fluoro_idle(self) -> bool:
        """True when no full-size fluoroscopy render is pending (tests wait for this)."""
        return self._fluoro_busy == 0 and not self._fluoro_soon.isActive()

    def _update_title(self):
        s = self.session
        name = "no study"
        if s.volume is not None:
            src = s.volume.meta.get("source") or s.volume.meta.get("description") or "study"
            name = Path(str(src)).name
        plan = f" — {s.plan_path.name}" if s.plan_path else ""
        self.setWindowTitle(f"needleplan — {name}{plan}{' *' if s.modified else ''}")

    # ------------------------------------------------------------------ view actions
    def set_crosshair(self, lps):
        for v in self.views.values():
            v.set_crosshair_lps(lps)

    def _cursor(self, lps, hu):
        hu_txt = "–" if hu is None else f"{hu:.0f}"
        self.cursor_label.setText(f"LPS ({lps[0]:+7.1f}, {lps[1]:+7.1f}, {lps[2]:+7.1f}) mm   HU {hu_txt}")

    def set_preset(self, name: str):
        w, lv = PRESETS[name]
        for v in self.views.values():
            v.set_window(w, lv)
        self.preset.setCurrentText(name)

    def _window_changed(self, w, lv):
        for v in self.views.values():
            if (v.width_hu, v.level_hu) != (w, lv):
                v.set_window(w, lv)
        self.preset.setCurrentText("Custom")

    def _toggle_labels(self):
        on = self.actions_["labels"].isChecked()
        for v in self.views.values():
            v.set_show_labels(on)

    def reset_views(self):
        for v in self.views.values():
            v.reset_view()
        if self.view3d is not None:
            self.view3d.reset_camera()

    def center_on_selected(self):
        t = self.session.selected_trajectory
        if t is not None:
            self.set_crosshair(t.target_lps)

    def focus_on_plan(self):
        """Zoom the slice views onto the planned needles (after planning; R fits again)."""
        ts = self.session.trajectories
        if not ts:
            return
        pts = np.array([p for t in ts for p in (t.skin_entry_lps, t.target_lps)])
        t = self.session.selected_trajectory or ts[0]
        self.set_crosshair(t.target_lps)
        extent = float(np.max(np.ptp(pts, axis=0)))
        field = float(np.clip(1.15 * extent + 20.0, 100.0, 280.0))  # the needles with their skin entries
        center = (pts.min(axis=0) + pts.max(axis=0)) / 2
        for v in self.views.values():
            v.zoom_to(center, field)

    def look_down_needle(self):
        t = self.session.selected_trajectory
        if t is None:
            self.show_status("Select a trajectory first")
            return None
        if self.view3d is None:
            self.show_status("3-D view unavailable")
            return None
        return self.view3d.look_down_needle(t)

    # ------------------------------------------------------------------ edits
    def _handle_dragged(self, index, handle, lps, finished):
        if not self._dragging:
            self._dragging = True
            self.session.begin_edit()
        self._pending_move = (index, handle, np.asarray(lps, float))
        if finished:
            self._move_timer.stop()
            self._apply_pending_move(final=True)
        elif not self._move_timer.isActive():
            self._move_timer.start()

    def _apply_pending_move(self, final: bool = False):
        if self._pending_move is None:
            return
        index, handle, lps = self._pending_move
        self._pending_move = None
        t0 = time.perf_counter()
        try:
            self.session.move_point(index, handle, lps, full=True)
        except (ValueError, IndexError) as exc:
            self.show_status(" ".join(str(exc).split()))
        self.timings_ms["move"].append((time.perf_counter() - t0) * 1000)
        if final:
            self._dragging = False
            self.session.end_edit()
            self._fluoro_timer.stop()
            self._push_trajectories()
            self.render_fluoro(preview=False)
            t = self.session.trajectories[index] if index < len(self.session.trajectories) else None
            if t is not None:
                msg = f"{t.name}: {t.status}"
                if self.session.last_error:
                    msg += f" ({self.session.last_error})"
                self.show_status(msg)

    def undo(self):
        if self.session.undo():
            self.show_status("Undone")

    def redo(self):
        if self.session.redo():
            self.show_status("Redone")

    def _step_selection(self, step):
        n = len(self.session.trajectories)
        if n:
            cur = self.session.selected if self.session.selected is not None else -step
            self.session.select((cur + step) % n)
            self.center_on_selected()

    def add_trajectory_dialog(self, _checked=False):
        a = self.session.anatomy
        if a is None or not a.vertebrae:
            self.show_error("no segmentation yet: run Segment (Ctrl+G) or Plan (Ctrl+P) first")
            return
        dlg = AddTrajectoryDialog([v.name for v in a.sorted_vertebrae()], self)
        if dlg.exec():
            level, side = dlg.values()
            if self._guard(self.session.new_trajectory, level, side) is not None:
                self.center_on_selected()

    def delete_trajectory(self, index):
        if index is None:
            return
        self._guard(self.session.delete_trajectory, index)

    def rename_level_dialog(self, old: str | None):
        a = self.session.anatomy
        if old is None:
            names = [v.name for v in a.sorted_vertebrae()] if a is not None else []
            t = self.session.selected_trajectory
            old = t.level if t is not None else (names[0] if names else None)
        if old is None:
            self.show_error("no levels to rename")
            return
        dlg = RenameLevelDialog(old, self)
        if dlg.exec():
            self._guard(self.session.rename_level, old, dlg.value())

    def show_help(self):
        keys = [(a.text(), a.shortcut().toString()) for a in self.actions_.values() if not a.shortcut().isEmpty()]
        rows = "".join(f"<tr><td>{k}</td><td>&nbsp;&nbsp;<b>{v}</b></td></tr>" for k, v in keys)
        text = ("<p><b>Slice views</b>: left-drag moves the crosshair (linked), or a needle's entry "
                "(square) / target (circle) when you press on one; right-drag = window/level; "
                "middle-drag or Shift+left = pan; wheel = slice; Ctrl+wheel = zoom; double-click = fit; "
                "1–5 = window presets.</p>"
                f"<table>{rows}</table>")
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Mouse and keyboard", text, QMessageBox.StandardButton.Ok, self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.open()

    # ------------------------------------------------------------------ closing
    def closeEvent(self, ev):
        if not self._confirm_discard():
            ev.ignore()
            return
        self._closed = True
        for t in (self._move_timer, self._fluoro_timer, self._fluoro_soon):
            t.stop()
        self.runner.shutdown()
        self._fluoro_gen += 1
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self.view3d is not None:
            self.view3d.close_vtk()
        super().closeEvent(ev)
