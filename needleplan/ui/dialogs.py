"""Small dialogs: series picker, add trajectory, rename level."""

from __future__ import annotations

from PyQt6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit,
                             QTreeWidget, QTreeWidgetItem, QVBoxLayout)

__all__ = ["SeriesPicker", "AddTrajectoryDialog", "RenameLevelDialog", "PlanDialog", "ExportDialog", "APPROACHES"]


class SeriesPicker(QDialog):
    """Choose one series of a folder that holds several (CT with the most slices first)."""

    def __init__(self, series, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Choose a series")
        self.resize(640, 300)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("This folder holds several series. Choose the CT series to open:"))
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Modality", "Description", "Images", "Size", "Series UID"])
        self.tree.setRootIsDecorated(False)
        self.series = list(series)
        for s in self.series:
            size = f"{s.cols}×{s.rows}" if s.rows else "?"
            it = QTreeWidgetItem([s.modality or "?", s.description or "", str(s.n_files), size, s.series_uid])
            if s.problems:
                it.setToolTip(1, "; ".join(s.problems))
            self.tree.addTopLevelItem(it)
        for c in range(4):
            self.tree.resizeColumnToContents(c)
        if self.series:
            self.tree.setCurrentItem(self.tree.topLevelItem(0))
        self.tree.itemDoubleClicked.connect(lambda *_: self.accept())
        lay.addWidget(self.tree)
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        lay.addWidget(bb)

    def selected_uid(self) -> str | None:
        it = self.tree.currentItem()
        return None if it is None else it.text(4)


class AddTrajectoryDialog(QDialog):
    """Pick a level and a side for a new trajectory."""

    def __init__(self, levels, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Add trajectory")
        form = QFormLayout(self)
        self.level = QComboBox()
        self.level.addItems(list(levels))
        self.side = QComboBox()
        self.side.addItems(["left", "right"])
        form.addRow("Level", self.level)
        form.addRow("Side", self.side)
        form.addRow(QLabel("The needle starts straight through the pedicle;\ndrag its entry or target to adjust."))
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        form.addRow(bb)

    def values(self) -> tuple[str, str]:
        return self.level.currentText(), self.side.currentText()


class RenameLevelDialog(QDialog):
    """Correct a level's name (e.g. when the spine was counted from the wrong end)."""

    def __init__(self, old: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Rename level {old}")
        form = QFormLayout(self)
        self.edit = QLineEdit(old)
        self.edit.selectAll()
        form.addRow(f"New name for {old}", self.edit)
        form.addRow(QLabel("C1–C7, T1–T13, L1–L6 or S"))
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        form.addRow(bb)

    def value(self) -> str:
        return self.edit.text().strip()


APPROACHES = ("auto", "transpedicular", "bipedicular", "parapedicular", "anterolateral")


class PlanDialog(QDialog):
    """Choose what to plan: the levels (checkboxes), the approach and the needle gauge.

    Parameters
    ----------
    levels : sequence of str
        The segmented levels, cranial to caudal (empty: not segmented yet, all are planned).
    checked : sequence of str, optional
        Levels ticked at first (default all).
    approach : str
    gauge : int
    has_plan : bool
        Offer "keep the trajectories of the other levels" (ticked) when a plan exists.
    notes : dict, optional
        ``{level: text}`` shown as the level's tooltip (findings, pedicles found).
    """

    def __init__(self, levels, *, checked=None, approach: str = "auto", gauge: int = 11,
                 has_plan: bool = False, notes: dict | None = None, parent=None):
        from PyQt6.QtWidgets import QCheckBox, QGridLayout, QGroupBox, QHBoxLayout, QPushButton

        from needleplan.planner.model import NEEDLE_GAUGES_MM

        super().__init__(parent)
        self.setWindowTitle("Plan trajectories")
        self.setObjectName("planDialog")
        self.setMinimumWidth(360)
        lay = QVBoxLayout(self)
        box = QGroupBox("Levels")
        grid = QGridLayout(box)
        self.level_boxes: dict[str, QCheckBox] = {}
        want = set(levels if checked is None else checked)
        levels = list(levels)
        cols = 4 if len(levels) > 8 else 3
        for i, name in enumerate(levels):
            cb = QCheckBox(name)
            cb.setObjectName(f"level_{name}")
            cb.setChecked(name in want)
            if notes and notes.get(name):
                cb.setToolTip(notes[name])
            cb.toggled.connect(self._update_ok)
            grid.addWidget(cb, i // cols, i % cols)
            self.level_boxes[name] = cb
        if not levels:
            grid.addWidget(QLabel("Not segmented yet: every level found will be planned."), 0, 0)
        else:
            row = QHBoxLayout()
            for text, on in (("All", True), ("None", False)):
                b = QPushButton(text)
                b.setAutoDefault(False)
                b.clicked.connect(lambda _=False, v=on: self._set_all(v))
                row.addWidget(b)
            row.addStretch(1)
            grid.addLayout(row, (len(levels) + cols - 1) // cols, 0, 1, cols)
        lay.addWidget(box)
        form = QFormLayout()
        self.approach = QComboBox()
        self.approach.setObjectName("approach")
        self.approach.addItems(list(APPROACHES))
        self.approach.setCurrentText(approach if approach in APPROACHES else "auto")
        self.approach.setToolTip("auto: the planner recommends uni- or bipedicular per level")
        form.addRow("Approach", self.approach)
        self.gauge = QComboBox()
        self.gauge.setObjectName("gauge")
        for g, d in sorted(NEEDLE_GAUGES_MM.items()):
            self.gauge.addItem(f"{g} G ({d:.2f} mm)", g)
        gi = self.gauge.findData(int(gauge))
        self.gauge.setCurrentIndex(gi if gi >= 0 else 0)
        form.addRow("Needle", self.gauge)
        lay.addLayout(form)
        self.keep = QCheckBox("Keep the trajectories of the other levels")
        self.keep.setObjectName("keep")
        self.keep.setChecked(has_plan)
        self.keep.setVisible(has_plan)
        self._has_plan = bool(has_plan)
        lay.addWidget(self.keep)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Plan")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self._update_ok()

    def _set_all(self, on: bool):
        for cb in self.level_boxes.values():
            cb.setChecked(on)

    def _update_ok(self, *_):
        self.ok_button.setEnabled(not self.level_boxes or any(cb.isChecked() for cb in self.level_boxes.values()))

    def values(self) -> dict:
        """``{'levels': [...] or None (all), 'approach', 'gauge', 'keep_other_levels'}``."""
        chosen = [n for n, cb in self.level_boxes.items() if cb.isChecked()]
        all_on = len(chosen) == len(self.level_boxes)
        return {"levels": None if all_on else chosen, "approach": self.approach.currentText(),
                "gauge": int(self.gauge.currentData()),
                "keep_other_levels": self._has_plan and self.keep.isChecked() and not all_on}


class ExportDialog(QDialog):
    """Choose the plan folder and whether to anonymise (plan.json, plan.pdf, markups, labels)."""

    def __init__(self, folder: str, *, anonymize: bool = False, has_labels: bool = True, parent=None):
        from PyQt6.QtWidgets import QCheckBox, QFileDialog, QHBoxLayout, QPushButton

        super().__init__(parent)
        self._file_dialog = QFileDialog
        self.setWindowTitle("Export plan folder")
        self.setObjectName("exportDialog")
        self.resize(560, 0)
        form = QFormLayout(self)
        row = QHBoxLayout()
        self.folder = QLineEdit(folder)
        self.folder.setObjectName("folder")
        row.addWidget(self.folder, 1)
        browse = QPushButton("Browse…")
        browse.setAutoDefault(False)
        browse.clicked.connect(self._browse)
        row.addWidget(browse)
        form.addRow("Folder", row)
        self.pdf = QCheckBox("Report (plan.pdf)")
        self.pdf.setChecked(True)
        self.markups = QCheckBox("3D Slicer markups (plan.mrk.json)")
        self.markups.setChecked(True)
        self.labels = QCheckBox("Vertebra label maps (NIfTI, NRRD)")
        self.labels.setChecked(has_labels)
        self.labels.setEnabled(has_labels)
        self.views = QCheckBox("Fluoroscopy views (PNG per trajectory)")
        for cb in (self.pdf, self.markups, self.labels, self.views):
            form.addRow("" if cb is not self.pdf else "Write", cb)
        self.anonymize = QCheckBox("Anonymise exports (no patient name, ID, birth date, dates or UIDs)")
        self.anonymize.setObjectName("anonymize")
        self.anonymize.setChecked(anonymize)
        form.addRow("Privacy", self.anonymize)
        form.addRow(QLabel("plan.json is always written; existing files of the same name are replaced."))
        bb = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        bb.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        bb.accepted.connect(self.accept)
        bb.rejected.connect(self.reject)
        form.addRow(bb)

    def _browse(self):
        path = self._file_dialog.getExistingDirectory(self, "Plan folder", self.folder.text())
        if path:
            self.folder.setText(path)

    def values(self) -> dict:
        """``{'folder', 'anonymize', 'pdf', 'markups', 'labels', 'views'}``."""
        return {"folder": self.folder.text().strip(), "anonymize": self.anonymize.isChecked(),
                "pdf": self.pdf.isChecked(), "markups": self.markups.isChecked(),
                "labels": self.labels.isChecked() and self.labels.isEnabled(), "views": self.views.isChecked()}
