"""Per-vertebra local frames and resampling between the CT grid and a local grid.

A vertebra is analysed on a small grid aligned with its own anatomical axes
(``x`` toward the patient's left, ``y`` anterior, ``z`` superior along the local spine
axis), so that "axial slices" are perpendicular to the spine whatever the scan
orientation, and the parts found there are mapped back onto the CT grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["LocalGrid", "unit", "perpendicular_part", "spine_axes", "crop_box"]


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def true_run(mask: np.ndarray, k: int) -> tuple[int, int]:
    """First and last index of the run of True in the 1-D ``mask`` that contains index ``k``.

    ``mask[k]`` must be True.

    Examples
    --------
    >>> true_run(np.array([0, 1, 1, 1, 0, 1], bool), 2)
    (1, 3)
    """
    lo = hi = int(k)
    while lo > 0 and mask[lo - 1]:
        lo -= 1
    while hi < len(mask) - 1 and mask[hi + 1]:
        hi += 1
    return lo, hi


def perpendicular_part(v, axis) -> np.ndarray:
    """Unit part of ``v`` perpendicular to the unit vector ``axis``."""
    v = np.asarray(v, dtype=np.float64)
    return unit(v - (v @ axis) * axis)


def spine_axes(centroids_lps: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Local superior spine axis per vertebra from its neighbours' centroids (LPS).

    Labels are ordered cranial to caudal by their VerSe number (T13 = 28 sits between
    T12 = 19 and L1 = 20).  A vertebra without neighbours gets patient superior.
    """
    order = sorted(centroids_lps, key=lambda lab: 19.5 if lab == 28 else lab)
    out = {}
    for n, lab in enumerate(order):
        up = centroids_lps[order[n - 1]] if n > 0 else None
        down = centroids_lps[order[n + 1]] if n + 1 < len(order) else None
        here = centroids_lps[lab]
        if up is not None and down is not None:
            v = up - down
        elif up is not None:
            v = up - here
        elif down is not None:
            v = here - down
        else:
            v = np.array([0.0, 0.0, 1.0])
        v = unit(v)
        if not np.all(np.isfinite(v)) or np.linalg.norm(v) == 0 or abs(v[2]) < 0.3:
            v = np.array([0.0, 0.0, 1.0])  # implausible neighbour geometry: trust the patient axis
        out[lab] = v if v[2] >= 0 else -v
    return out


def crop_box(mask: np.ndarray, margin_vox) -> tuple[slice, slice, slice]:
    """Bounding box of ``mask`` grown by ``margin_vox`` (per axis), clipped to the array."""
    idx = np.nonzero(mask)
    m = np.broadcast_to(np.asarray(margin_vox, dtype=int), (3,))
    return tuple(
        slice(max(int(i.min()) - int(m[a]), 0), min(int(i.max()) + int(m[a]) + 1, mask.shape[a]))
        for a, i in enumerate(idx)
    )  # type: ignore[return-value]


@dataclass
class LocalGrid:
    """A grid of step ``step_mm`` in a rotated frame ``rot`` (columns: left, anterior, superior).

    Local coordinate of grid index ``o`` is ``lo_mm + step_mm * o``; its LPS point is
    ``center_lps + rot @ local``.
    """

    center_lps: np.ndarray
    rot: np.ndarray
    lo_mm: np.ndarray
    shape: tuple[int, int, int]
    step_mm: float

    @classmethod
    def around(cls, points_lps: np.ndarray, center_lps, rot, *, step_mm: float, margin_mm: float):
        local = (np.asarray(points_lps) - center_lps) @ rot
        lo = local.min(axis=0) - margin_mm
        hi = local.max(axis=0) + margin_mm
        shape = tuple(int(np.ceil((h - l) / step_mm)) + 1 for l, h in zip(lo, hi))
        return cls(np.asarray(center_lps, float), np.asarray(rot, float), lo, shape, float(step_mm))

    # ------------------------------------------------------------------ conversions
    def axes_mm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Local x, y, z (mm) of the voxel centres along each grid axis."""
        return tuple(lo + self.step_mm * np.arange(n) for lo, n in zip(self.lo_mm, self.shape))

    def to_lps(self, index) -> np.ndarray:
        """Grid indices ``(..., 3)`` (may be fractional) to LPS mm."""
        local = self.lo_mm + self.step_mm * np.asarray(index, dtype=np.float64)
        return self.center_lps + local @ self.rot.T

    def to_index(self, points_lps) -> np.ndarray:
        """LPS mm ``(..., 3)`` to fractional grid indices."""
        local = (np.asarray(points_lps, dtype=np.float64) - self.center_lps) @ self.rot
        return (local - self.lo_mm) / self.step_mm

    def dir_to_lps(self, v_local) -> np.ndarray:
        return np.asarray(v_local, dtype=np.float64) @ self.rot.T

    def sample(self, array: np.ndarray, ijk_to_lps: np.ndarray, *, order: int, offset_ijk=(0, 0, 0),
               cval: float = 0.0) -> np.ndarray:
        """Resample a CT-grid ``array`` (possibly a crop starting at ``offset_ijk``) onto this grid."""
        lps_to_ijk = np.linalg.inv(ijk_to_lps)
        a3, t3 = lps_to_ijk[:3, :3], lps_to_ijk[:3, 3]
        matrix = a3 @ self.rot * self.step_mm
        offset = a3 @ (self.center_lps + self.rot @ self.lo_mm) + t3 - np.asarray(offset_ijk, float)
        return ndi.affine_transform(array, matrix, offset=offset, output_shape=self.shape,
                                    order=order, mode="constant", cval=cval, prefilter=False)

    def lookup(self, grid_values: np.ndarray, ijk: np.ndarray, ijk_to_lps: np.ndarray) -> np.ndarray:
        """Nearest grid value at CT voxel indices ``ijk`` (N, 3); 0 outside the grid."""
        lps = ijk @ ijk_to_lps[:3, :3].T + ijk_to_lps[:3, 3]
        o = np.rint(self.to_index(lps)).astype(np.int64)
        ok = np.all((o >= 0) & (o < np.asarray(self.shape)), axis=1)
        out = np.zeros(len(ijk), dtype=grid_values.dtype)
        out[ok] = grid_values[o[ok, 0], o[ok, 1], o[ok, 2]]
        return out
