"""Opening studies and plans, running the slow steps in the background, saving.

A mixin of :class:`~needleplan.ui.main_window.MainWindow` (split out to keep modules small);
it uses the window's ``session``, ``runner``, ``settings``, ``actions_`` and status widgets.
"""

from __future__ import annotations

import os
from pathlib import Path

from PyQt6.QtWidgets import QFileDialog, QMessageBox

from needleplan.planner.model import Plan
from needleplan.ui.dialogs import SeriesPicker
from needleplan.ui.fluoro_view import prepare_fluoro

__all__ = ["StudyActions", "MAX_RECENT"]

MAX_RECENT = 8
BUSY_ACTIONS = ("plan", "segment", "open", "open_file", "import_labels", "export")  # off while a job runs


class StudyActions:
    """Open / load / segment / plan / save / recent studies / drag and drop."""

    # ------------------------------------------------------------------ jobs
    def _job_started(self, label):
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_btn.show()
        self.show_status(f"{label}…")
        for k in BUSY_ACTIONS:
            self.actions_[k].setEnabled(False)

    def _job_progress(self, frac, what):
        if frac < 0:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(frac * 1000))
        self.show_status(f"{what}…")

    def _job_finished(self, label, result, message, kind):
        self.progress.hide()
        self.cancel_btn.hide()
        for k in BUSY_ACTIONS:
            self.actions_[k].setEnabled(True)
        if kind == "cancelled":
            self.show_status(f"{label}: cancelled")
        elif message:
            self.show_error(message, title=f"{label} failed")
        else:
            self.show_status(f"{label}: done")  # the step's own callback then says more

    def cancel_job(self):
        self.runner.cancel()

    @property
    def busy(self) -> bool:
        return self.runner.busy

    # ------------------------------------------------------------------ opening
    def open_study_dialog(self):
        start = self.settings.value("last_dir", str(Path.home()))
        path = QFileDialog.getExistingDirectory(self, "Open a DICOM folder", start)
        if path:
            self.open_study(path)

    def open_file_dialog(self):
        start = self.settings.value("last_dir", str(Path.home()))
        path, _ = QFileDialog.getOpenFileName(self, "Open a CT image", start,
                                              "CT images (*.nii *.nii.gz *.nrrd *.nhdr *.mha *.mhd *.dcm);;All files (*)")
        if path:
            self.open_study(path)

    def open_study(self, path, *, series_uid: str | None = None, plan_path=None, auto_plan: bool = False,
                   labels=None):
        """Load a study in the background (choosing a series when a folder holds several).

        ``labels``: a vertebra label map (TotalSegmentator / VerSe) imported right after loading.
        """
        path = str(path)
        if self.busy:
            self.show_error("another step is still running; wait or press Cancel")
            return
        if not self._confirm_discard():
            return
        p = Path(path)
        if p.is_dir() and series_uid is None:
            from needleplan.io import scan_path

            def scan(progress):
                return scan_path(p, progress=progress)

            def scanned(result):
                cts = [s for s in result if s.is_ct] or list(result)
                uid = None
                if len(cts) > 1:
                    uid = self.pick_series(cts)
                    if uid is None:
                        self.show_status("Opening cancelled")
                        return
                elif cts:
                    uid = cts[0].series_uid
                self._load(path, uid, plan_path, auto_plan, labels)

            self.runner.start("Scanning folder", scan, scanned)
        else:
            self._load(path, series_uid, plan_path, auto_plan, labels)

    def _pick_series_dialog(self, series) -> str | None:
        dlg = SeriesPicker(series, self)
        return dlg.selected_uid() if dlg.exec() else None

    def _load(self, path, series_uid, plan_path, auto_plan, labels=None):
        from needleplan.io import load_ct

        def load(progress):
            vol = load_ct(path, series_uid=series_uid, progress=progress)
            progress(0, 0, "preparing fluoroscopy")
            prepare_fluoro(vol)  # attenuation pyramids, so the first drag is not slow
            return vol

        def loaded(volume):
            volume.meta.setdefault("source", str(path))
            self.labels_path = None
            self.session.set_study(volume)
            self._add_recent(path)
            n = volume.meta.get("warnings") or []
            self.show_status(f"Loaded {Path(path).name}: {volume.shape[0]}×{volume.shape[1]}×{volume.shape[2]}, "
                             f"{' × '.join(f'{s:.2f}' for s in volume.spacing_mm)} mm"
                             + (f" · {len(n)} warning(s): {n[0]}" if n else "")
                             + ("" if plan_path or auto_plan or labels else " · press Plan (Ctrl+P)"))
            if labels is not None:
                self.import_labels(labels, then=self.run_planning if auto_plan and plan_path is None else None)
                if plan_path is not None:
                    self.open_plan(plan_path, allow_reload=False)
            elif plan_path is not None:
                self.open_plan(plan_path, allow_reload=False)
                if self.auto_segment:
                    self.run_segmentation(quiet=True)
            elif auto_plan:
                self.run_planning()

        self.runner.start("Loading CT", load, loaded)

    def run_segmentation(self, _checked=False, *, then_open_plan=None, then=None, quiet: bool = False):
        """Segment the open study in the background (``quiet``: no error box if unavailable).

        Uses the imported label map (File > Import vertebra labels…) when there is one;
        ``then()`` runs in the GUI thread after success.
        """
        vol = self.session.volume
        if vol is None:
            self.show_error("no study open: open a CT first (Ctrl+O)")
            return
        if self.busy:
            return
        import needleplan.segmentation as seg_mod

        if not hasattr(seg_mod, "segment"):
            msg = "segmentation is not available in this build"
            self.show_status(msg) if quiet else self.show_error(msg)
            return

        labels = self.labels_path

        def seg(progress):
            from needleplan.segmentation import segment  # type: ignore[attr-defined]

            return segment(vol, labels=labels, progress=progress)

        def done(anatomy):
            self.session.set_anatomy(anatomy)
            self.show_status(f"Segmented {len(anatomy.vertebrae)} vertebrae: "
                             + ", ".join(v.name for v in anatomy.sorted_vertebrae()))
            if then_open_plan is not None:
                self.open_plan(then_open_plan)
            if then is not None:
                then()

        self.runner.start("Segmenting", seg, done)

    def open_plan_dialog(self):
        start = self.settings.value("last_dir", str(Path.home()))
        path, _ = QFileDialog.getOpenFileName(self, "Open a plan", start, "Plans (*.json);;All files (*)")
        if path:
            self.open_plan(path)

    def open_plan(self, path, *, allow_reload: bool = True):
        """Open a plan.json; loads its study first when none (or another one) is open.

        ``allow_reload=False`` (used right after that load) never loads a study again, so a
        plan whose series cannot be matched is shown with a warning instead of looping.
        """
        from needleplan.io import read_plan_json

        try:
            d = read_plan_json(path)
        except Exception as exc:  # NeedlePlanError or OSError
            self.show_error(" ".join(str(exc).split()))
            return
        plan = d if isinstance(d, Plan) else Plan.from_dict(d)
        vol = self.session.volume
        src = plan.input.get("source")
        same = vol is not None and (not plan.input.get("series_uid")
                                    or plan.input.get("series_uid") == vol.meta.get("series_uid"))
        if not same:
            if allow_reload and src and Path(src).exists():
                self.open_study(src, series_uid=plan.input.get("series_uid"), plan_path=path)
                return
            if vol is None:
                self.show_error(f"{path}: its study ({src or 'unknown source'}) was not found; open the CT first")
                return
        self.session.set_plan(plan, plan_path=path)
        self.show_status(f"Opened plan {path}" + ("" if same else
                                                  " · warning: it was made on another series"))

    def save_plan(self, _checked=False, path=None) -> bool:
        path = path or (str(self.session.plan_path) if self.session.plan_path else None)
        if path is None:
            return self.save_plan_as()
        vol = self.session.volume
        src = self.session.plan.input.get("source") or (vol.meta.get("source") if vol is not None else None)
        if src:  # an absolute path, so that the plan reopens with its study from anywhere
            src = Path(str(src))
            self.session.plan.input["source"] = str(src.resolve()) if src.exists() else str(src)
        try:
            out = self.session.save(path)
        except Exception as exc:  # NeedlePlanError (OutputError) or OSError
            self.show_error(" ".join(str(exc).split()))
            return False
        self.show_status(f"Saved {out}")
        self._update_title()
        return True

    def save_plan_as(self, _checked=False) -> bool:
        start = str(self.session.plan_path or Path(self.settings.value("last_dir", str(Path.home()))) / "plan.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save plan", start, "Plans (*.json)")
        return bool(path) and self.save_plan(path=path)

    def _confirm_discard(self) -> bool:
        if not self.session.modified or os.environ.get("NEEDLEPLAN_NO_CONFIRM"):
            return True
        r = QMessageBox.question(self, "Unsaved plan", "The plan has unsaved changes. Discard them?",
                                 QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel)
        return r == QMessageBox.StandardButton.Discard

    # recent studies ------------------------------------------------------
    def recent_studies(self) -> list[str]:
        v = self.settings.value("recent", [])
        if isinstance(v, str):
            v = [v]
        return [str(x) for x in (v or [])]

    def _add_recent(self, path):
        path = str(Path(path).resolve())
        rec = [path] + [r for r in self.recent_studies() if r != path]
        self.settings.setValue("recent", rec[:MAX_RECENT])
        self.settings.setValue("last_dir", str(Path(path).parent))
        self._fill_recent()

    def _fill_recent(self):
        self.recent_menu.clear()
        rec = self.recent_studies()
        for r in rec:
            a = self.recent_menu.addAction(r)
            a.triggered.connect(lambda _=False, p=r: self.open_study(p))
        self.recent_menu.setEnabled(bool(rec))

    # drag and drop ----------------------------------------------------------
    def dragEnterEvent(self, ev):
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev):
        urls = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if not urls:
            return
        p = urls[0]
        if p.lower().endswith(".json"):
            self.open_plan(p)
        else:
            self.open_study(p)
