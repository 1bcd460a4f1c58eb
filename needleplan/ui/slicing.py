"""Pure-numpy slice geometry for the 2-D views (no Qt/VTK here, unit-testable).

A :class:`SliceGeometry` presents a :class:`~needleplan.io.Volume` of any orientation
(LPS, RAS, PIR ...) as a *canonical* array ``c[x, y, z]`` whose axes run toward patient
Left, Posterior and Superior (a view with transposes and flips, no copy).  Each 2-D view
(:class:`ViewAxes`) picks two canonical axes for the screen:

* axial: screen right = patient left (radiological convention), screen down = posterior;
* coronal: screen right = patient left, screen up = superior;
* sagittal: screen right = posterior (anterior on the left), screen up = superior.

Oblique volumes are shown on their nearest axes (the slice is the array's own plane).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SliceGeometry", "ViewAxes", "VIEWS", "window_lut", "apply_window", "label_colors",
           "PRESETS"]

#: Window/level presets (name: (width, level)) in HU.
PRESETS: dict[str, tuple[float, float]] = {
    "Bone": (2000.0, 500.0),
    "Spine": (1500.0, 300.0),
    "Soft tissue": (400.0, 40.0),
    "Lung": (1500.0, -600.0),
    "Brain": (80.0, 40.0),
}


@dataclass(frozen=True)
class ViewAxes:
    """Which canonical axes a 2-D view shows: ``hor`` to the right, ``ver`` downward."""

    name: str
    hor: int
    ver: int
    normal: int
    ver_flipped: bool  # True: screen up = +ver axis (superior)


VIEWS = {
    "axial": ViewAxes("axial", 0, 1, 2, False),
    "coronal": ViewAxes("coronal", 0, 2, 1, True),
    "sagittal": ViewAxes("sagittal", 1, 2, 0, True),
}

#: Letters at the screen edges (left, right, top, bottom) per view.
EDGE_LETTERS = {
    "axial": ("R", "L", "A", "P"),
    "coronal": ("R", "L", "S", "I"),
    "sagittal": ("A", "P", "S", "I"),
}


class SliceGeometry:
    """Canonical (L, P, S) access to a volume's voxels.

    Parameters
    ----------
    ijk_to_lps : (4, 4) array_like
    shape : tuple of 3 int
    """

    def __init__(self, ijk_to_lps, shape):
        aff = np.asarray(ijk_to_lps, dtype=np.float64)
        self.ijk_to_lps = aff
        self.lps_to_ijk = np.linalg.inv(aff)
        self.array_shape = tuple(int(s) for s in shape)
        rot = aff[:3, :3]
        spacing = np.linalg.norm(rot, axis=0)
        direction = rot / spacing
        perm = []
        for a in range(3):  # LPS axis a -> array axis most aligned with it
            order = np.argsort(-np.abs(direction[a]))
            ax = next(int(o) for o in order if int(o) not in perm)
            perm.append(ax)
        self.perm = tuple(perm)
        self.flip = tuple(bool(direction[a, perm[a]] < 0) for a in range(3))
        self.shape = tuple(self.array_shape[p] for p in self.perm)
        self.spacing_mm = np.array([spacing[p] for p in self.perm])

    # ---------------------------------------------------------------- arrays
    def canonical(self, arr: np.ndarray) -> np.ndarray:
        """A (L, P, S)-ordered view of an array on the volume's grid (no copy)."""
        out = np.transpose(arr, self.perm)
        sl = tuple(slice(None, None, -1) if f else slice(None) for f in self.flip)
        return out[sl]

    def slice2d(self, arr: np.ndarray, view: ViewAxes, index: int) -> np.ndarray:
        """The 2-D image (rows = screen y, columns = screen x) of canonical slice ``index``."""
        c = self.canonical(arr)
        idx = [slice(None)] * 3
        idx[view.normal] = int(np.clip(index, 0, self.shape[view.normal] - 1))
        img = c[tuple(idx)]  # remaining axes in increasing order
        rem = [a for a in range(3) if a != view.normal]
        if rem.index(view.hor) == 0:  # (hor, ver) -> want (ver, hor)
            img = img.T
        if view.ver_flipped:
            img = img[::-1]
        return img

    # ---------------------------------------------------------------- points
    def c_to_ijk(self, c) -> np.ndarray:
        c = np.asarray(c, dtype=np.float64)
        out = np.empty_like(c)
        for a in range(3):
            v = c[..., a]
            if self.flip[a]:
                v = (self.shape[a] - 1) - v
            out[..., self.perm[a]] = v
        return out

    def ijk_to_c(self, ijk) -> np.ndarray:
        ijk = np.asarray(ijk, dtype=np.float64)
        out = np.empty_like(ijk)
        for a in range(3):
            v = ijk[..., self.perm[a]]
            out[..., a] = (self.shape[a] - 1) - v if self.flip[a] else v
        return out

    def c_to_lps(self, c) -> np.ndarray:
        ijk = self.c_to_ijk(c)
        return ijk @ self.ijk_to_lps[:3, :3].T + self.ijk_to_lps[:3, 3]

    def lps_to_c(self, p) -> np.ndarray:
        inv = self.lps_to_ijk
        ijk = np.asarray(p, dtype=np.float64) @ inv[:3, :3].T + inv[:3, 3]
        return self.ijk_to_c(ijk)

    # ---------------------------------------------------------------- 2-D mapping
    def c_to_uv(self, c, view: ViewAxes) -> np.ndarray:
        """Canonical index ``(..., 3)`` to image pixel ``(..., 2)`` (u = column, v = row)."""
        c = np.asarray(c, dtype=np.float64)
        u = c[..., view.hor]
        v = c[..., view.ver]
        if view.ver_flipped:
            v = (self.shape[view.ver] - 1) - v
        return np.stack([u, v], axis=-1)

    def uv_to_c(self, uv, view: ViewAxes, normal_index: float) -> np.ndarray:
        uv = np.asarray(uv, dtype=np.float64)
        c = np.zeros(uv.shape[:-1] + (3,))
        c[..., view.hor] = uv[..., 0]
        v = uv[..., 1]
        c[..., view.ver] = (self.shape[view.ver] - 1) - v if view.ver_flipped else v
        c[..., view.normal] = normal_index
        return c

    def image_size(self, view: ViewAxes) -> tuple[int, int]:
        """(columns, rows) of the view's image."""
        return self.shape[view.hor], self.shape[view.ver]

    def pixel_mm(self, view: ViewAxes) -> tuple[float, float]:
        """(width, height) in mm of one image pixel of the view."""
        return float(self.spacing_mm[view.hor]), float(self.spacing_mm[view.ver])


def window_lut(width: float, level: float) -> np.ndarray:
    """uint8 lookup table over int16 (index ``hu + 32768``) for a window."""
    width = max(float(width), 1.0)
    hu = np.arange(-32768, 32768, dtype=np.float32)
    g = (hu - (level - width / 2.0)) / width * 255.0
    return np.clip(g, 0, 255).astype(np.uint8)


def apply_window(img: np.ndarray, width: float, level: float, lut: np.ndarray | None = None) -> np.ndarray:
    """Window a 2-D HU image to uint8 (fast path for int16 through a lookup table)."""
    if img.dtype == np.int16:
        lut = window_lut(width, level) if lut is None else lut
        return lut[img.astype(np.int32) + 32768]
    width = max(float(width), 1.0)
    g = (np.asarray(img, np.float32) - (level - width / 2.0)) / width * 255.0
    return np.clip(g, 0, 255).astype(np.uint8)


def label_colors(n: int = 256) -> np.ndarray:
    """(n, 3) uint8 colours for vertebra labels: distinct, alternating along the spine."""
    palette = np.array([
        [230, 159, 0], [86, 180, 233], [0, 158, 115], [240, 228, 66], [204, 121, 167],
        [213, 94, 0], [0, 114, 178], [170, 220, 120], [255, 140, 140], [160, 140, 255],
    ], dtype=np.uint8)
    out = np.zeros((n, 3), np.uint8)
    for i in range(1, n):
        out[i] = palette[i % len(palette)]
    return out
