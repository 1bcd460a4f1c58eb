"""The report's pictures: simulated fluoroscopy, the clearance plot, annotated images.

Raster pictures (CT slices, fluoroscopy) are embedded losslessly; every word and number
on or around them is drawn as vector text so the PDF stays searchable.
"""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image
from reportlab.graphics.shapes import Drawing, Line, PolyLine, Polygon, Rect, String
from reportlab.lib import colors
from reportlab.lib.utils import ImageReader
from reportlab.platypus import Flowable

from needleplan.report._style import ACCENT, FAIL, INK, MUTED, RULE, fonts

__all__ = ["carm_angles", "fluoro_images", "profile_for", "clearance_plot", "AnnotatedImage"]

log = logging.getLogger("needleplan.report")


# ----------------------------------------------------------------------------- C-arm
def carm_angles(traj, scan_position: str | None) -> dict[str, tuple[float, float]]:
    """``{'bullseye': (lao, cran), 'progression': (lao, cran)}`` in degrees.

    For the procedure position (``traj.procedure_position(scan_position)``): taken from
    ``traj.carm`` when the planner filled it, otherwise from the views of
    :func:`needleplan.geometry.fluoro.trajectory_views` (the ones the pictures show).
    """
    from needleplan.geometry.fluoro import trajectory_views

    out = {}
    views = None
    for kind in ("bullseye", "progression"):
        d = (traj.carm or {}).get(kind) or {}
        if d.get("lao_deg") is not None and d.get("cran_deg") is not None:
            out[kind] = (float(d["lao_deg"]), float(d["cran_deg"]))
            continue
        if views is None:
            views = trajectory_views(traj, traj.procedure_position(scan_position))
        out[kind] = views[kind].angles_deg
    return out


def _draw_needle_projection(rgb: np.ndarray, drr, needle) -> np.ndarray:
    from PIL import ImageDraw

    entry, target, diam = needle
    img = Image.fromarray(rgb, "RGB")
    draw = ImageDraw.Draw(img)
    uv = drr.project(np.stack([entry, target]))
    if not np.all(np.isfinite(uv)):
        return rgb
    (x0, y0), (x1, y1) = uv
    w = max(1, img.size[0] // 300)
    if np.hypot(x1 - x0, y1 - y0) < 4:  # bull's-eye: a ring around the needle's dot
        d = np.asarray(target, float) - np.asarray(entry, float)
        perp = np.cross(d, [0.0, 0.0, 1.0])
        if np.linalg.norm(perp) < 1e-6:
            perp = np.cross(d, [1.0, 0.0, 0.0])
        perp = perp / np.linalg.norm(perp) * 0.5 * diam
        rpx = float(np.linalg.norm(drr.project(np.asarray(entry)[None])[0]
                                   - drr.project((np.asarray(entry) + perp)[None])[0]))
        r = max(5.0, 2.4 * rpx)
        draw.ellipse([x1 - r, y1 - r, x1 + r, y1 + r], outline=(255, 190, 0), width=w + 1)
    else:
        draw.line([(x0, y0), (x1, y1)], fill=(255, 190, 0), width=w)
        r = max(3.0, img.size[0] / 120)
        draw.ellipse([x1 - r, y1 - r, x1 + r, y1 + r], outline=(255, 80, 200), width=w + 1)
    return np.asarray(img)


def fluoro_images(volume, traj, scan_position: str | None, *, pixels: int = 256) -> dict:
    """Bull's-eye and progression DRRs of a trajectory for the report.

    The pictures of :func:`needleplan.geometry.fluoro.render_trajectory` (the same as the
    PNG exports) for ``traj.procedure_position(scan_position)``, without burnt-in text (the
    PDF draws its labels as vector text) and with the needle outlined.

    Returns
    -------
    dict
        ``{'bullseye'|'progression': (rgb uint8 (H, W, 3), letters dict)}``; a view is
        missing when rendering it failed (the report then says so instead of showing it).
    """
    from needleplan.geometry.fluoro import needle_of, render_trajectory
    from needleplan.geometry.views import orientation_letters

    needle = needle_of(traj)
    try:
        rendered = render_trajectory(volume, traj, traj.procedure_position(scan_position), size=pixels,
                                     needles=[needle], annotated=False)
    except Exception as exc:  # the report must not fail for a missing picture
        log.warning("no fluoroscopy images for %s: %s", traj.name, exc)
        return {}
    out = {}
    for kind, r in rendered.items():
        try:
            rgb = _draw_needle_projection(np.ascontiguousarray(r.rgb), r.drr, needle)
            v = r.view
            letters = {"right": orientation_letters(v.right_lps), "left": orientation_letters(-v.right_lps),
                       "top": orientation_letters(v.up_lps), "bottom": orientation_letters(-v.up_lps)}
            out[kind] = (rgb, letters)
        except Exception as exc:  # the report must not fail for a missing picture
            log.warning("no %s fluoroscopy image for %s: %s", kind, traj.name, exc)
    return out


# ----------------------------------------------------------------------------- clearance
def profile_for(traj, anatomy, volume, *, step_mm: float = 1.0) -> tuple[np.ndarray, np.ndarray, str] | None:
    """``(depth_mm, clearance_mm, what)`` along the needle from the skin entry.

    Uses ``traj.clearance_profile`` when the planner stored one; otherwise samples the
    distance from the needle surface to the spinal canal in ``anatomy``.  None when
    neither is available.
    """
    prof = traj.clearance_profile or {}
    depth = prof.get("depth_mm")
    clear = prof.get("clearance_mm")
    if depth is not None and clear is not None and len(depth) == len(clear) and len(depth) >= 2:
        d = np.asarray(depth, float)
        c = np.asarray([np.nan if v is None else v for v in clear], float)
        return d, c, str(prof.get("what", "needle surface to the nearest critical structure"))
    if anatomy is None or not np.any(anatomy.canal):
        return None
    from scipy import ndimage

    pts_depth = np.arange(0.0, traj.length_mm + 1e-9, step_mm)
    pts = traj.skin_entry_lps[None, :] + pts_depth[:, None] * traj.direction_lps[None, :]
    aff = np.asarray(anatomy.ijk_to_lps, float)
    ijk = (pts - aff[:3, 3]) @ np.linalg.inv(aff[:3, :3]).T
    spacing = np.linalg.norm(aff[:3, :3], axis=0)
    margin = np.ceil(30.0 / spacing).astype(int)
    lo = np.maximum(np.floor(ijk.min(axis=0)).astype(int) - margin, 0)
    hi = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + margin + 1, np.array(anatomy.canal.shape))
    if np.any(hi <= lo):
        return None
    crop = anatomy.canal[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    if not crop.any():
        return None
    dist = ndimage.distance_transform_edt(~crop, sampling=spacing)
    vals = ndimage.map_coordinates(dist, (ijk - lo).T, order=1, mode="nearest")
    return pts_depth, vals - 0.5 * float(traj.needle_diameter_mm), "needle surface to the spinal canal"


def _nice_step(span: float, n: int = 5) -> float:
    raw = max(span, 1e-6) / n
    mag = 10 ** np.floor(np.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return float(m * mag)
    return float(10 * mag)


def clearance_plot(depth_mm, clearance_mm, *, limit_mm: float | None, bone_entry_depth_mm: float | None,
                   width: float, height: float, what: str = "") -> Drawing:
    """A vector line plot of clearance against depth along the needle."""
    regular, bold, _ = fonts()
    d = Drawing(width, height)
    left, right, bottom, top = 30.0, 6.0, 22.0, 14.0
    pw, ph = width - left - right, height - bottom - top
    depth = np.asarray(depth_mm, float)
    clear = np.asarray(clearance_mm, float)
    ok = np.isfinite(clear)
    x0, x1 = 0.0, float(np.nanmax(depth)) if depth.size else 1.0
    cmax = float(np.nanmax(clear[ok])) if ok.any() else 10.0
    cmin = float(np.nanmin(clear[ok])) if ok.any() else 0.0
    y0 = min(0.0, np.floor(cmin))
    y1 = max(cmax, (limit_mm or 0) * 2, 5.0) * 1.08
    y1 = min(y1, max(30.0, (limit_mm or 0) * 3))
    sx = lambda v: left + (v - x0) / max(x1 - x0, 1e-6) * pw  # noqa: E731
    sy = lambda v: bottom + (min(max(v, y0), y1) - y0) / max(y1 - y0, 1e-6) * ph  # noqa: E731
    d.add(Rect(left, bottom, pw, ph, fillColor=colors.HexColor("#fbfcfd"), strokeColor=RULE, strokeWidth=0.5))
    if limit_mm is not None and np.isfinite(limit_mm) and y0 <= limit_mm <= y1:
        d.add(Rect(left, bottom, pw, sy(limit_mm) - bottom, fillColor=colors.HexColor("#fbe7e5"),
                   strokeColor=None, strokeWidth=0))
    xs = _nice_step(x1 - x0, 6)
    for v in np.arange(0.0, x1 + 1e-6, xs):
        d.add(Line(sx(v), bottom, sx(v), bottom + ph, strokeColor=RULE, strokeWidth=0.3))
        d.add(String(sx(v), bottom - 8, f"{v:g}", fontName=regular, fontSize=6, fillColor=MUTED, textAnchor="middle"))
    ys = _nice_step(y1 - y0, 4)
    for v in np.arange(np.ceil(y0 / ys) * ys, y1 + 1e-6, ys):
        d.add(Line(left, sy(v), left + pw, sy(v), strokeColor=RULE, strokeWidth=0.3))
        d.add(String(left - 3, sy(v) - 2, f"{v:g}", fontName=regular, fontSize=6, fillColor=MUTED, textAnchor="end"))
    if limit_mm is not None and np.isfinite(limit_mm):
        d.add(Line(left, sy(limit_mm), left + pw, sy(limit_mm), strokeColor=FAIL, strokeWidth=0.8,
                   strokeDashArray=[3, 2]))
        d.add(String(left + pw - 2, sy(limit_mm) + 2, f"limit {limit_mm:g} mm", fontName=regular, fontSize=6,
                     fillColor=FAIL, textAnchor="end"))
    if bone_entry_depth_mm is not None and x0 <= bone_entry_depth_mm <= x1:
        bx = sx(bone_entry_depth_mm)
        d.add(Line(bx, bottom, bx, bottom + ph, strokeColor=ACCENT, strokeWidth=0.6, strokeDashArray=[1.5, 1.5]))
        d.add(String(bx + 2, bottom + 3, "bone entry", fontName=regular, fontSize=6, fillColor=ACCENT))
    # the curve, in runs of finite values
    run: list[float] = []
    for xv, yv, good in zip(depth, clear, ok):
        if good:
            run += [sx(xv), sy(yv)]
        elif len(run) >= 4:
            d.add(PolyLine(run, strokeColor=INK, strokeWidth=1.1)); run = []
        else:
            run = []
    if len(run) >= 4:
        d.add(PolyLine(run, strokeColor=INK, strokeWidth=1.1))
    if ok.any():
        i = int(np.nanargmin(np.where(ok, clear, np.inf)))
        mx, my = sx(depth[i]), sy(clear[i])
        d.add(Polygon([mx - 2.5, my - 2.5, mx + 2.5, my - 2.5, mx, my + 2.0], fillColor=FAIL if (
            limit_mm is not None and clear[i] < limit_mm) else ACCENT, strokeColor=None))
        label = f"minimum {clear[i]:.1f} mm at {depth[i]:.0f} mm depth"
        from reportlab.pdfbase.pdfmetrics import stringWidth

        tw = stringWidth(label, bold, 6.3) + 2
        d.add(Rect(left + pw - tw - 4, bottom + ph - 11, tw + 2, 9, fillColor=colors.white, strokeColor=RULE,
                   strokeWidth=0.3))
        d.add(String(left + pw - 3, bottom + ph - 8.5, label, fontName=bold, fontSize=6.3, fillColor=INK,
                     textAnchor="end"))
    d.add(String(left + pw / 2, 3, "depth along the needle from the skin entry (mm)", fontName=regular,
                 fontSize=6.3, fillColor=MUTED, textAnchor="middle"))
    d.add(String(left - 26, bottom + ph + 5, "Clearance along the needle (mm)", fontName=bold, fontSize=6.8,
                 fillColor=INK))
    if what:
        d.add(String(left + pw, bottom + ph + 5, what, fontName=regular, fontSize=6.2, fillColor=MUTED,
                     textAnchor="end"))
    return d


# ----------------------------------------------------------------------------- images
class AnnotatedImage(Flowable):
    """A lossless raster image with vector title, orientation letters and scale bar.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 or None
        None draws a grey placeholder with ``placeholder`` text.
    width : float
        Width in points; the height follows the aspect ratio (square placeholder).
    title : str
        Drawn in the top-left corner.
    letters : dict, optional
        Orientation letters ``{'left','right','top','bottom'}`` at the edge midpoints.
    mm_per_px : float, optional
        Draws a 10 mm scale bar when given.
    caption : str
        Small text under the image.
    """

    def __init__(self, rgb, width: float, *, title: str = "", letters: dict | None = None,
                 mm_per_px: float | None = None, caption: str = "", placeholder: str = "not available"):
        super().__init__()
        self.rgb = None if rgb is None else np.ascontiguousarray(rgb, dtype=np.uint8)
        self.img_w = width
        self.img_h = width if self.rgb is None else width * self.rgb.shape[0] / self.rgb.shape[1]
        self.title, self.letters, self.mm_per_px = title, letters or {}, mm_per_px
        self.caption, self.placeholder = caption, placeholder
        self.caption_h = 9.0 if caption else 0.0
        self.width, self.height = width, self.img_h + self.caption_h

    def wrap(self, avail_w, avail_h):
        return self.width, self.height

    def draw(self):
        regular, bold, _ = fonts()
        c = self.canv
        y = self.caption_h
        if self.rgb is None:
            c.setFillColor(colors.HexColor("#2b2f36"))
            c.rect(0, y, self.img_w, self.img_h, stroke=0, fill=1)
            c.setFillColor(colors.HexColor("#c9ced6"))
            c.setFont(regular, 7)
            c.drawCentredString(self.img_w / 2, y + self.img_h / 2, self.placeholder)
        else:
            c.drawImage(ImageReader(Image.fromarray(self.rgb, "RGB")), 0, y, self.img_w, self.img_h)
        c.setStrokeColor(colors.HexColor("#3b414a")); c.setLineWidth(0.6)
        c.rect(0, y, self.img_w, self.img_h, stroke=1, fill=0)

        def shadow_text(x, yy, text, size, font=bold, align="left"):
            draw = {"left": c.drawString, "centre": c.drawCentredString, "right": c.drawRightString}[align]
            c.setFont(font, size)
            c.setFillColor(colors.black)
            draw(x + 0.5, yy - 0.5, text)
            c.setFillColor(colors.white)
            draw(x, yy, text)

        if self.title:
            c.setFillColor(colors.Color(0, 0, 0, alpha=0.55))
            c.rect(0, y + self.img_h - 11, self.img_w, 11, stroke=0, fill=1)
            shadow_text(3, y + self.img_h - 8, self.title, 6.6)
        lt = self.letters
        if lt:
            shadow_text(3, y + self.img_h / 2 - 3, lt.get("left", ""), 8)
            shadow_text(self.img_w - 3, y + self.img_h / 2 - 3, lt.get("right", ""), 8, align="right")
            shadow_text(self.img_w / 2, y + self.img_h - 20, lt.get("top", ""), 8, align="centre")
            shadow_text(self.img_w / 2, y + 4, lt.get("bottom", ""), 8, align="centre")
        if self.mm_per_px and self.rgb is not None:
            pts_per_mm = self.img_w / (self.rgb.shape[1] * self.mm_per_px)
            bar = 10.0 * pts_per_mm
            x0, y0 = 5, y + 6
            c.setStrokeColor(colors.white); c.setLineWidth(1.4)
            c.line(x0, y0, x0 + bar, y0)
            c.line(x0, y0 - 2, x0, y0 + 2); c.line(x0 + bar, y0 - 2, x0 + bar, y0 + 2)
            shadow_text(x0 + bar + 3, y0 - 2, "10 mm", 6, font=regular)
        if self.caption:
            c.setFillColor(MUTED); c.setFont(regular, 6.2)
            c.drawString(0, 2, self.caption)
