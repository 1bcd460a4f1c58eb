"""Fill the marrow of each vertebra on the CT grid (3-D, orientation free).

The outline on the CT grid (:mod:`._v_refine`) keeps bone above a cortex threshold, the
deep interior of the coarse labels and holes enclosed slice by slice.  Where the
cancellous bone of a body is below the cortex threshold and its thin anterior cortex
blurs below it too (noisy 1 mm slices), the body's marrow is neither deep enough nor
enclosed in any array plane; on an oblique (kyphotic) spine the slices cut the bodies
obliquely, so the marrow stayed unlabelled in ragged patches reaching the front of the
body, and the body heights measured there fell by half.

Here each vertebra takes back the marrow of its body, in 3-D: voxels of the coarse label
(work grid, bodies made solid) that lie in its body (where a ball of :data:`BODY_MM` fits;
pedicles, arches and processes are thinner and keep their outline), more than one working
voxel inside its outline (which is about one working voxel too wide on the CT grid) and
:data:`PEEL_MM` inside what is neither vertebra nor marrow, whose median-filtered HU is that
of cancellous bone rather than soft tissue, joined to the vertebra.  The canal and the
transverse foramina are no part of the coarse bone, so they stay empty.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["fill_body_marrow"]

#: Smallest median-filtered HU of marrow taken back (muscle ~50 HU, marrow of a normal
#: body 150-300 HU; on lidc0314 130 left 17 % of T1's body interior unlabelled, 100 12 %).
MARROW_HU = 100.0
#: Half width (mm) of the median filter applied to the CT before comparing with
#: :data:`MARROW_HU` (noise of thin slices; a median does not spread the cortex outward).
MEDIAN_MM = 1.0
#: Marrow taken back must lie this deep (mm) inside the vertebra: candidates touching
#: neither the vertebra nor other candidates are peeled this far (the partial-volume rim
#: just outside the cortex is as bright as marrow).
PEEL_MM = 1.5
#: Depth (working voxels) inside the coarse outline from which marrow is taken back.
DEPTH_WORK_VOX = 1.0
#: Radius (mm) of a ball that fits in a (coarse) vertebral body but not in a pedicle, an
#: arch or a process: marrow is taken back in the bodies only (the opening of the coarse
#: label by this ball), the pedicles keep their measured outline.
BODY_MM = 7.0


def _ball(radius_mm: float, spacing_mm) -> np.ndarray:
    r = np.maximum(1, np.floor(radius_mm / np.asarray(spacing_mm, float) + 1e-6)).astype(int)
    g = np.ogrid[tuple(slice(-n, n + 1) for n in r)]
    return sum((gi * s) ** 2 for gi, s in zip(g, spacing_mm)) <= radius_mm ** 2 + 1e-6


def fill_body_marrow(hu: np.ndarray, labels: np.ndarray, coarse: np.ndarray, *, spacing_mm,
                     work_spacing_mm, other: int = 100) -> np.ndarray:
    """Give each vertebra the marrow inside its coarse label.

    Parameters
    ----------
    hu : (I, J, K) array
        The CT (HU).
    labels : (I, J, K) uint8
        Refined vertebra labels on the CT grid (VerSe ids, 0 background).
    coarse : (I, J, K) uint8
        Work-grid labels mapped onto the CT grid (VerSe ids, ``other`` for other bone).
    spacing_mm : (3,) array_like
        CT voxel size.
    work_spacing_mm : float or (3,) array_like
        Voxel size of the grid ``coarse`` was made on.

    Returns
    -------
    (I, J, K) uint8
        A new label array; only unlabelled voxels change.
    """
    sp = np.asarray(spacing_mm, float)
    wsp = float(np.max(np.broadcast_to(np.asarray(work_spacing_mm, float), (3,))))
    out = np.array(labels, copy=True)
    foot = _ball(DEPTH_WORK_VOX * wsp, sp)
    pad = np.array(foot.shape) // 2 + 2
    size = tuple(int(2 * max(0, round(MEDIAN_MM / s)) + 1) for s in sp)
    peel = max(1, int(round(PEEL_MM / float(np.min(sp)))))
    cross = ndi.generate_binary_structure(3, 1)
    for m, box in enumerate(ndi.find_objects(coarse), start=1):
        if box is None or m == other or m >= other:
            continue
        box = tuple(slice(max(0, b.start - p), min(n, b.stop + p)) for b, p, n in zip(box, pad, coarse.shape))
        cm = coarse[box] == m
        if not (out[box] == m).any():
            continue
        core = ndi.binary_erosion(cm, structure=foot)
        sub = out[box]
        thick = ndi.distance_transform_edt(cm, sampling=sp) > BODY_MM
        if not thick.any():
            continue
        body = ndi.distance_transform_edt(~thick, sampling=sp) <= BODY_MM
        cand = core & body & (sub == 0)
        smooth = ndi.median_filter(np.asarray(hu[box], np.float32), size=size)
        cand &= smooth > MARROW_HU
        # peel from the outside: what is neither the vertebra nor a candidate
        outside = ~(cand | (sub == m))
        cand &= ~ndi.binary_dilation(outside, structure=cross, iterations=peel)
        # only marrow joined to the vertebra (through itself or the vertebra's voxels)
        grown = cand | (sub == m)
        comp, _ = ndi.label(grown)
        keep = np.unique(comp[sub == m])
        keep = keep[keep > 0]
        cand &= np.isin(comp, keep)
        sub[cand] = m
    return out
