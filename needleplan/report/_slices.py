"""Oblique CT slices through a planned needle, with the pedicle outline and the needle.

Two planes contain the whole needle axis:

* the *axial* one also contains the horizontal direction perpendicular to the needle, so
  it is the axial plane tilted by the needle's craniocaudal angle;
* the *sagittal* one also contains the most superior direction perpendicular to the
  needle, so it is the sagittal plane turned by the needle's medial angle.

Images follow the radiological display: axial with anterior up and the patient's left on
the viewer's right; sagittal with superior up and anterior on the viewer's left.  The
needle is drawn as a band as wide as its outer diameter, so what touches the pedicle
outline on the page touches it in the plan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

__all__ = ["SliceImage", "needle_planes", "render_needle_slice", "BONE_WINDOW"]

#: Bone window (width, level) in HU.
BONE_WINDOW = (1800.0, 400.0)

_L = np.array([1.0, 0.0, 0.0])
_P = np.array([0.0, 1.0, 0.0])
_S = np.array([0.0, 0.0, 1.0])
_LETTERS = (("L", "R"), ("P", "A"), ("S", "I"))

PEDICLE_RGB = (64, 220, 120)
CANAL_RGB = (235, 70, 70)
NEEDLE_FILL = (255, 196, 0, 120)
NEEDLE_EDGE = (255, 170, 0, 255)


@dataclass
class SliceImage:
    """An RGB slice and how it sits in the patient.

    Attributes
    ----------
    rgb : (H, W, 3) uint8
    mm_per_px : float
    letters : dict
        Patient direction letter at each edge: ``{'left', 'right', 'top', 'bottom'}``.
    title : str
    """

    rgb: np.ndarray
    mm_per_px: float
    letters: dict
    title: str


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v)
    return v / n if n > 1e-9 else v * 0.0


def _letter(direction) -> str:
    d = np.asarray(direction, float)
    ax = int(np.argmax(np.abs(d)))
    return _LETTERS[ax][0] if d[ax] > 0 else _LETTERS[ax][1]


def _in_plane(vec, normal) -> np.ndarray:
    return _unit(vec - (vec @ normal) * normal)


def needle_planes(entry_lps, target_lps) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Image axes ``(e_col, e_row)`` (LPS unit vectors) of the axial and sagittal planes.

    ``e_col`` points to the image's right, ``e_row`` down the image; both planes contain
    the needle axis.
    """
    d = _unit(np.asarray(target_lps, float) - np.asarray(entry_lps, float))
    if not np.any(d):
        raise ValueError("needle entry and target coincide")
    # axial-like: plane through d and the horizontal perpendicular to d
    h = np.cross(_S, d)
    if np.linalg.norm(h) < 1e-6:
        h = _L.copy()
    n_ax = _unit(np.cross(d, _unit(h)))
    col = _in_plane(_L, n_ax)
    if not np.any(col):
        col = _in_plane(_P, n_ax)
    row = _unit(np.cross(n_ax, col))
    if row @ _P < 0:
        row = -row
    planes = {"axial": (col, row)}
    # sagittal-like: plane through d and the most superior perpendicular to d
    v = _S - (_S @ d) * d
    if np.linalg.norm(v) < 1e-6:
        v = _P - (_P @ d) * d
    n_sag = _unit(np.cross(d, _unit(v)))
    row = _in_plane(-_S, n_sag)
    if not np.any(row):
        row = _in_plane(_P, n_sag)
    col = _unit(np.cross(n_sag, row))
    if col @ _P < 0:
        col = -col
    planes["sagittal"] = (col, row)
    return planes


def _window(hu: np.ndarray, window=BONE_WINDOW) -> np.ndarray:
    width, level = window
    g = (hu - (level - width / 2.0)) / width
    return (np.clip(g, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _outline(mask: np.ndarray, thickness_px: int) -> np.ndarray:
    if not mask.any():
        return mask
    inner = ndimage.binary_erosion(mask, iterations=thickness_px, border_value=0)
    return mask & ~inner


def render_needle_slice(volume, trajectory, plane: str, *, anatomy=None, fov_mm: float = 96.0,
                        mm_per_px: float = 0.25, window=BONE_WINDOW) -> SliceImage:
    """Resample one oblique slice through a trajectory and draw pedicle, canal and needle.

    Parameters
    ----------
    volume : needleplan.io.Volume
    trajectory : needleplan.planner.Trajectory
    plane : {'axial', 'sagittal'}
    anatomy : needleplan.segmentation.Anatomy, optional
        When given, the outline of the trajectory's pedicle (green) and of the spinal
        canal (red) are drawn.
    fov_mm, mm_per_px : float
        Square field of view centred between bone entry and target, and pixel size.
    window : (width, level)
        Grey-level window in HU (default: bone window).

    Returns
    -------
    SliceImage
    """
    col, row = needle_planes(trajectory.skin_entry_lps, trajectory.target_lps)[plane]
    centre = 0.5 * (np.asarray(trajectory.bone_entry_lps) + np.asarray(trajectory.target_lps))
    n = int(round(fov_mm / mm_per_px))
    offs = (np.arange(n) - (n - 1) / 2.0) * mm_per_px
    # the affine is linear: step along the image axes directly in voxel indices
    lin = np.linalg.inv(np.asarray(volume.ijk_to_lps, float))
    c_ijk = lin[:3, :3] @ centre + lin[:3, 3]
    col_ijk, row_ijk = lin[:3, :3] @ col, lin[:3, :3] @ row
    ijk = (c_ijk[:, None, None] + col_ijk[:, None, None] * offs[None, None, :]
           + row_ijk[:, None, None] * offs[None, :, None]).reshape(3, -1)
    hu = ndimage.map_coordinates(volume.voxels, ijk, order=1, mode="constant", cval=-1024.0,
                                 output=np.float32).reshape(n, n)
    grey = _window(hu, window)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    thick = max(1, int(round(0.5 / mm_per_px)))
    if anatomy is not None:
        nearest = np.rint(ijk).astype(np.intp)
        shape = np.array(anatomy.labels.shape)[:, None]
        inside = np.all((nearest >= 0) & (nearest < shape), axis=0)
        idx = tuple(np.where(inside, nearest, 0))
        labels = np.where(inside, anatomy.labels[idx], 0).reshape(n, n)
        parts = np.where(inside, anatomy.parts[idx], 0).reshape(n, n)
        canal = np.where(inside, anatomy.canal[idx], False).reshape(n, n).astype(bool)
        from needleplan.segmentation.model import PART_PEDICLE_LEFT, PART_PEDICLE_RIGHT, level_label

        try:
            lab = level_label(trajectory.level)
        except ValueError:
            lab = -1
        part = PART_PEDICLE_RIGHT if trajectory.side == "right" else PART_PEDICLE_LEFT
        pedicle = (labels == lab) & (parts == part)
        rgb[_outline(canal, thick)] = CANAL_RGB
        rgb[_outline(pedicle, thick)] = PEDICLE_RGB
    img = Image.fromarray(rgb, "RGB")
    _draw_needle(img, trajectory, centre, col, row, n, mm_per_px)
    letters = {"right": _letter(col), "left": _letter(-col), "bottom": _letter(row), "top": _letter(-row)}
    return SliceImage(np.asarray(img), mm_per_px, letters, plane)


def _to_px(p, centre, col, row, n, mm_per_px) -> tuple[float, float]:
    rel = np.asarray(p, float) - centre
    return (float(rel @ col) / mm_per_px + (n - 1) / 2.0, float(rel @ row) / mm_per_px + (n - 1) / 2.0)


def _draw_needle(img: Image.Image, traj, centre, col, row, n, mm_per_px) -> None:
    a = np.array(_to_px(traj.skin_entry_lps, centre, col, row, n, mm_per_px))
    b = np.array(_to_px(traj.target_lps, centre, col, row, n, mm_per_px))
    e = np.array(_to_px(traj.bone_entry_lps, centre, col, row, n, mm_per_px))
    axis = b - a
    length = np.linalg.norm(axis)
    if length < 1e-6:
        return
    u = axis / length
    perp = np.array([-u[1], u[0]])
    r = 0.5 * float(traj.needle_diameter_mm) / mm_per_px
    poly = [tuple(a + perp * r), tuple(b + perp * r), tuple(b - perp * r), tuple(a - perp * r)]
    overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
    dr = ImageDraw.Draw(overlay)
    dr.polygon(poly, fill=NEEDLE_FILL)
    w = max(1, int(round(r * 0.18)))
    dr.line([poly[0], poly[1]], fill=NEEDLE_EDGE, width=w)
    dr.line([poly[3], poly[2]], fill=NEEDLE_EDGE, width=w)
    dr.line([poly[1], poly[2]], fill=NEEDLE_EDGE, width=w)
    # bone entry: a short tick across the needle; target: a ring
    tick = 2.2 * r
    dr.line([tuple(e + perp * tick), tuple(e - perp * tick)], fill=(80, 200, 255, 255), width=w + 1)
    rr = max(3.0, 1.6 * r)
    dr.ellipse([b[0] - rr, b[1] - rr, b[0] + rr, b[1] + rr], outline=(255, 80, 200, 255), width=w + 1)
    base = img.convert("RGBA")
    base.alpha_composite(overlay)
    img.paste(base.convert("RGB"))
