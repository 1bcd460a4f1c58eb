"""Line and segment geometry in patient LPS millimetres, and sampling a volume along lines.

Small helpers shared by the planner (clearances along a needle), the DRR (needles drawn
in) and the GUI.  Points are ``(..., 3)`` float arrays in LPS mm.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = [
    "unit",
    "point_segment_distance_mm",
    "closest_point_on_segment",
    "sample_segment",
    "sample_volume",
    "angle_between_deg",
]


def unit(v) -> np.ndarray:
    """``v / |v|`` as float64; raises ``ValueError`` for a zero or non-finite vector."""
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v)
    if not np.isfinite(n) or n == 0:
        raise ValueError(f"direction {v!r} has zero length")
    return v / n


def _segment_param(points, a, b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = np.asarray(points, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ab = b - a
    ll = float(ab @ ab)
    t = np.zeros(p.shape[:-1]) if ll == 0 else np.clip(((p - a) @ ab) / ll, 0.0, 1.0)
    return p, a + t[..., None] * ab, t


def closest_point_on_segment(points_lps, a_lps, b_lps) -> tuple[np.ndarray, np.ndarray]:
    """Closest points on the segment ``a -> b`` and their parameter ``t`` in [0, 1].

    Returns
    -------
    closest : (..., 3) ndarray
    t : (...) ndarray
        0 at ``a``, 1 at ``b``.
    """
    _, c, t = _segment_param(points_lps, a_lps, b_lps)
    return c, t


def point_segment_distance_mm(points_lps, a_lps, b_lps) -> np.ndarray:
    """Distance (mm) from points ``(..., 3)`` to the segment ``a -> b`` (a point if a == b).

    Examples
    --------
    >>> float(point_segment_distance_mm([0, 3, 5], [0, 0, 0], [0, 0, 10]))
    3.0
    >>> float(point_segment_distance_mm([0, 0, 14], [0, 0, 0], [0, 0, 10]))
    4.0
    """
    p, c, _ = _segment_param(points_lps, a_lps, b_lps)
    return np.linalg.norm(p - c, axis=-1)


def sample_segment(a_lps, b_lps, *, step_mm: float = 1.0, include_end: bool = True) -> np.ndarray:
    """Points from ``a`` to ``b`` (inclusive) at most ``step_mm`` apart, evenly spaced.

    Returns an ``(N, 3)`` array, ``N >= 2`` (``N == 1`` when ``a == b``); the first point is
    ``a`` and, with ``include_end``, the last is ``b``.
    """
    if not step_mm > 0:
        raise ValueError(f"step_mm must be > 0, got {step_mm!r}")
    a = np.asarray(a_lps, dtype=np.float64)
    b = np.asarray(b_lps, dtype=np.float64)
    length = float(np.linalg.norm(b - a))
    if length == 0:
        return a[None].copy()
    n = max(1, int(np.ceil(length / step_mm - 1e-9)))
    t = np.linspace(0.0, 1.0, n + 1)
    if not include_end:
        t = t[:-1]
    return a + t[:, None] * (b - a)


def sample_volume(volume_or_array, ijk_to_lps=None, points_lps=None, *, order: int = 1,
                  cval: float = 0.0) -> np.ndarray:
    """Interpolate a volume at LPS points (trilinear by default).

    Parameters
    ----------
    volume_or_array : Volume or (I, J, K) ndarray
        A :class:`needleplan.io.Volume` (then ``ijk_to_lps`` may be omitted) or a bare
        array on the grid given by ``ijk_to_lps``.
    ijk_to_lps : (4, 4) array_like, optional
        Voxel-centre index -> LPS affine; required for a bare array.
    points_lps : (..., 3) array_like
    order : int
        Spline order for :func:`scipy.ndimage.map_coordinates` (0 nearest, 1 trilinear).
    cval : float
        Value returned for points outside the volume (e.g. -1000 for HU).

    Returns
    -------
    (...) ndarray of float64

    Examples
    --------
    >>> arr = np.arange(8, dtype=float).reshape(2, 2, 2)
    >>> float(sample_volume(arr, np.eye(4), [[0.5, 0.5, 0.5]])[0])
    3.5
    """
    if points_lps is None:  # sample_volume(volume, points)
        points_lps, ijk_to_lps = ijk_to_lps, None
    arr = getattr(volume_or_array, "voxels", volume_or_array)
    if ijk_to_lps is None:
        ijk_to_lps = getattr(volume_or_array, "ijk_to_lps", None)
        if ijk_to_lps is None:
            raise ValueError("sample_volume: ijk_to_lps is required for a bare array")
    arr = np.asarray(arr)
    aff = np.linalg.inv(np.asarray(ijk_to_lps, dtype=np.float64))
    pts = np.asarray(points_lps, dtype=np.float64)
    shape = pts.shape[:-1]
    ijk = pts.reshape(-1, 3) @ aff[:3, :3].T + aff[:3, 3]
    if arr.dtype.kind not in "f":
        arr = arr.astype(np.float32)
    out = ndimage.map_coordinates(arr, ijk.T, order=order, mode="constant", cval=cval,
                                  prefilter=order > 1, output=np.float64)
    return out.reshape(shape)


def angle_between_deg(u, v) -> np.ndarray:
    """Angle in degrees (0-180) between vectors ``(..., 3)`` (robust near 0 and 180).

    Examples
    --------
    >>> float(angle_between_deg([1, 0, 0], [0, 2, 0]))
    90.0
    """
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    cross = np.linalg.norm(np.cross(u, v), axis=-1)
    dot = np.sum(u * v, axis=-1)
    return np.degrees(np.arctan2(cross, dot))
