"""Label a DRR like a fluoroscopy monitor: C-arm angles in large type, orientation letters.

Pure Pillow (no Qt): returns an RGB uint8 array that the GUI, the PDF report and
``needleplan render`` all use.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from needleplan.geometry.views import orientation_letters

__all__ = ["annotate", "save_png"]

_NEEDLE_COLOUR = (255, 190, 0)  # amber planned path
_TEXT = (255, 255, 255)
_SHADOW = (0, 0, 0)


@lru_cache(maxsize=16)
def _font(size: int, bold: bool = False) -> ImageFont.ImageFont:
    names = ["DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"]
    dirs = ["/usr/share/fonts/truetype/dejavu"]
    try:
        import matplotlib

        dirs.append(os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf"))
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        pass
    for d in dirs:
        for n in names:
            p = Path(d) / n
            if p.is_file():
                return ImageFont.truetype(str(p), size)
    return ImageFont.load_default(size)


def _text(draw: ImageDraw.ImageDraw, xy, text: str, font, *, anchor: str = "la", fill=_TEXT) -> None:
    draw.text(xy, text, font=font, anchor=anchor, fill=fill, stroke_width=max(1, font.size // 12),
              stroke_fill=_SHADOW)


def annotate(drr, *, title: str | None = None, carm_text: str | None = None,
             patient_position: str | None = None, outline: bool = True, scale: int | None = None,
             extra_lines: tuple[str, ...] = ()) -> np.ndarray:
    """An RGB image of ``drr`` with angles, patient position and orientation letters.

    Parameters
    ----------
    drr : DRR
        From :func:`needleplan.geometry.drr.render_drr`.
    title : str, optional
        Top-left caption (default: the view's label).
    carm_text : str, optional
        Large C-arm angle text (default: the view's ``angles_text``, e.g. ``'RAO 20°  CAUD 5°'``).
    patient_position : str, optional
        Shown under the angles (default: the view's).
    outline : bool
        Draw the planned needle path(s) as a thin amber outline over the image.
    scale : int, optional
        Integer upscaling for small (preview) images; default makes the image >= 512 px.
    extra_lines : tuple of str
        More caption lines under the title.

    Returns
    -------
    (rows * scale, cols * scale, 3) uint8 ndarray
    """
    view = drr.view
    rows, cols = drr.display.shape
    if scale is None:
        scale = max(1, int(np.ceil(512 / max(rows, cols))))
    img = Image.fromarray(drr.display).convert("RGB")
    if scale > 1:
        img = img.resize((cols * scale, rows * scale), Image.Resampling.BILINEAR)
    w, h = img.size
    draw = ImageDraw.Draw(img)

    if outline:
        for entry, target, diam in drr.needles:
            uv = drr.project(np.stack([entry, target])) * scale + (scale - 1) / 2.0
            if not np.all(np.isfinite(uv)):
                continue
            (x0, y0), (x1, y1) = uv
            if np.hypot(x1 - x0, y1 - y0) < 3 * scale:  # bull's-eye: a ring around the dot
                edge = drr.project(np.stack([entry, entry + _perp(entry, target, diam)]))
                r = max(3.0, 1.6 * float(np.linalg.norm(edge[1] - edge[0])) * scale)  # just around the dot
                draw.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], outline=_NEEDLE_COLOUR, width=max(1, w // 400))
            else:
                draw.line([(x0, y0), (x1, y1)], fill=_NEEDLE_COLOUR, width=max(1, w // 512))
                r = max(2.0, w / 200)
                draw.ellipse([x1 - r, y1 - r, x1 + r, y1 + r], outline=_NEEDLE_COLOUR, width=max(1, w // 512))

    big = _font(max(12, w // 16), bold=True)
    small = _font(max(10, w // 32))
    letters = _font(max(12, w // 20), bold=True)
    pad = max(4, w // 64)
    text_right = pad
    y = pad
    for line in (title if title is not None else (view.label or ""), *extra_lines):
        _text(draw, (pad, y), line, small)
        text_right = max(text_right, draw.textbbox((pad, y), line, font=small)[2])
        y += int(small.size * 1.3)
    angles = carm_text if carm_text is not None else view.angles_text
    _text(draw, (w - pad, h - pad - int(small.size * 1.4)), angles, big, anchor="rd")
    angles_left = draw.textbbox((w - pad, h - pad - int(small.size * 1.4)), angles, font=big, anchor="rd")[0]
    if patient_position is not None:
        pp = patient_position
    elif view.patient_position:
        pp = view.patient_position
    else:
        pp = "position unknown: angles for supine"
    _text(draw, (w - pad, h - pad), pp, small, anchor="rd")
    # orientation letters at the middle of the edges, nudged clear of the captions
    right = orientation_letters(view.right_lps)
    up = orientation_letters(view.up_lps)
    left = orientation_letters(-view.right_lps)
    down = orientation_letters(-view.up_lps)
    _text(draw, (w - pad, h // 2), right, letters, anchor="rm")
    _text(draw, (pad, h // 2), left, letters, anchor="lm")
    half_up = (draw.textbbox((0, 0), up, font=letters)[2]) / 2
    _text(draw, (max(w / 2, text_right + pad + half_up), pad), up, letters, anchor="ma")
    half_down = (draw.textbbox((0, 0), down, font=letters)[2]) / 2
    _text(draw, (min(w / 2, angles_left - pad - half_down), h - pad), down, letters, anchor="md")
    return np.asarray(img)


def _perp(entry, target, diam) -> np.ndarray:
    n = np.asarray(target, float) - np.asarray(entry, float)
    n /= np.linalg.norm(n)
    helper = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    p = np.cross(n, helper)
    return 0.5 * float(diam) * p / np.linalg.norm(p)


def save_png(rgb_or_gray: np.ndarray, path) -> Path:
    """Write an image array as PNG atomically (temporary file in the folder, then rename)."""
    from needleplan.errors import OutputError

    path = Path(path)
    if not path.parent.is_dir():
        raise OutputError(f"cannot write '{path}': folder '{path.parent}' does not exist", path=path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    try:
        Image.fromarray(np.asarray(rgb_or_gray)).save(tmp, format="PNG")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write '{path}': {exc.strerror or exc}", path=path) from exc
    return path
