"""The plan panel: levels, trajectories, per-trajectory numbers, checks and clearance profile."""

from __future__ import annotations

import math

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QFont, QPainter, QPainterPath, QPen
from PyQt6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                             QSizePolicy, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from needleplan.planner.model import NEEDLE_GAUGES_MM
from needleplan.ui.theme import COLORS, STATUS_COLORS, status_color

__all__ = ["PlanPanel", "ClearanceProfile"]

_CLEARANCE_NAMES = {
    "medial_wall": "Medial wall", "canal": "Canal", "lateral_wall": "Lateral wall",
    "superior": "Superior", "inferior": "Inferior", "anterior_cortex": "Anterior cortex",
}


def _fmt(x, unit="", digits=1) -> str:
    if x is None:
        return "–"
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(xf):
        return "–"
    return f"{xf:.{digits}f}{(' ' + unit) if unit else ''}"


def _fit_rows(tree: QTreeWidget, *, min_rows: int, max_rows: int) -> None:
    """Size a flat list to its rows (between ``min_rows`` and ``max_rows``; it scrolls beyond)."""
    n = min(max(tree.topLevelItemCount(), min_rows), max_rows)
    row = tree.sizeHintForRow(0) if tree.topLevelItemCount() else tree.fontMetrics().height() + 4
    tree.setFixedHeight(tree.header().sizeHint().height() + n * max(row, 1) + 2 * tree.frameWidth() + 2)


def _section(text: str) -> QLabel:
    lab = QLabel(text)
    lab.setObjectName("sectionTitle")
    return lab


class ClearanceProfile(QWidget):
    """Clearance (mm, needle surface to the nearest wall) along the needle depth."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.depth_mm = None
        self.clear_mm = None
        self.limit_mm = 2.0
        self.bone_entry_depth_mm = None

    def set_profile(self, profile: dict | None, *, limit_mm: float = 2.0, bone_entry_depth_mm=None):
        self.depth_mm = self.clear_mm = None
        if profile:
            d = np.asarray(profile.get("depth_mm", []), float)
            c = np.asarray(profile.get("clearance_mm", []), float)
            if d.size and d.shape == c.shape:
                self.depth_mm, self.clear_mm = d, c
        self.limit_mm = limit_mm
        self.bone_entry_depth_mm = bone_entry_depth_mm
        self.update()

    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(COLORS["panel"]))
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        f = QFont(self.font())
        f.setPointSize(8)
        p.setFont(f)
        left, right, top, bottom = 34, 8, 8, 20
        plot = QRectF(left, top, self.width() - left - right, self.height() - top - bottom)
        p.setPen(QPen(QColor(COLORS["border"]), 1))
        p.drawRect(plot)
        if self.depth_mm is None:
            p.setPen(QColor(COLORS["muted"]))
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "No clearance profile for this trajectory")
            p.end()
            return
        d, c = self.depth_mm, np.nan_to_num(self.clear_mm, nan=0.0, posinf=20.0)
        dmax = max(float(d.max()), 1.0)
        cmax = max(10.0, float(min(np.percentile(c, 95), 30.0)) * 1.1)
        cmin = min(-2.0, float(c.min()) * 1.1)

        def xy(dd, cc):
            x = plot.left() + dd / dmax * plot.width()
            y = plot.bottom() - (np.clip(cc, cmin, cmax) - cmin) / (cmax - cmin) * plot.height()
            return x, y

        # zones: red below 0, amber below limit
        for lo, hi, status, alpha in ((cmin, 0.0, "unsafe", 70), (0.0, self.limit_mm, "warning", 55)):
            _, y0 = xy(0, hi)
            _, y1 = xy(0, lo)
            col = QColor(STATUS_COLORS[status])  # (Qt reads 8-digit hex as #AARRGGBB: set alpha apart)
            col.setAlpha(alpha)
            p.fillRect(QRectF(plot.left(), y0, plot.width(), y1 - y0), col)
        # grid labels
        p.setPen(QColor(COLORS["muted"]))
        for val in (0.0, self.limit_mm, round(cmax / 2), round(cmax)):
            _, y = xy(0, val)
            p.drawText(QRectF(0, y - 7, left - 4, 14), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       f"{val:g}")
        p.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), 16), Qt.AlignmentFlag.AlignCenter,
                   f"depth from skin (0–{dmax:.0f} mm)")
        if self.bone_entry_depth_mm is not None and np.isfinite(self.bone_entry_depth_mm):
            x, _ = xy(self.bone_entry_depth_mm, 0)
            pen = QPen(QColor(COLORS["muted"]), 1, Qt.PenStyle.DotLine)
            p.setPen(pen)
            p.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        path = QPainterPath()
        for n, (dd, cc) in enumerate(zip(d, c)):
            x, y = xy(dd, cc)
            path.moveTo(x, y) if n == 0 else path.lineTo(x, y)
        p.setPen(QPen(QColor(COLORS["accent"]), 1.8))
        p.drawPath(path)
        i = int(np.argmin(c))
        x, y = xy(d[i], c[i])
        col = QColor(STATUS_COLORS["unsafe"] if c[i] < 0 else STATUS_COLORS["warning"] if c[i] < self.limit_mm
                     else STATUS_COLORS["ok"])
        p.setBrush(col)
        p.setPen(Qt.PenStyle.NoPen)
        p.drawEllipse(QPointF(x, y), 3.5, 3.5)
        p.setPen(col)
        p.drawText(QPointF(min(x + 6, plot.right() - 60), max(y - 4, plot.top() + 10)), f"min {c[i]:.1f} mm")
        p.end()


class PlanPanel(QWidget):
    """Levels, trajectories and the selected trajectory's numbers; edits go to the session."""

    add_requested = pyqtSignal()
    delete_requested = pyqtSignal(int)
    rename_requested = pyqtSignal(str)
    gauge_requested = pyqtSignal(int, int)

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self._updating = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 6)
        lay.setSpacing(4)

        lay.addWidget(_section("Levels"))
        self.levels = QTreeWidget()
        self.levels.setHeaderLabels(["Level", "Recommendation", "Findings"])
        self.levels.setRootIsDecorated(False)
        self.levels.setAlternatingRowColors(True)
        self.levels.header().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.levels.itemDoubleClicked.connect(lambda it, _c: self.rename_requested.emit(it.text(0)))
        lay.addWidget(self.levels)
        row = QHBoxLayout()
        self.rename_btn = QPushButton("Rename level…")
        self.rename_btn.setToolTip("Correct the name of the selected level (e.g. L1 → T12)")
        self.rename_btn.clicked.connect(self._rename_clicked)
        row.addWidget(self.rename_btn)
        row.addStretch(1)
        lay.addLayout(row)

        lay.addWidget(_section("Trajectories"))
        self.trajs = QTreeWidget()
        self.trajs.setHeaderLabels(["", "Trajectory", "Length", "Medial", "Cr-Ca", "G"])
        self.trajs.setRootIsDecorated(False)
        self.trajs.setAlternatingRowColors(True)
        self.trajs.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        h = self.trajs.header()
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for c in (0, 2, 3, 4, 5):
            h.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.trajs.currentItemChanged.connect(self._traj_clicked)
        lay.addWidget(self.trajs)
        row = QHBoxLayout()
        self.add_btn = QPushButton("Add…")
        self.add_btn.setToolTip("Add a trajectory through a pedicle (Ctrl+N)")
        self.add_btn.clicked.connect(self.add_requested)
        self.del_btn = QPushButton("Delete")
        self.del_btn.setToolTip("Delete the selected trajectory (Del)")
        self.del_btn.clicked.connect(self._delete_clicked)
        row.addWidget(self.add_btn)
        row.addWidget(self.del_btn)
        row.addStretch(1)
        row.addWidget(QLabel("Gauge"))
        self.gauge = QComboBox()
        for g, d in sorted(NEEDLE_GAUGES_MM.items()):
            self.gauge.addItem(f"{g} G ({d:.2f} mm)", g)
        self.gauge.currentIndexChanged.connect(self._gauge_changed)
        row.addWidget(self.gauge)
        lay.addLayout(row)

        self.title = QLabel("")
        tf = QFont(self.font())
        tf.setPointSize(11)
        tf.setBold(True)
        self.title.setFont(tf)
        lay.addWidget(self.title)
        self.details = QTreeWidget()
        self.details.setHeaderLabels(["Measure", "Value", "Limit"])
        self.details.setAlternatingRowColors(True)
        self.details.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.details.header().setMinimumSectionSize(60)
        self.details.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.details.header().setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.details.header().setStretchLastSection(False)  # the measure names get the room
        self.details.setIndentation(10)
        lay.addWidget(self.details, 1)
        lay.addWidget(_section("Clearance along the needle"))
        self.profile = ClearanceProfile()
        lay.addWidget(self.profile)

        for ev in ("plan_changed", "trajectory_changed", "selection_changed", "anatomy_changed"):
            session.connect(ev, self._on_session)
        self.refresh()

    # ------------------------------------------------------------------ session -> widgets
    def _on_session(self, *args):
        self.refresh()

    def refresh(self):
        self._updating = True
        try:
            self._fill_levels()
            self._fill_trajs()
            self._fill_details()
        finally:
            self._updating = False

    def _fill_levels(self):
        s = self.session
        self.levels.clear()
        names = []
        if s.anatomy is not None:
            names = [v.name for v in s.anatomy.sorted_vertebrae()]
        for lv in s.plan.levels:
            if lv.level not in names:
                names.append(lv.level)
        for name in names:
            lv = s.level_plan(name)
            rec = lv.recommendation if lv else "–"
            findings = "; ".join(f.replace("_", " ") for f in (lv.flags or [])) if lv else ""
            findings = "; ".join(x for x in [findings] + list(lv.reasons if lv else []) if x)
            if s.anatomy is not None and lv is None:
                try:
                    v = s.anatomy.vertebra(name)
                    findings = "; ".join(f.replace("_", " ") for f in v.flags)
                except ValueError:
                    pass
            it = QTreeWidgetItem([name, rec, findings])
            it.setToolTip(2, findings)
            if rec == "not advised":
                it.setForeground(1, QBrush(QColor(STATUS_COLORS["unsafe"])))
            elif rec.startswith("bipedicular") or rec.startswith("unipedicular"):
                it.setForeground(1, QBrush(QColor(STATUS_COLORS["ok"])))
            self.levels.addTopLevelItem(it)
        for c in range(2):
            self.levels.resizeColumnToContents(c)
        _fit_rows(self.levels, min_rows=3, max_rows=9)

    def _fill_trajs(self):
        s = self.session
        self.trajs.clear()
        for i, t in enumerate(s.trajectories):
            role = getattr(t, "role", "recommended")
            it = QTreeWidgetItem(["●", t.name + ("" if role == "recommended" else " · alt"),
                                  _fmt(t.length_mm, "mm", 0), _fmt(t.medial_angle_deg, "°", 0),
                                  _fmt(t.craniocaudal_angle_deg, "°", 0), str(t.gauge)])
            it.setForeground(0, QBrush(status_color(t.status)))
            it.setToolTip(0, t.status)
            it.setToolTip(1, f"{t.name} ({role}, {t.approach}): {t.status}")
            it.setData(0, Qt.ItemDataRole.UserRole, i)
            self.trajs.addTopLevelItem(it)
        _fit_rows(self.trajs, min_rows=3, max_rows=12)
        if s.selected is not None and s.selected < self.trajs.topLevelItemCount():
            self.trajs.setCurrentItem(self.trajs.topLevelItem(s.selected))
        self.del_btn.setEnabled(s.selected is not None)

    def _fill_details(self):
        s = self.session
        t = s.selected_trajectory
        self.details.clear()
        if t is None:
            self.title.setText("No trajectory selected")
            self.profile.set_profile(None)
            self.gauge.setEnabled(False)
            return
        self.gauge.setEnabled(True)
        gi = self.gauge.findData(int(t.gauge))
        if gi >= 0:
            self.gauge.setCurrentIndex(gi)
        col = STATUS_COLORS.get(t.status, STATUS_COLORS[None])
        n_ok = sum(bool(c.passed) for c in t.checks)
        summary = f" · {n_ok}/{len(t.checks)} checks passed" if t.checks else " · not checked"
        self.title.setText(f"{t.name} · {t.approach} · <span style='color:{col}'>{t.status.upper()}</span>"
                           f"<span style='color:{COLORS['muted']}; font-weight:normal'>{summary}</span>")
        self.title.setTextFormat(Qt.TextFormat.RichText)

        def group(name):
            g = QTreeWidgetItem([name, "", ""])
            f = QFont(self.font())
            f.setBold(True)
            g.setFont(0, f)
            g.setForeground(0, QBrush(QColor(COLORS["muted"])))
            self.details.addTopLevelItem(g)
            g.setExpanded(True)
            return g

        if t.checks:
            g = group("Checks")
            for c in t.checks:
                st = "ok" if c.passed else ("warning" if c.severity == "warning" else "unsafe")
                mark = "✔" if c.passed else ("▲" if st == "warning" else "✖")
                lim = "" if c.limit is None else _fmt(c.limit, c.unit)
                label = f"{mark}  {c.name.replace('_', ' ').capitalize()}"
                it = QTreeWidgetItem(g, [label, _fmt(c.value, c.unit), lim])
                it.setForeground(0, QBrush(status_color(st)))
                if not c.passed:
                    it.setForeground(1, QBrush(status_color(st)))
                if c.message:
                    it.setToolTip(0, c.message)
                    if not c.passed:  # why it failed, in the panel itself
                        why = QTreeWidgetItem(it, [c.message, "", ""])
                        why.setForeground(0, QBrush(QColor(COLORS["muted"])))
                        why.setToolTip(0, c.message)
                        why.setFirstColumnSpanned(True)
                        it.setExpanded(True)
        if t.notes:
            g = group("Notes")
            for n in t.notes:
                it = QTreeWidgetItem(g, [n, "", ""])
                it.setToolTip(0, n)
        g = group("Geometry")
        rows = [("Length skin → target", _fmt(t.length_mm, "mm")),
                ("Medial angle", _fmt(t.medial_angle_deg, "°")),
                ("Craniocaudal angle", _fmt(t.craniocaudal_angle_deg, "°")),
                ("Needle", f"{t.gauge} G · {t.needle_diameter_mm:.2f} mm"),
                ("Target to midline", _fmt(t.target_to_midline_mm, "mm")),
                ("Target depth in body", _fmt(100 * t.target_depth_fraction, "%", 0)
                 if np.isfinite(t.target_depth_fraction) else "–")]
        if getattr(t, "breach_grade", None):
            rows.append(("Breach grade", str(t.breach_grade)))
        for k, v in rows:
            QTreeWidgetItem(g, [k, v, ""])
        carm = t.carm or {}
        if carm:
            from needleplan.geometry.carm import format_carm_angles

            g = group("C-arm")
            for key, name in (("bullseye", "Bull's-eye"), ("progression", "Progression")):
                a = carm.get(key)
                if a:
                    QTreeWidgetItem(g, [name, format_carm_angles(a.get("lao_deg", 0.0), a.get("cran_deg", 0.0)), ""])
        if t.clearance_mm:
            g = group("Clearances (needle surface)")
            for k, v in t.clearance_mm.items():
                it = QTreeWidgetItem(g, [_CLEARANCE_NAMES.get(k, k.replace("_", " ").capitalize()), _fmt(v, "mm"), ""])
                if v is not None and np.isfinite(v):
                    it.setForeground(1, QBrush(QColor(STATUS_COLORS["unsafe"] if v < 0 else
                                                      STATUS_COLORS["warning"] if v < 2 else STATUS_COLORS["ok"])))
        bone_depth = float(np.linalg.norm(t.bone_entry_lps - t.skin_entry_lps))
        self.profile.set_profile(t.clearance_profile, limit_mm=float(s.plan.request.canal_margin_mm),
                                 bone_entry_depth_mm=bone_depth)

    # ------------------------------------------------------------------ widgets -> session
    def _traj_clicked(self, cur, _prev):
        if self._updating or cur is None:
            return
        i = cur.data(0, Qt.ItemDataRole.UserRole)
        if i is not None:
            self.session.select(int(i))

    def _delete_clicked(self):
        if self.session.selected is not None:
            self.delete_requested.emit(self.session.selected)

    def _rename_clicked(self):
        it = self.levels.currentItem()
        if it is None and self.levels.topLevelItemCount():
            it = self.levels.topLevelItem(0)
        if it is not None:
            self.rename_requested.emit(it.text(0))

    def _gauge_changed(self, _idx):
        if self._updating or self.session.selected is None:
            return
        g = self.gauge.currentData()
        t = self.session.selected_trajectory
        if t is not None and g is not None and int(g) != int(t.gauge):
            self.gauge_requested.emit(self.session.selected, int(g))
