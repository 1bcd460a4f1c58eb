"""Small dialogs: series picker, add trajectory, rename level."""

from __future__ import annotations

from PyQt6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit,
                             QTreeWidget, QTreeWidgetItem, QVBoxLayout)

__all__ = ["SeriesPicker", "AddTrajectoryDialog", "RenameLevelDialog"]


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
