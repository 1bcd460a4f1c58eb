"""Re-draw where the ribs meet the vertebrae, on the CT's own grid.

The vertebrae and the ribs are told apart on a 1.5-2 mm working grid (:mod:`._v_label`),
where a rib neck lying along the front of a transverse process, or a rib head in the notch
between a body and its pedicle, blurs into the vertebra: the coarse boundary may run
through the process's cortex (the process's marrow then stays open and unfilled) or keep
part of the rib head.  At the joints (costovertebral, costotransverse) the two bones meet
with their own cortical plates, brighter than the cancellous bone on either side, and, in
real scans, a thin joint gap between them.

:func:`split_ribs` re-decides the coarse labels within a band around each contact between
a vertebra and "other bone" by a marker watershed on the CT's HU (the fronts of the
vertebra and of the rib, flooded from the coarse labels beyond the band, meet on the
cortical ridge), before the outline is drawn on the CT grid (:mod:`._v_refine`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from needleplan.segmentation._v_refine import split_contacts

__all__ = ["split_ribs"]

#: Voxels darker than this (HU: soft tissue, fat, joint fluid) are no part of the watershed:
#: a front would run around a process through the soft tissue the coarse outline holds.
MIN_HU = 100.0
#: Half width of the band re-decided, in working voxels (about one working voxel of
#: blur on either side of the coarse boundary).
BAND_WORK_VOX = 1.5


#: Largest connected piece (ml) moved between a vertebra and a rib: a layer of cortex; a
#: whole rib head (0.3-0.5 ml) is not re-decided here.
MAX_MOVE_ML = 0.5
#: Other bone a vertebra's front reached joins it only inside the vertebra's closing by a
#: ball of this radius (mm).
GAIN_CLOSE_MM = 6.0
#: See ``axis`` of :func:`split_ribs`.
SANDWICH_MM = 10.0


def _sandwiched(mask: np.ndarray, axis: int, steps: int) -> np.ndarray:
    """Voxels with a ``mask`` voxel within ``steps`` along ``axis`` on both sides."""
    up = np.zeros(mask.shape, bool)
    down = np.zeros(mask.shape, bool)
    n = mask.shape[axis]
    for s in range(1, min(steps, n - 1) + 1):
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[axis], b[axis] = slice(0, n - s), slice(s, n)
        up[tuple(a)] |= mask[tuple(b)]
        down[tuple(b)] |= mask[tuple(a)]
    return up & down


def _take_back(out: np.ndarray, coarse: np.ndarray, vert: np.ndarray, gained: np.ndarray,
               sp: np.ndarray) -> None:
    """Give the ``gained`` voxels inside a vertebra's closing (a dent of its own outline, not
    a rib head beside it; :data:`GAIN_CLOSE_MM`) the id of the nearest vertebra voxel (in
    place, cluster by cluster)."""
    pad = np.ceil(GAIN_CLOSE_MM / sp).astype(int) + 2
    comp, _ = ndi.label(gained, structure=np.ones((3, 3, 3), bool))
    for c, sl in enumerate(ndi.find_objects(comp), start=1):
        if sl is None:
            continue
        box = tuple(slice(max(0, s.start - int(p)), min(n, s.stop + int(p)))
                    for s, p, n in zip(sl, pad, out.shape))
        v = vert[box]
        if not v.any():
            continue
        g = comp[box] == c
        # closing by a ball: dilate, then erode (distance maps in mm)
        dil = ndi.distance_transform_edt(~v, sampling=sp) <= GAIN_CLOSE_MM
        closed = ndi.distance_transform_edt(dil, sampling=sp) > GAIN_CLOSE_MM
        g &= closed | v
        if not g.any():
            continue
        near = ndi.distance_transform_edt(~v, sampling=sp, return_distances=False, return_indices=True)
        ids = coarse[box][tuple(near)]
        sub = out[box]
        sub[g] = ids[g]  # the rest stays other bone


def split_ribs(hu: np.ndarray, coarse: np.ndarray, spacing_mm, *, work_spacing_mm, other: int,
               axis: int = 2) -> np.ndarray:
    """Re-decide the coarse labels near each contact between a vertebra and other bone.

    Parameters
    ----------
    hu : (I, J, K) array
        CT in HU.
    coarse : (I, J, K) uint8
        Work-grid labels on the CT grid: vertebra ids, ``other`` for other bone, 0 elsewhere.
    spacing_mm : (3,) array_like
        CT voxel size.
    work_spacing_mm : float or (3,) array_like
        Working voxel size (sets the band, :data:`BAND_WORK_VOX`).
    other : int
        Label of other bone.
    axis : int
        Array axis nearest to the patient's S axis.  Other bone with a vertebra within
        :data:`SANDWICH_MM` both above and below it (the bone of a disc slab between two
        bodies, a rib head at the disc) keeps its coarse label.

    Returns
    -------
    (I, J, K) uint8
        New coarse labels: vertebra voxels the rib front reached are ``other``; other-bone
        voxels a vertebra's front reached carry that vertebra's id.
    """
    sp = np.asarray(spacing_mm, float)
    wsp = float(np.max(np.broadcast_to(np.asarray(work_spacing_mm, float), (3,))))
    vert = (coarse > 0) & (coarse != other)
    rib = coarse == other
    out = np.array(coarse, copy=True)
    if not vert.any() or not rib.any():
        return out
    solid = np.asarray(hu, np.float32) > MIN_HU
    rib = rib & ~_sandwiched(vert, axis, int(np.ceil(SANDWICH_MM / sp[axis])))
    two = np.where(vert & solid, 1, np.where(rib & solid, 2, 0)).astype(np.uint8)
    new = split_contacts(two, hu, sp, band_mm=BAND_WORK_VOX * wsp, max_move_ml=MAX_MOVE_ML)
    out[(two == 1) & (new == 2)] = other
    gained = (two == 2) & (new == 1)
    if gained.any():
        _take_back(out, coarse, vert, gained, sp)
    return out
