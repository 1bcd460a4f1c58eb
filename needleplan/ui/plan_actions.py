"""Planning chosen levels, importing vertebra labels and exporting the plan folder.

A mixin of :class:`~needleplan.ui.main_window.MainWindow` (beside
:class:`~needleplan.ui.study_actions.StudyActions`); slow steps run through the window's
``runner`` (worker thread, progress, cancel) and errors show the CLI's one-line message.
"""

from __future__ import annotations

import copy
from pathlib import Path

from PyQt6.QtWidgets import QFileDialog

from needleplan.planner.model import PlanRequest
from needleplan.ui.dialogs import ExportDialog, PlanDialog

__all__ = ["PlanActions", "LABEL_FILTER"]

LABEL_FILTER = "Label maps (*.nii *.nii.gz *.nrrd *.nhdr *.mha *.mhd);;All files (*)"


class PlanActions:
    """Plan… (levels, approach, gauge), Import vertebra labels…, Export plan folder…."""

    #: last choices of the Plan dialog (the next dialog starts from them)
    plan_options: dict

    def _init_plan_actions(self):
        self.plan_options = {"levels": None, "approach": "auto", "gauge": 11}
        self.labels_path: str | None = None
        self.active_dialog = None  # the open Plan/Export dialog (tests drive it)

    # ------------------------------------------------------------------ planning
    def plan_dialog(self, _checked=False):
        """Plan (Ctrl+P): segment first when needed, then choose levels and approach."""
        vol = self.session.volume
        if vol is None:
            self.show_error("no study open: open a CT first (Ctrl+O)")
            return
        if self.busy:
            return
        if self.session.anatomy is None:
            self.run_segmentation(then=self._open_plan_dialog)
        else:
            self._open_plan_dialog()

    def _open_plan_dialog(self):
        a = self.session.anatomy
        levels = [v.name for v in a.sorted_vertebrae()] if a is not None else []
        o = self.plan_options
        checked = [lv for lv in (o["levels"] or levels) if lv in levels] or levels
        notes = {}
        for v in (a.sorted_vertebrae() if a is not None else []):
            sides = " and ".join(sorted(v.pedicles)) or "no"
            flags = "; ".join(f.replace("_", " ") for f in v.flags)
            notes[v.name] = f"{v.name}: {sides} pedicle(s) found" + (f"; {flags}" if flags else "")
        dlg = PlanDialog(levels, checked=checked, approach=o["approach"], gauge=o["gauge"],
                         has_plan=bool(self.session.trajectories), notes=notes, parent=self)
        self.active_dialog = dlg

        def finished(result):
            self.active_dialog = None
            if result:
                v = dlg.values()
                self.run_planning(levels=v["levels"], approach=v["approach"], gauge=v["gauge"],
                                  keep_other_levels=v["keep_other_levels"])
            dlg.deleteLater()

        dlg.finished.connect(finished)
        dlg.open()  # window-modal, does not block the event loop
        return dlg

    def run_planning(self, _checked=False, *, levels=None, approach: str | None = None, gauge: int | None = None,
                     keep_other_levels: bool = False):
        """Segment (if needed) and plan ``levels`` (None: all) in the background."""
        vol = self.session.volume
        if vol is None:
            self.show_error("no study open: open a CT first (Ctrl+O)")
            return
        if self.busy:
            return
        o = self.plan_options
        approach = approach or o["approach"]
        gauge = int(gauge or o["gauge"])
        self.plan_options = {"levels": list(levels) if levels else None, "approach": approach, "gauge": gauge}
        anatomy = self.session.anatomy
        labels = self.labels_path
        req = PlanRequest(levels=list(levels) if levels else None, approach=approach, gauge=gauge)

        def work(progress):
            from needleplan.planner import plan as make_plan

            a = anatomy
            if a is None:
                from needleplan.segmentation import segment

                a = segment(vol, labels=labels, progress=progress)
            progress(0, 0, "planning trajectories")
            return a, make_plan(vol, a, req, progress=progress)

        def done(result):
            a, plan = result
            if a is not self.session.anatomy:
                self.session.set_anatomy(a)
            plan.input.setdefault("source", vol.meta.get("source"))
            plan.input.setdefault("segmentation", a.method)
            if keep_other_levels and levels:
                self.session.merge_plan(plan)
            else:
                self.session.set_plan(plan, plan_path=self.session.plan_path, undoable=True)
            self.focus_on_plan()
            ok = sum(t.status == "ok" for t in plan.trajectories)
            warn = sum(t.status == "warning" for t in plan.trajectories)
            lv = ", ".join(f"{x.level} {x.recommendation}" for x in plan.levels) or "no level"
            self.show_status(f"Plan ({approach}): {len(plan.trajectories)} trajectories, {ok} ok, {warn} warning, "
                             f"{len(plan.trajectories) - ok - warn} unsafe · {lv}")

        self.runner.start("Planning", work, done)

    # ------------------------------------------------------------------ labels
    def import_labels_dialog(self, _checked=False):
        if self.session.volume is None:
            self.show_error("no study open: open the CT first, then import its labels")
            return
        start = self.settings.value("last_labels_dir", self.settings.value("last_dir", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Import vertebra labels (TotalSegmentator / VerSe)",
                                              str(start), LABEL_FILTER)
        if path:
            self.import_labels(path)

    def import_labels(self, path, *, then=None):
        """Use an external vertebra label map (TotalSegmentator, VerSe) as the segmentation."""
        vol = self.session.volume
        if vol is None:
            self.show_error("no study open: open the CT first, then import its labels")
            return
        if self.busy:
            self.show_error("another step is still running; wait or press Cancel")
            return
        path = str(path)
        if not Path(path).exists():
            self.show_error(f"label file '{path}' does not exist")
            return

        def work(progress):
            from needleplan.segmentation import segment

            return segment(vol, labels=path, progress=progress)

        def done(anatomy):
            self.labels_path = path
            self.settings.setValue("last_labels_dir", str(Path(path).parent))
            self.session.set_anatomy(anatomy)
            names = [v.name for v in anatomy.sorted_vertebrae()]
            peds = sum(len(v.pedicles) for v in anatomy.vertebrae.values())
            self.show_status(f"Imported {Path(path).name}: {len(names)} vertebrae ({', '.join(names)}), "
                             f"{peds} pedicles · press Plan (Ctrl+P)")
            if then is not None:
                then()

        self.runner.start("Importing labels", work, done)

    # ------------------------------------------------------------------ export
    @property
    def anonymize_exports(self) -> bool:
        return self.actions_["anonymize"].isChecked()

    def _anonymize_toggled(self, on: bool):
        self.settings.setValue("anonymize", bool(on))
        self.show_status("Exports will be anonymised" if on else "Exports will carry the patient's identity")

    def _default_export_dir(self) -> str:
        if self.session.plan_path is not None:
            return str(Path(self.session.plan_path).parent)
        base = Path(str(self.settings.value("last_export_dir", "") or self.settings.value("last_dir", Path.home())))
        return str(base / "needleplan-plan")

    def export_plan_dialog(self, _checked=False):
        """Export plan folder… (Ctrl+E): folder, what to write, anonymise."""
        if not self._can_export():
            return None
        dlg = ExportDialog(self._default_export_dir(), anonymize=self.anonymize_exports,
                           has_labels=self.session.anatomy is not None, parent=self)
        self.active_dialog = dlg

        def finished(result):
            self.active_dialog = None
            if result:
                v = dlg.values()
                if v["anonymize"] != self.anonymize_exports:
                    self.actions_["anonymize"].setChecked(v["anonymize"])
                folder = v.pop("folder")
                if not folder:
                    self.show_error("no folder given for the plan export")
                else:
                    self.export_plan(folder, **v)
            dlg.deleteLater()

        dlg.finished.connect(finished)
        dlg.open()
        return dlg

    def _can_export(self) -> bool:
        if self.session.volume is None:
            self.show_error("no study open: open a CT and plan it before exporting")
            return False
        if not self.session.trajectories:
            self.show_error("the plan has no trajectory yet: press Plan (Ctrl+P) first")
            return False
        if self.busy:
            self.show_error("another step is still running; wait or press Cancel")
            return False
        return True

    def export_plan(self, folder, *, anonymize: bool | None = None, pdf: bool = True, markups: bool = True,
                    labels: bool = True, views: bool = False):
        """Write plan.json, plan.pdf, plan.mrk.json and label maps into ``folder`` (worker thread)."""
        if not self._can_export():
            return
        from needleplan.pipeline import write_plan_outputs

        anonymize = self.anonymize_exports if anonymize is None else bool(anonymize)
        self.session.end_edit()
        plan = copy.deepcopy(self.session.plan)  # edits during the export do not reach the files
        vol, anatomy = self.session.volume, self.session.anatomy
        src = plan.input.get("source") or vol.meta.get("source")
        if src:
            plan.input["source"] = str(src)
        for key in ("series_uid", "study_uid", "patient_position", "modality", "description"):
            if vol.meta.get(key) is not None:
                plan.input.setdefault(key, vol.meta[key])
        plan.input.setdefault("shape", list(vol.shape))
        plan.input.setdefault("spacing_mm", [round(float(x), 4) for x in vol.spacing_mm])
        if anatomy is not None:
            plan.input.setdefault("segmentation", anatomy.method)
        out = Path(folder)

        def work(progress):
            return write_plan_outputs(out, plan, vol, anatomy, anonymize=anonymize, pdf=pdf, markups=markups,
                                      labels=labels, views=views, label_formats=(".nii.gz", ".nrrd"),
                                      progress=progress)

        def done(files):
            self.last_export = files
            self.settings.setValue("last_export_dir", str(out.parent))
            main = files.get("pdf") or files.get("plan_json")
            self.show_status(f"Exported {len(files)} files{' (anonymised)' if anonymize else ''}: {main}")

        self.runner.start("Exporting plan", work, done)
