"""A 2-D CT slice view drawn with plain Qt (QImage from numpy + QPainter overlays).

Pure Qt renders identically on a desktop, under Xvfb and with ``QT_QPA_PLATFORM=offscreen``
(where an embedded VTK widget stays black), and a 512x512 slice with overlays draws in a
few milliseconds.

Mouse: left drag moves the linked crosshair, or a needle's entry/target handle when the
press is on one; right drag = window/level; middle drag (or Shift + left) = pan;
wheel = next/previous slice; Ctrl + wheel = zoom.  Keys: Up/Down, PageUp/PageDown.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPen, QPixmap
from PyQt6.QtWidgets import QWidget

from needleplan.segmentation.model import PART_PEDICLE_LEFT, PART_PEDICLE_RIGHT
from needleplan.ui.slicing import EDGE_LETTERS, VIEWS, SliceGeometry, apply_window, label_colors, window_lut
from needleplan.ui.theme import COLORS, status_color

__all__ = ["SliceView"]

HANDLE_PICK_PX = 10.0


class SliceView(QWidget):
    """One of the axial / sagittal / coronal views.

    Signals
    -------
    crosshair_moved(object)   LPS (3,) ndarray the user clicked/dragged to
    cursor_moved(object, object)  LPS (3,) ndarray and HU (float or None) under the mouse
    handle_dragged(int, str, object, bool)  trajectory index, 'entry'|'target', LPS, finished
    window_changed(float, float)  width, level after a right-drag
    """

    crosshair_moved = pyqtSignal(object)
    cursor_moved = pyqtSignal(object, object)
    handle_dragged = pyqtSignal(int, str, object, bool)
    window_changed = pyqtSignal(float, float)
    trajectory_picked = pyqtSignal(int)

    def __init__(self, orientation: str, parent=None):
        super().__init__(parent)
        self.view = VIEWS[orientation]
        self.orientation = orientation
        self.setMinimumSize(160, 160)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.WheelFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.geom: SliceGeometry | None = None
        self.volume = None
        self.anatomy = None
        self.trajectories = []
        self.selected: int | None = None
        self.crosshair_c = np.zeros(3)
        self.width_hu, self.level_hu = 2000.0, 500.0
        self._lut = window_lut(self.width_hu, self.level_hu)
        self.show_labels = True
        self.show_crosshair = True
        self.zoom = 1.0  # relative to fit
        self.pan_mm = np.zeros(2)
        self._img_cache = None  # (key, QImage)
        self._scaled = None  # (key, QPixmap) the slice scaled to the screen
        self._img_version = 0
        self._drag = None  # dict(kind=..., ...)
        self._colors = label_colors()

    # ------------------------------------------------------------------ data
    def set_volume(self, volume, geom: SliceGeometry | None = None):
        self.volume = volume
        if self.anatomy is not None and volume is not None and tuple(self.anatomy.labels.shape) != tuple(volume.shape):
            self.anatomy = None
        self.geom = geom if geom is not None else (
            SliceGeometry(volume.ijk_to_lps, volume.shape) if volume is not None else None)
        if self.geom is not None:
            self.crosshair_c = (np.array(self.geom.shape) - 1) / 2.0
        self.zoom, self.pan_mm = 1.0, np.zeros(2)
        self._img_cache = None
        self.update()

    def set_anatomy(self, anatomy):
        if anatomy is not None and self.volume is not None and tuple(anatomy.labels.shape) != tuple(self.volume.shape):
            anatomy = None  # belongs to another study
        self.anatomy = anatomy
        self._img_cache = None
        self.update()

    def set_trajectories(self, trajectories, selected: int | None):
        self.trajectories = list(trajectories)
        self.selected = selected
        self.update()

    def set_window(self, width: float, level: float):
        self.width_hu, self.level_hu = float(max(width, 1.0)), float(level)
        self._lut = window_lut(self.width_hu, self.level_hu)
        self._img_cache = None
        self.update()

    def set_crosshair_lps(self, lps):
        if self.geom is None:
            return
        c = self.geom.lps_to_c(lps)
        old = int(round(self.crosshair_c[self.view.normal]))
        self.crosshair_c = np.clip(c, 0, np.array(self.geom.shape) - 1)
        if int(round(self.crosshair_c[self.view.normal])) != old:
            self._img_cache = None
        self.update()

    def set_show_labels(self, on: bool):
        self.show_labels = bool(on)
        self._img_cache = None
        self.update()

    @property
    def slice_index(self) -> int:
        return int(round(self.crosshair_c[self.view.normal]))

    @property
    def n_slices(self) -> int:
        return 0 if self.geom is None else self.geom.shape[self.view.normal]

    def set_slice_index(self, index: int):
        if self.geom is None:
            return
        index = int(np.clip(index, 0, self.n_slices - 1))
        if index != self.slice_index:
            self.crosshair_c = self.crosshair_c.copy()
            self.crosshair_c[self.view.normal] = index
            self._img_cache = None
            self.crosshair_moved.emit(self.geom.c_to_lps(self.crosshair_c))
            self.update()

    def reset_view(self):
        self.zoom, self.pan_mm = 1.0, np.zeros(2)
        self.update()

    def zoom_to(self, center_lps, field_mm: float):
        """Centre the view on ``center_lps`` showing about ``field_mm`` across (never less than fit)."""
        if self.geom is None or self.width() < 2 or self.height() < 2:
            return
        nu, nv = self.geom.image_size(self.view)
        pu, pv = self.geom.pixel_mm(self.view)
        fit = min(self.width() / (nu * pu), self.height() / (nv * pv))
        want = min(self.width(), self.height()) / max(float(field_mm), 1.0)
        self.zoom = float(np.clip(want / fit, 1.0, 20.0))
        uv = self.geom.c_to_uv(self.geom.lps_to_c(np.asarray(center_lps, float)), self.view)
        base = np.array([(nu - 1) * pu / 2, (nv - 1) * pv / 2])
        self.pan_mm = np.asarray(uv, float)[:2] * np.array([pu, pv]) - base
        self.update()

    # ------------------------------------------------------------------ mapping
    def _scale(self) -> float:
        """Screen pixels per mm."""
        nu, nv = self.geom.image_size(self.view)
        pu, pv = self.geom.pixel_mm(self.view)
        fit = min(self.width() / (nu * pu), self.height() / (nv * pv))
        return fit * self.zoom

    def _center_mm(self) -> np.ndarray:
        nu, nv = self.geom.image_size(self.view)
        pu, pv = self.geom.pixel_mm(self.view)
        return np.array([(nu - 1) * pu / 2, (nv - 1) * pv / 2]) + self.pan_mm

    def uv_to_screen(self, uv) -> np.ndarray:
        uv = np.asarray(uv, float)
        pu, pv = self.geom.pixel_mm(self.view)
        s = self._scale()
        cm = self._center_mm()
        x = self.width() / 2 + (uv[..., 0] * pu - cm[0]) * s
        y = self.height() / 2 + (uv[..., 1] * pv - cm[1]) * s
        return np.stack([x, y], axis=-1)

    def screen_to_uv(self, x: float, y: float) -> np.ndarray:
        pu, pv = self.geom.pixel_mm(self.view)
        s = self._scale()
        cm = self._center_mm()
        return np.array([((x - self.width() / 2) / s + cm[0]) / pu, ((y - self.height() / 2) / s + cm[1]) / pv])

    def lps_to_screen(self, lps) -> np.ndarray:
        return self.uv_to_screen(self.geom.c_to_uv(self.geom.lps_to_c(lps), self.view))

    def screen_to_lps(self, x: float, y: float, normal_index: float | None = None) -> np.ndarray:
        n = self.crosshair_c[self.view.normal] if normal_index is None else normal_index
        return self.geom.c_to_lps(self.geom.uv_to_c(self.screen_to_uv(x, y), self.view, n))

    # ------------------------------------------------------------------ image
    def _slice_image(self) -> QImage:
        key = (self.slice_index, self.width_hu, self.level_hu, self.show_labels, id(self.anatomy))
        if self._img_cache is not None and self._img_cache[0] == key:
            return self._img_cache[1]
        gray = apply_window(self.geom.slice2d(self.volume.voxels, self.view, self.slice_index),
                            self.width_hu, self.level_hu, self._lut)
        rgb = np.repeat(gray[:, :, None], 3, axis=2)
        if self.anatomy is not None and self.show_labels:
            lab = self.geom.slice2d(self.anatomy.labels, self.view, self.slice_index)
            parts = self.geom.slice2d(self.anatomy.parts, self.view, self.slice_index)
            m = lab > 0
            if m.any():
                col = self._colors[lab]
                rgb = rgb.astype(np.float32)
                rgb[m] = rgb[m] * 0.78 + col[m] * 0.22
                edge = _edges(lab)
                rgb[edge] = col[edge]
                ped = (parts == PART_PEDICLE_LEFT) | (parts == PART_PEDICLE_RIGHT)
                pedge = _edges(ped.astype(np.uint8)) & ped
                rgb[pedge] = (255, 255, 120)
                rgb = rgb.astype(np.uint8)
        rgb = np.ascontiguousarray(rgb)
        h, w = rgb.shape[:2]
        img = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self._img_cache = (key, img)
        self._img_version += 1  # (not id(img): ids of freed images are reused)
        return img

    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#000000"))
        if self.geom is None or self.volume is None:
            p.setPen(QColor(COLORS["muted"]))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, f"{self.orientation.capitalize()}\n"
                       "Open a study (Ctrl+O) or drop a folder here")
            p.end()
            return
        img = self._slice_image()
        nu, nv = self.geom.image_size(self.view)
        tl = self.uv_to_screen(np.array([-0.5, -0.5]))
        br = self.uv_to_screen(np.array([nu - 0.5, nv - 0.5]))
        # scale once per slice/zoom (smooth), then blit: repaints while dragging stay cheap
        w, h = max(1, int(round(br[0] - tl[0]))), max(1, int(round(br[1] - tl[1])))
        skey = (self._img_version, w, h)
        if self._scaled is None or self._scaled[0] != skey:
            self._scaled = (skey, QPixmap.fromImage(img.scaled(w, h, Qt.AspectRatioMode.IgnoreAspectRatio,
                                                               Qt.TransformationMode.SmoothTransformation)))
        p.drawPixmap(int(round(tl[0])), int(round(tl[1])), self._scaled[1])
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if self.show_crosshair:
            self._draw_crosshair(p)
        self._draw_level_names(p)
        self._draw_needles(p)
        self._draw_annotations(p)
        p.end()

    def _draw_crosshair(self, p: QPainter):
        xy = self.uv_to_screen(self.geom.c_to_uv(self.crosshair_c, self.view))
        pen = QPen(QColor(COLORS["crosshair"]))
        pen.setWidth(1)
        p.setPen(pen)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setOpacity(0.45)
        gap = 8
        p.drawLine(QPointF(0, xy[1]), QPointF(xy[0] - gap, xy[1]))
        p.drawLine(QPointF(xy[0] + gap, xy[1]), QPointF(self.width(), xy[1]))
        p.drawLine(QPointF(xy[0], 0), QPointF(xy[0], xy[1] - gap))
        p.drawLine(QPointF(xy[0], xy[1] + gap), QPointF(xy[0], self.height()))
        p.setOpacity(1.0)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)

    def _draw_level_names(self, p: QPainter):
        if self.anatomy is None or not self.show_labels:
            return
        f = QFont(self.font())
        f.setPointSize(10)
        f.setBold(True)
        p.setFont(f)
        n = self.view.normal
        items = []  # (label anchor xy, body xy or None, vertebra)
        for v in self.anatomy.sorted_vertebrae():
            c = self.geom.lps_to_c(v.body_center_lps)
            if self.orientation == "axial":
                half = 12.0 / self.geom.spacing_mm[n]
                if abs(c[n] - self.slice_index) > half:
                    continue
                depth = v.body_depth_mm if np.isfinite(v.body_depth_mm) else 30.0
                front = np.asarray(v.body_center_lps, float) + np.asarray(v.ap_axis_lps, float) * (depth / 2 + 9)
                items.append((self.uv_to_screen(self.geom.c_to_uv(self.geom.lps_to_c(front), self.view)), None, v))
            else:  # a column of labels at the left edge, level with each body
                body = self.uv_to_screen(self.geom.c_to_uv(c, self.view))
                items.append((np.array([34.0, body[1]]), body, v))
        if self.orientation != "axial":  # top to bottom, at least one label height apart
            items.sort(key=lambda it: it[0][1])
            last = -1e9
            for it in items:
                it[0][1] = max(it[0][1], last + 21.0)
                last = it[0][1]
        for xy, body, v in items:
            if body is not None and not 44 <= xy[1] <= self.height() - 30:  # clear of the corner texts
                continue
            col = QColor(*[int(x) for x in self._colors[v.label]])
            rect = QRectF(xy[0] - 22, xy[1] - 10, 44, 20)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(0, 0, 0, 150))
            p.drawRoundedRect(rect, 4, 4)
            p.setPen(col)
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, v.name)
            if body is not None and body[0] - 40 > rect.right():  # a leader toward the body
                p.setPen(QPen(col, 1.0, Qt.PenStyle.DotLine))
                p.drawLine(QPointF(rect.right() + 2, xy[1]), QPointF(body[0] - 40, body[1]))
        p.setBrush(Qt.BrushStyle.NoBrush)

    def _needle_segments(self, t):
        """Screen endpoints and the in-slab parameter interval of a needle."""
        a = self.geom.lps_to_c(t.skin_entry_lps)
        b = self.geom.lps_to_c(t.target_lps)
        n = self.view.normal
        sp = self.geom.spacing_mm[n]
        da = (a[n] - self.slice_index) * sp
        db = (b[n] - self.slice_index) * sp
        slab = max(2.0, t.needle_diameter_mm / 2 + sp / 2)
        # interval of t in [0, 1] with |da + t (db - da)| <= slab
        if abs(db - da) < 1e-9:
            inside = (0.0, 1.0) if abs(da) <= slab else None
        else:
            t0 = (-slab - da) / (db - da)
            t1 = (slab - da) / (db - da)
            lo, hi = max(0.0, min(t0, t1)), min(1.0, max(t0, t1))
            inside = (lo, hi) if lo < hi else None
        sa = self.uv_to_screen(self.geom.c_to_uv(a, self.view))
        sb = self.uv_to_screen(self.geom.c_to_uv(b, self.view))
        return sa, sb, inside, abs(da) <= slab, abs(db) <= slab

    def _draw_needles(self, p: QPainter):
        s = self._scale()
        order = [i for i in range(len(self.trajectories)) if i != self.selected]
        if self.selected is not None and self.selected < len(self.trajectories):
            order.append(self.selected)
        for i in order:
            t = self.trajectories[i]
            sel = i == self.selected
            col = status_color(t.status)
            sa, sb, inside, a_in, b_in = self._needle_segments(t)
            # full projection: thin and faint (the in-slice part is drawn thick below)
            pen = QPen(col)
            pen.setWidthF(1.0)
            p.setPen(pen)
            p.setOpacity(0.8 if sel else 0.4)
            p.drawLine(QPointF(*sa), QPointF(*sb))
            if inside is not None:
                q0 = sa + inside[0] * (sb - sa)
                q1 = sa + inside[1] * (sb - sa)
                w = max(2.0, t.needle_diameter_mm * s)
                if sel:
                    halo = QPen(QColor(COLORS["selected"]))
                    halo.setWidthF(w + 2.5)
                    halo.setCapStyle(Qt.PenCapStyle.FlatCap)
                    p.setPen(halo)
                    p.setOpacity(0.8)
                    p.drawLine(QPointF(*q0), QPointF(*q1))
                pen = QPen(col)
                pen.setWidthF(w)
                pen.setCapStyle(Qt.PenCapStyle.FlatCap)
                p.setPen(pen)
                p.setOpacity(0.9)
                p.drawLine(QPointF(*q0), QPointF(*q1))
            p.setOpacity(1.0)
            # handles
            r = 5.5 if sel else 4.0
            for xy, is_in, square in ((sa, a_in, True), (sb, b_in, False)):
                pen = QPen(QColor(COLORS["selected"]) if sel else col)
                pen.setWidthF(1.5)
                p.setPen(pen)
                p.setBrush(QBrush(col) if is_in else Qt.BrushStyle.NoBrush)
                if square:
                    p.drawRect(QRectF(xy[0] - r, xy[1] - r, 2 * r, 2 * r))
                else:
                    p.drawEllipse(QPointF(*xy), r, r)
            p.setBrush(Qt.BrushStyle.NoBrush)
            if sel:
                p.setPen(col)
                f = QFont(self.font())
                f.setPointSize(8)
                p.setFont(f)
                p.drawText(QPointF(sa[0] + 8, sa[1] - 6), t.name)

    def _draw_annotations(self, p: QPainter):
        w, h = self.width(), self.height()
        f = QFont(self.font())
        f.setPointSize(9)
        f.setBold(True)
        p.setFont(f)
        p.setPen(QColor("#c9a227"))
        left, right, top, bottom = EDGE_LETTERS[self.orientation]
        p.drawText(QRectF(4, 0, 20, h), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, left)
        p.drawText(QRectF(w - 24, 0, 20, h), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, right)
        p.drawText(QRectF(0, 2, w, 20), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, top)
        p.drawText(QRectF(0, h - 22, w, 20), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom, bottom)
        f.setBold(False)
        f.setPointSize(8)
        p.setFont(f)
        p.setPen(QColor(COLORS["text"]))
        n = self.view.normal
        pos_mm = self.geom.c_to_lps(self.crosshair_c)[n]
        axis_name = "SLP"[n] if False else ("x", "y", "z")[n]
        p.drawText(QRectF(6, 4, w / 2, 40), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                   f"{self.orientation.upper()}\n{self.slice_index + 1}/{self.n_slices}   "
                   f"{axis_name} {pos_mm:+.1f} mm")
        p.drawText(QRectF(w / 2, h - 20, w / 2 - 6, 16), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom,
                   f"W {self.width_hu:.0f}  L {self.level_hu:.0f}")
        # 10 mm scale bar
        s = self._scale()
        bar = 10.0 * s if 10.0 * s >= 20 else 50.0 * s
        label = "10 mm" if 10.0 * s >= 20 else "50 mm"
        y = h - 14
        p.setPen(QPen(QColor(COLORS["text"]), 1.5))
        p.drawLine(QPointF(8, y), QPointF(8 + bar, y))
        p.drawLine(QPointF(8, y - 3), QPointF(8, y + 3))
        p.drawLine(QPointF(8 + bar, y - 3), QPointF(8 + bar, y + 3))
        p.drawText(QPointF(12 + bar, y + 4), label)

    # ------------------------------------------------------------------ picking
    def pick_handle(self, x: float, y: float):
        """(index, handle) of the needle handle under screen point (x, y), or None."""
        best, best_d = None, HANDLE_PICK_PX
        order = list(range(len(self.trajectories)))
        if self.selected is not None:
            order = [self.selected] + [i for i in order if i != self.selected]
        for i in order:
            t = self.trajectories[i]
            for handle, pt in (("entry", t.skin_entry_lps), ("target", t.target_lps)):
                d = float(np.hypot(*(self.lps_to_screen(pt) - (x, y))))
                if d < best_d - (0.5 if i != self.selected else 0):
                    best, best_d = (i, handle), d
        return best

    # ------------------------------------------------------------------ mouse
    def _hu_at(self, c) -> float | None:
        ijk = np.round(self.geom.c_to_ijk(c)).astype(int)
        if np.any(ijk < 0) or np.any(ijk >= self.geom.array_shape):
            return None
        return float(self.volume.voxels[tuple(ijk)])

    def mousePressEvent(self, ev):
        if self.geom is None:
            return
        x, y = ev.position().x(), ev.position().y()
        btn = ev.button()
        mods = ev.modifiers()
        if btn == Qt.MouseButton.LeftButton and not (mods & Qt.KeyboardModifier.ShiftModifier):
            hit = self.pick_handle(x, y)
            if hit is not None:
                i, handle = hit
                t = self.trajectories[i]
                pt = t.skin_entry_lps if handle == "entry" else t.target_lps
                normal = self.geom.lps_to_c(pt)[self.view.normal]
                if i != self.selected:
                    self.trajectory_picked.emit(i)
                self._drag = {"kind": "handle", "index": i, "handle": handle, "normal": normal}
                return
            self._drag = {"kind": "crosshair"}
            self._move_crosshair(x, y)
        elif btn == Qt.MouseButton.RightButton:
            self._drag = {"kind": "window", "start": (x, y), "wl": (self.width_hu, self.level_hu)}
        elif btn == Qt.MouseButton.MiddleButton or (btn == Qt.MouseButton.LeftButton):
            self._drag = {"kind": "pan", "start": (x, y), "pan": self.pan_mm.copy()}

    def _move_crosshair(self, x, y):
        c = self.geom.uv_to_c(self.screen_to_uv(x, y), self.view, self.crosshair_c[self.view.normal])
        c = np.clip(c, 0, np.array(self.geom.shape) - 1)
        self.crosshair_c = c
        self.crosshair_moved.emit(self.geom.c_to_lps(c))
        self.update()

    def mouseMoveEvent(self, ev):
        if self.geom is None:
            return
        x, y = ev.position().x(), ev.position().y()
        c = self.geom.uv_to_c(self.screen_to_uv(x, y), self.view, self.crosshair_c[self.view.normal])
        self.cursor_moved.emit(self.geom.c_to_lps(c), self._hu_at(c))
        d = self._drag
        if d is None:
            hit = self.pick_handle(x, y)
            self.setCursor(Qt.CursorShape.PointingHandCursor if hit else Qt.CursorShape.CrossCursor)
            return
        if d["kind"] == "handle":
            lps = self.screen_to_lps(x, y, d["normal"])
            self.handle_dragged.emit(d["index"], d["handle"], lps, False)
        elif d["kind"] == "crosshair":
            self._move_crosshair(x, y)
        elif d["kind"] == "window":
            dx, dy = x - d["start"][0], y - d["start"][1]
            w0, l0 = d["wl"]
            self.set_window(max(1.0, w0 * float(np.exp(dx / 250.0))), l0 - dy * w0 / 400.0)
            self.window_changed.emit(self.width_hu, self.level_hu)
        elif d["kind"] == "pan":
            s = self._scale()
            self.pan_mm = d["pan"] - np.array([x - d["start"][0], y - d["start"][1]]) / s
            self.update()

    def mouseReleaseEvent(self, ev):
        d, self._drag = self._drag, None
        if d is not None and d["kind"] == "handle" and self.geom is not None:
            lps = self.screen_to_lps(ev.position().x(), ev.position().y(), d["normal"])
            self.handle_dragged.emit(d["index"], d["handle"], lps, True)

    def mouseDoubleClickEvent(self, ev):
        self.reset_view()

    def wheelEvent(self, ev):
        if self.geom is None:
            return
        steps = ev.angleDelta().y() / 120.0
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:  # zoom about the mouse position
            x, y = ev.position().x(), ev.position().y()
            before = self.screen_to_uv(x, y)
            self.zoom = float(np.clip(self.zoom * (1.15 ** steps), 0.25, 20.0))
            after = self.screen_to_uv(x, y)
            pu, pv = self.geom.pixel_mm(self.view)
            self.pan_mm = self.pan_mm + (before - after) * np.array([pu, pv])
            self.update()
        else:
            self.set_slice_index(self.slice_index + (1 if steps > 0 else -1))

    def keyPressEvent(self, ev):
        k = ev.key()
        if k in (Qt.Key.Key_Up, Qt.Key.Key_Right):
            self.set_slice_index(self.slice_index + 1)
        elif k in (Qt.Key.Key_Down, Qt.Key.Key_Left):
            self.set_slice_index(self.slice_index - 1)
        elif k == Qt.Key.Key_PageUp:
            self.set_slice_index(self.slice_index + 10)
        elif k == Qt.Key.Key_PageDown:
            self.set_slice_index(self.slice_index - 10)
        else:
            super().keyPressEvent(ev)

    def resizeEvent(self, ev):
        self.update()


def _edges(lab: np.ndarray) -> np.ndarray:
    """Pixels of a 2-D label image whose 4-neighbour has another label (inner boundary)."""
    e = np.zeros(lab.shape, bool)
    e[1:, :] |= lab[1:, :] != lab[:-1, :]
    e[:-1, :] |= lab[:-1, :] != lab[1:, :]
    e[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    e[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    return e & (lab > 0)
