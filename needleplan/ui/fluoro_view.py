"""Simulated fluoroscopy views (bull's-eye, progression) of the selected trajectory.

The pictures come from :func:`needleplan.geometry.render_drr` (core, no Qt); this widget only
shows them, projects the needle(s) with :func:`needleplan.geometry.views.project_points` and
prints the C-arm angles in large type.  While a needle is being dragged a small preview
DRR is rendered (fast), and the full-size one once the mouse is released.
"""

from __future__ import annotations

import time

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PyQt6.QtWidgets import QWidget

from needleplan.ui.theme import COLORS, status_color

__all__ = ["FluoroView", "make_view", "render_image"]

PREVIEW_STEP_MM = 6.0  # coarsest voxel size while dragging (CT block-averaged by 2, 4 or 8)
FULL_STEP_MM = 2.0  # and for the resting view (the report renders at full resolution)


def make_view(kind: str, traj, patient_position: str | None, *, pixels: int = 256):
    """The C-arm view of ``kind`` ('bullseye' | 'progression') for a trajectory.

    ``patient_position`` is the CT's; the view is built for the procedure position
    (``traj.procedure_position(patient_position)``) by
    :func:`needleplan.geometry.fluoro.trajectory_views`, like the report's pictures.
    """
    from needleplan.geometry.fluoro import trajectory_views
    from needleplan.geometry.views import CArmGeometry

    pp = traj.procedure_position(patient_position) if hasattr(traj, "procedure_position") else patient_position
    return trajectory_views(traj, pp, geometry=CArmGeometry(detector_pixels=int(pixels)))[kind]


def render_image(volume, view, *, preview: bool = False, needles=()):
    """The core's DRR of ``view`` (``.display`` uint8: bone and needles dark; ``.image``
    line integrals).  ``needles`` are ``(entry_lps, target_lps, diameter_mm)`` drawn as steel.
    """
    from needleplan.geometry.drr import render_drr, render_preview

    if preview:  # ~3-4 mm voxels for 0.8-1 mm scans: ~15-25 ms per 128 px view (benchmarks/bench_gui.py)
        out = render_preview(volume, view, size=view.geometry.detector_pixels, needles=list(needles),
                             step_mm=PREVIEW_STEP_MM)
    else:
        out = render_drr(volume, view, needles=list(needles), step_mm=FULL_STEP_MM)
    return out


def prepare_fluoro(volume) -> None:
    """Precompute the core renderer's attenuation volumes (call in a worker thread)."""
    from needleplan.geometry.drr import prepare

    for step in (PREVIEW_STEP_MM, FULL_STEP_MM):
        prepare(volume, step_mm=step)


class FluoroView(QWidget):
    """Shows one simulated fluoroscopy image with the needle and the C-arm angles."""

    def __init__(self, kind: str, parent=None):
        super().__init__(parent)
        self.kind = kind
        self.setMinimumSize(180, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.image: np.ndarray | None = None
        self.drr = None
        self.carm_view = None
        self.trajectories = []
        self.selected: int | None = None
        self.preview = False
        self.message = "No trajectory selected"
        self.render_ms = 0.0
        self._qimg = None

    # ------------------------------------------------------------------ content
    def clear(self, message: str = "No trajectory selected"):
        self.image, self.carm_view, self._qimg, self.drr = None, None, None, None
        self.message = message
        self.update()

    @staticmethod
    def compute(kind: str, volume, trajectories, selected: int | None, patient_position: str | None, *,
                pixels: int = 256, preview: bool = False, all_needles: bool = True) -> dict:
        """Render without touching any widget (safe in a worker thread); see :meth:`show`."""
        trajectories = list(trajectories)
        out = {"trajectories": trajectories, "selected": selected, "preview": preview}
        if selected is None or volume is None or selected >= len(trajectories):
            out["message"] = "No trajectory selected"
            return out
        t0 = time.perf_counter()
        traj = trajectories[selected]
        try:
            view = make_view(kind, traj, patient_position, pixels=pixels)
        except ValueError as exc:
            out["message"] = f"Cannot make the {kind} view: {exc}"
            return out
        shown = trajectories if all_needles else [traj]  # one needle is cheaper while dragging
        needles = [(t.skin_entry_lps, t.target_lps, t.needle_diameter_mm) for t in shown]
        out["drr"] = render_image(volume, view, preview=preview, needles=needles)
        out["view"] = view
        out["ms"] = (time.perf_counter() - t0) * 1000
        return out

    def show_result(self, res: dict) -> None:
        """Display what :meth:`compute` made (GUI thread)."""
        self.trajectories, self.selected = res["trajectories"], res["selected"]
        if "drr" not in res:
            self.clear(res.get("message", ""))
            return
        self.drr = res["drr"]
        self.carm_view = res["view"]
        self.preview = res["preview"]
        self.render_ms = res.get("ms", 0.0)
        self.set_image(np.asarray(self.drr.display, np.float32) / 255.0)
        self.update()

    def render(self, volume, trajectories, selected: int | None, patient_position: str | None, *,
               pixels: int = 256, preview: bool = False, all_needles: bool = True) -> None:
        """Render the view of ``trajectories[selected]`` (a DRR of ``pixels``² pixels) now."""
        self.show_result(self.compute(self.kind, volume, trajectories, selected, patient_position,
                                      pixels=pixels, preview=preview, all_needles=all_needles))

    def set_image(self, img: np.ndarray):
        self.image = np.asarray(img, np.float32)
        g = np.ascontiguousarray((np.clip(self.image, 0, 1) * 255).astype(np.uint8))
        h, w = g.shape
        self._qimg = QImage(g.data, w, h, w, QImage.Format.Format_Grayscale8).copy()

    def update_trajectories(self, trajectories, selected):
        """Redraw the needle overlay only (no new DRR)."""
        self.trajectories, self.selected = list(trajectories), selected
        self.update()

    # ------------------------------------------------------------------ mapping
    def image_rect(self) -> QRectF:
        side = min(self.width(), self.height() - 0)
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def pixel_to_screen(self, colrow) -> np.ndarray:
        """Detector pixel (col, row) of the current view to widget coordinates."""
        r = self.image_rect()
        n = self.carm_view.geometry.detector_pixels
        s = r.width() / n
        cr = np.asarray(colrow, float)
        return np.stack([r.left() + (cr[..., 0] + 0.5) * s, r.top() + (cr[..., 1] + 0.5) * s], axis=-1)

    def needle_screen_points(self, index: int) -> np.ndarray:
        """Screen positions of (entry, target) of trajectory ``index`` in this view."""
        from needleplan.geometry.views import project_points

        t = self.trajectories[index]
        cr = project_points(self.carm_view, np.stack([t.skin_entry_lps, t.target_lps]))
        return self.pixel_to_screen(cr)

    # ------------------------------------------------------------------ paint
    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#000000"))
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        title = "BULL'S-EYE" if self.kind == "bullseye" else "PROGRESSION"
        if self.carm_view is None:
            p.setPen(QColor(COLORS["muted"]))
            p.drawText(self.rect().adjusted(8, 8, -8, -8),
                       Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, f"{title}\n{self.message}")
            p.end()
            return
        r = self.image_rect()
        if self._qimg is not None:
            # circular collimation like an image intensifier
            p.save()
            from PyQt6.QtGui import QPainterPath

            path = QPainterPath()
            path.addEllipse(r.adjusted(2, 2, -2, -2))
            p.setClipPath(path)
            p.drawImage(r, self._qimg)
            p.restore()
        else:
            p.setPen(QColor(COLORS["muted"]))
            p.drawText(r, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message)
        self._draw_needles(p, r)
        self._draw_text(p, r, title)
        p.end()

    def _draw_needles(self, p: QPainter, r: QRectF):
        if self.selected is None or self.selected >= len(self.trajectories):
            return
        g = self.carm_view.geometry
        s = r.width() / g.detector_pixels
        for i, t in enumerate(self.trajectories):
            if i != self.selected and self.kind == "bullseye":
                continue
            try:
                a, b = self.needle_screen_points(i)
            except ValueError:
                continue
            if not np.all(np.isfinite([a, b])):
                continue
            col = status_color(t.status)
            w = max(2.0, t.needle_diameter_mm * g.magnification / g.pixel_mm * s)
            if np.hypot(*(a - b)) < w:  # looking down the needle: a dot
                p.setPen(QPen(QColor(COLORS["selected"]), 1.5))
                p.setBrush(col)
                p.drawEllipse(QPointF(*b), w / 2 + 1, w / 2 + 1)
                p.setBrush(Qt.BrushStyle.NoBrush)
                pen = QPen(col, 1.0)
                pen.setStyle(Qt.PenStyle.DashLine)
                p.setPen(pen)
                p.drawEllipse(QPointF(*b), w * 2.5, w * 2.5)
            else:
                pen = QPen(col if i == self.selected else QColor(150, 150, 150))
                pen.setWidthF(w)
                pen.setCapStyle(Qt.PenCapStyle.FlatCap)
                p.setPen(pen)
                p.setOpacity(0.85 if i == self.selected else 0.5)
                p.drawLine(QPointF(*a), QPointF(*b))
                p.setOpacity(1.0)
                p.setPen(QPen(QColor(COLORS["selected"]), 1.2))
                p.drawEllipse(QPointF(*b), 3, 3)

    def _draw_text(self, p: QPainter, r: QRectF, title: str):
        from needleplan.geometry.carm import format_carm_angles
        from needleplan.geometry.views import orientation_letters

        lao, cran = self.carm_view.angles_deg
        big = QFont(self.font())
        big.setPointSize(max(11, min(20, int(self.width() / 18))))
        big.setBold(True)
        p.setFont(big)
        p.setPen(QColor("#ffffff"))
        text = format_carm_angles(lao, cran)
        p.drawText(QRectF(8, 6, self.width() - 16, 40), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, text)
        small = QFont(self.font())
        small.setPointSize(8)
        p.setFont(small)
        p.setPen(QColor(COLORS["crosshair"]))
        traj = self.trajectories[self.selected] if self.selected is not None else None
        sub = f"{title} · {traj.name}" if traj else title
        if self.preview:
            sub += " · preview"
        p.drawText(QRectF(8, self.height() - 22, self.width() - 16, 18),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, sub)
        pp = self.carm_view.patient_position or "position ?"
        p.setPen(QColor(COLORS["muted"]))
        p.drawText(QRectF(8, self.height() - 22, self.width() - 16, 18),
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom, pp)
        try:
            right = orientation_letters(self.carm_view.right_lps)
            up = orientation_letters(self.carm_view.up_lps)
        except ValueError:
            return
        f = QFont(self.font())
        f.setPointSize(9)
        f.setBold(True)
        p.setFont(f)
        p.setPen(QColor("#c9a227"))
        p.drawText(QRectF(r.right() - 30, r.center().y() - 10, 26, 20), Qt.AlignmentFlag.AlignRight, right)
        p.drawText(QRectF(r.center().x() - 15, r.top() + 40, 30, 20), Qt.AlignmentFlag.AlignHCenter, up)
