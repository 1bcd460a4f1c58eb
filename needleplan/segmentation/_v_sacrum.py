"""Keep the sacrum label to the first sacral segment.

The body column runs on below the lumbosacral disc along the sacrum and coccyx (and
sometimes into the pelvis), and the watershed gives all bone joined to the lowest body
the sacral label.  For planning only S1 matters (TotalSegmentator's reference labels
S1 alone too), so sacral voxels further than :data:`S1_MM` below the L5/S1 disc plane,
or further than :data:`HALF_WIDTH_MM` from the column sideways (beyond the sacral alae,
i.e. the ilia), are dropped, and the centreline is cut at the same plane.
"""

from __future__ import annotations

import numpy as np

from needleplan.segmentation._bone import WorkGrid
from needleplan.segmentation._v_column import Column, Discs
from needleplan.segmentation._v_label import DiscPlane, Segments

__all__ = ["cap_sacrum", "S1_MM", "HALF_WIDTH_MM"]

#: Extent of the sacral label below the lumbosacral disc plane (S1 body ~30 mm and its
#: partial-volume rim).
S1_MM = 38.0
#: Half width of the sacral label (the alae reach ~50-55 mm from the midline).
HALF_WIDTH_MM = 58.0


def _disc_above(seg: Segments, discs: Discs, piece: int) -> int | None:
    """Index of the disc right above piece ``piece`` (1-based), if any."""
    a, b = seg.bounds[piece - 1]
    hits = np.flatnonzero(np.asarray(discs.lower) - 1 >= b)
    return int(hits[0]) if len(hits) else None


def cap_sacrum(grid: WorkGrid, col: Column, seg: Segments, discs: Discs, planes: list[DiscPlane],
               work_labels: np.ndarray, *, sacrum_label: int = 26,
               other: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Limit ``sacrum_label`` to S1; returns (labels, mask of column samples to keep).

    ``work_labels`` (work grid, VerSe ids) is not modified; dropped voxels become ``other``.
    """
    keep = np.ones(len(col.z), bool)
    sac = work_labels == sacrum_label
    if not sac.any():
        return work_labels, keep
    # highest piece carrying the sacral label
    top = 0
    for m in range(1, seg.n + 1):
        if (work_labels[seg.labels == m] == sacrum_label).any():
            top = m
    j = _disc_above(seg, discs, top) if top else None
    if j is None or j >= len(planes):
        return work_labels, keep
    plane = planes[j]
    sp = grid.spacing_mm
    ii, jj, kk = np.nonzero(sac)
    pts = np.column_stack([ii, jj, kk]) * sp
    below = plane.distance(pts)
    ci = np.clip(kk - int(col.z[0]), 0, len(col.z) - 1)
    dx = (ii - col.xy[ci, 0]) * sp[0]
    drop = (below < -S1_MM) | (np.abs(dx) > HALF_WIDTH_MM)
    out = work_labels.copy()
    out[ii[drop], jj[drop], kk[drop]] = other
    cpts = col.points_ijk() * sp
    keep = plane.distance(cpts) >= -S1_MM
    return out, keep
