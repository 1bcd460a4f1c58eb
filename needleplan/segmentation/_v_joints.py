"""Re-decide where two touching vertebrae meet, on the CT's own grid.

The vertebrae are split on a 1.5-2 mm working grid (:mod:`._v_label`), where the facet
joints' gap (a dark sheet about a millimetre thick between two cortical surfaces) blurs
away, so an articular process's tip may go to the neighbour it touches.  On a finer CT
grid the gap is often visible.  Here the voxels within a band around each interface
between two vertebra labels are partitioned again by a geodesic distance
(:func:`._v_geodesic.geodesic_partition`) from the labelled voxels just outside the band,
where a step is costly when it crosses a joint gap: a thin dark valley between bright
bone, measured as the morphological black top-hat of the HU (grey closing minus HU; a
thin gap fills in under the closing, the wide marrow of a process does not) or plain low
density.  Without a visible gap the fronts meet near the middle of the band, i.e. near
the former boundary.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from needleplan.segmentation._v_geodesic import geodesic_partition

__all__ = ["split_joints"]

#: Half width of the band re-decided around each interface (mm).
BAND_MM = 9.0
#: Radius of the grey closing that fills joint gaps (mm).
CLOSE_MM = 2.0
#: Black top-hat (HU) at which a step costs the most.
GAP_HU = 150.0
#: HU at and above which a step costs its length (density term), ...
DENSE_HU = 400.0
#: ... and at and below which it costs :data:`GAP_COST` times its length.
LOOSE_HU = 100.0
#: Cost per mm of a joint gap relative to dense bone.
GAP_COST = 60.0
#: Finest CT voxel (mm, geometric mean) worth the step; coarser grids show no joint gap.
MAX_VOXEL_MM = 1.6
#: Smoothing (mm) of the HU before the top-hat (noise).
SMOOTH_MM = 0.5
#: Voxel neighbourhood of the geodesic steps (26 let paths slip diagonally through
#: one-voxel oblique joint gaps).
CONNECTIVITY = 6
#: VerSe ids up to this one (C1-C7) are left as they are.
LAST_FIXED = 7


def _interface(lab: np.ndarray) -> np.ndarray:
    """Labelled voxels with a 26-neighbour of another non-zero label."""
    hi = ndi.maximum_filter(lab, size=3)
    lo = ndi.minimum_filter(np.where(lab > 0, lab, 255).astype(np.uint8), size=3)
    return (lab > 0) & (((hi != lab) & (hi > 0)) | ((lo != lab) & (lo < 255)))


def _repartition(hu: np.ndarray, lab: np.ndarray, iface: np.ndarray, sp: np.ndarray,
                 band_mm: float) -> None:
    """Re-decide the labelled voxels within ``band_mm`` of ``iface`` (in place)."""
    if not iface.any():
        return
    shell = 2.0 * float(np.max(sp))
    pad = np.ceil((band_mm + shell + CLOSE_MM) / sp).astype(int) + 1
    idx = np.argwhere(iface)
    lo = np.maximum(idx.min(0) - pad, 0)
    hi = np.minimum(idx.max(0) + pad + 1, lab.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    sub = lab[box]
    d = ndi.distance_transform_edt(~iface[box], sampling=sp)
    vert = sub > 0
    band = vert & (d <= band_mm)
    seeds = vert & (d > band_mm) & (d <= band_mm + shell)
    h = np.asarray(hu[box], dtype=np.float32)
    sig = SMOOTH_MM / sp
    if np.any(sig >= 0.3):
        h = ndi.gaussian_filter(h, np.where(sig >= 0.3, sig, 0.0))
    # a box (separable, fast) rather than a ball
    r = np.maximum(1, np.floor(CLOSE_MM / sp + 1e-6)).astype(int)
    gap = ndi.grey_closing(h, size=tuple(2 * r + 1)) - h
    t_gap = np.clip(gap / GAP_HU, 0.0, 1.0)
    t_low = np.clip((DENSE_HU - h) / (DENSE_HU - LOOSE_HU), 0.0, 1.0)
    t = np.maximum(t_gap, t_low)
    cost = (1.0 + (GAP_COST - 1.0) * t * t).astype(np.float32)
    markers = np.where(seeds, sub, 0).astype(np.uint8)
    new = geodesic_partition(band, markers, h, sp, dense_hu=DENSE_HU, loose_hu=LOOSE_HU, step_cost=cost,
                             connectivity=CONNECTIVITY)
    take = band & (new > 0)
    sub[take] = new[take]


def split_joints(hu: np.ndarray, labels: np.ndarray, spacing_mm, *, band_mm: float | None = None) -> np.ndarray:
    """Re-partition the voxels near each interface between two vertebra labels.

    Parameters
    ----------
    hu : (I, J, K) array
        CT in HU.
    labels : (I, J, K) uint8
        Vertebra labels (VerSe ids), 0 elsewhere.
    spacing_mm : (3,) array_like
        Voxel size of both arrays.
    band_mm : float, optional
        Half width of the band re-decided around each interface (default :data:`BAND_MM`).

    Returns
    -------
    (I, J, K) uint8
        New labels (the union of the vertebrae is unchanged).
    """
    sp = np.asarray(spacing_mm, float)
    band_mm = BAND_MM if band_mm is None else float(band_mm)
    result = np.array(labels, dtype=np.uint8, copy=True)
    if float(np.prod(sp)) ** (1.0 / 3.0) > MAX_VOXEL_MM or not result.any():
        return result
    # work in the box of the vertebrae
    pad = np.ceil((band_mm + 3.0 * CLOSE_MM) / sp).astype(int) + 2
    idx = [np.flatnonzero(result.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    box = tuple(slice(max(0, int(i[0]) - p), min(n, int(i[-1]) + p + 1))
                for i, p, n in zip(idx, pad, result.shape))
    out = result[box]  # a view: edited in place
    vals = np.asarray(hu[box], dtype=np.float32)
    # cervical vertebrae keep their split: their small, oblique articular pillars meet
    # along a bright line of two cortices with no gap resolved (phantom: -0.02 Dice)
    movable = np.where(out > LAST_FIXED, out, 0).astype(np.uint8)
    if movable.any():
        iface = _interface(movable)
        # each joint on its own (small boxes keep the distance maps cheap)
        comp, _ = ndi.label(iface, structure=np.ones((3, 3, 3), bool))
        reach = np.ceil((band_mm + 2.0 * float(np.max(sp)) + CLOSE_MM) / sp).astype(int) + 1
        for c, sl in enumerate(ndi.find_objects(comp), start=1):
            if sl is None:
                continue
            bx = tuple(slice(max(0, s.start - r), min(n, s.stop + r)) for s, r, n in zip(sl, reach, movable.shape))
            _repartition(vals[bx], movable[bx], comp[bx] == c, sp, band_mm)
        out[movable > 0] = movable[movable > 0]
    return result
