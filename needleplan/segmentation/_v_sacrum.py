"""Keep the sacrum label to the first sacral segment.

The body column runs on below the lumbosacral disc along the sacrum and coccyx (and
sometimes into the pelvis), and the watershed gives all bone joined to the lowest body
the sacral label.  For planning only S1 matters (TotalSegmentator's reference labels
S1 alone too), so sacral voxels further than :data:`S1_MM` below the L5/S1 disc plane,
or further than :data:`HALF_WIDTH_MM` from the column sideways (beyond the sacral alae,
i.e. the ilia), are dropped, and the centreline is cut at the same plane.

The lumbosacral facet joints are re-decided first (:func:`split_lumbosacral_facets`): the
geodesic partition of :mod:`._v_label` cuts the interlocking articular processes of L5 and
S1 across (about horizontally) where the joint gap is not resolved, giving the tops of
S1's superior articular processes to L5 and the tips of L5's inferior ones to S1.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from needleplan.segmentation._bone import WorkGrid
from needleplan.segmentation._v_column import Column, Discs
from needleplan.segmentation._v_label import DiscPlane, Segments

__all__ = ["cap_sacrum", "split_lumbosacral_facets", "S1_MM", "HALF_WIDTH_MM"]

#: Extent of the sacral label below the lumbosacral disc plane (S1 body ~30 mm and its
#: partial-volume rim).
S1_MM = 38.0
#: Half width of the sacral label (the alae reach ~50-55 mm from the midline).
HALF_WIDTH_MM = 58.0


#: Re-decide the lumbosacral facet joints (see :func:`split_lumbosacral_facets`).
FACETS = True
#: Half width of the band re-decided around the contact of the two vertebrae (mm): an
#: articular process is ~10-15 mm across.
FACET_BAND_MM = 9.0
#: Only the posterior elements: voxels further behind the column centre than this many
#: body radii (the bodies and the disc between them are left alone).
FACET_BEHIND = 0.5


def split_lumbosacral_facets(grid: WorkGrid, col: Column, labels: np.ndarray, *,
                             sacrum_label: int = 26) -> np.ndarray:
    """Re-draw the boundary between the sacrum and the vertebra above behind the bodies.

    Each articular process is a shell of cortex around its own marrow, continuous with the
    marrow of its lamina and pedicle; where two processes touch at a facet joint (or a
    lamina meets the spinous process above) the two cortical plates make a bright ridge
    between two marrow basins, whether or not the joint gap is resolved.  The posterior
    voxels of the two labels within :data:`FACET_BAND_MM` of their contact are flooded
    again by a marker watershed on the HU (SimpleITK) from the labelled voxels beyond the
    band, so the fronts spread through each process's marrow from its own arch and meet
    on the ridge.  Re-assigned pieces that do not reach their new label's voxels beyond
    the band keep their old label.  ``labels`` (work grid, VerSe ids) is not modified.
    """
    sac = labels == sacrum_label
    if not sac.any():
        return labels
    # the vertebra above: the label with the largest contact with the sacrum
    grown = ndi.binary_dilation(sac, structure=np.ones((3, 3, 3), bool))
    near = labels[grown & ~sac]
    near = near[(near > 0) & (near < sacrum_label)]
    if near.size == 0:
        return labels
    above = int(np.bincount(near).argmax())
    sp = np.asarray(grid.spacing_mm, float)
    nz = labels.shape[2]
    ks = np.clip(np.arange(nz) - int(col.z[0]), 0, len(col.z) - 1)
    cy = col.xy[ks, 1] * sp[1]  # column centre (mm, posterior +y) per slice
    ys = (np.arange(labels.shape[1]) * sp[1])[None, :, None]
    behind = ys - cy[None, None, :] > FACET_BEHIND * float(np.median(col.radius_mm))
    pair = ((labels == above) | sac) & behind
    a = pair & (labels == above)
    b = pair & sac
    contact = (ndi.binary_dilation(a, structure=np.ones((3, 3, 3), bool)) & b) | \
        (ndi.binary_dilation(b, structure=np.ones((3, 3, 3), bool)) & a)
    if not contact.any():
        return labels
    idx = np.argwhere(contact)
    pad = np.ceil(2 * FACET_BAND_MM / sp).astype(int) + 2
    lo = np.maximum(idx.min(0) - pad, 0)
    hi = np.minimum(idx.max(0) + pad + 1, labels.shape)
    box = tuple(slice(int(p), int(q)) for p, q in zip(lo, hi))
    sub = labels[box]
    dom = pair[box]
    band = dom & (ndi.distance_transform_edt(~contact[box], sampling=sp) <= FACET_BAND_MM)
    markers = np.where(dom & ~band, sub, 0).astype(np.uint8)
    if not ((markers == above).any() and (markers == sacrum_label).any()):
        return labels
    hu = ndi.gaussian_filter(np.asarray(grid.hu[box], np.float32), 0.5)
    elev = np.where(dom, hu, np.float32(1e4)).astype(np.float32)
    ws = sitk.GetArrayFromImage(sitk.MorphologicalWatershedFromMarkers(
        sitk.GetImageFromArray(elev), sitk.GetImageFromArray(markers),
        markWatershedLine=False, fullyConnected=False))
    new = np.where(band, ws, sub).astype(np.uint8)
    for m in (above, sacrum_label):  # pieces cut off from their new label revert
        comp, n = ndi.label(new == m)
        if n <= 1:
            continue
        anchored = np.unique(comp[(markers == m) & (comp > 0)])
        stray = (comp > 0) & ~np.isin(comp, anchored) & band
        new[stray] = sub[stray]
    out = labels.copy()
    out[box] = np.where(band, new, sub)
    return out


def _disc_above(seg: Segments, discs: Discs, piece: int) -> int | None:
    """Index of the disc right above piece ``piece`` (1-based), if any."""
    a, b = seg.bounds[piece - 1]
    hits = np.flatnonzero(np.asarray(discs.lower) - 1 >= b)
    return int(hits[0]) if len(hits) else None


def cap_sacrum(grid: WorkGrid, col: Column, seg: Segments, discs: Discs, planes: list[DiscPlane],
               work_labels: np.ndarray, *, sacrum_label: int = 26,
               other: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Limit ``sacrum_label`` to S1; returns (labels, mask of column samples to keep).

    The lumbosacral facet joints are re-decided first (:data:`FACETS`,
    :func:`split_lumbosacral_facets`).

    ``work_labels`` (work grid, VerSe ids) is not modified; dropped voxels become ``other``.
    """
    keep = np.ones(len(col.z), bool)
    sac = work_labels == sacrum_label
    if not sac.any():
        return work_labels, keep
    # highest piece carrying the sacral label (before the facets move voxels between pieces)
    top = 0
    for m in range(1, seg.n + 1):
        if (work_labels[seg.labels == m] == sacrum_label).any():
            top = m
    if FACETS:
        work_labels = split_lumbosacral_facets(grid, col, work_labels, sacrum_label=sacrum_label)
        sac = work_labels == sacrum_label
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
