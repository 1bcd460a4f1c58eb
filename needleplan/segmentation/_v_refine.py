"""Refine work-grid vertebra labels on the CT's own grid.

The instance labelling (:mod:`._v_label`) runs on a 1.5-2 mm grid, so its outlines are
about one working voxel too wide once mapped back.  Here each label is re-drawn at the
CT's resolution: the bone of the original CT (unsmoothed, above a bone threshold
set from the scan's own cortex brightness and voxel size) takes the coarse label found
within one working voxel, the deep interior of each coarse label is kept, and the marrow
inside a vertebra (which may be as dark as soft tissue) is filled slice by slice (three
orientations) where the coarse label says "vertebra".  Voxels the coarse labelling
called "other bone" (ribs, ilia) keep that role and are dropped at the end; bone left
unlabelled right next to a vertebra (an endplate layer) joins it.  Then each
vertebra's own holes in sagittal and coronal slices are filled (dark marrow of the body and
the spinous process; the canal and the foramina are no such holes).  Small axial holes
open into soft tissue above and below are canals through the bone (the transverse foramina
with the vertebral arteries, :func:`bony_channels`) and stay empty.  Where two vertebrae
touch bone to bone (facet joints) their boundary is re-drawn along the bright ridge of the
joint's two cortical plates (:func:`split_contacts`).  Then each outline is smoothed at
the voxel scale (:func:`smooth_labels`), which removes the voxel-by-voxel noise of the
threshold on thick or noisy slices, and the partial-volume rim that bright cortex lifts
above the threshold is trimmed where the voxel lies short of half-way between the soft
tissue outside and the bone inside (:func:`._v_edge.trim_rim`).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from needleplan.io.volume import Volume
from needleplan.segmentation._v_edge import edge_fraction, trim_rim

__all__ = ["OTHER", "refine_labels", "bone_threshold", "fill_label_holes", "smooth_labels", "bony_channels",
           "split_contacts"]

#: Largest connected piece (ml) :func:`split_contacts` may move from one label to another.
CONTACT_MAX_MOVE_ML = 0.5
#: Label used on the CT grid for "bone that is no vertebra" during refinement.
OTHER = 100
#: Bounds of the adaptive cortex threshold (HU).
MIN_BONE_HU, MAX_BONE_HU = 100.0, 330.0
#: Upper bound of the threshold against voxel size (mm -> HU), interpolated in log size:
#: thin cortex blurs to lower HU in thick voxels (measured optima: 1 mm phantoms ~330,
#: 1.5 mm tptbox ~180, 3 mm ts-abdomen ~110).  On the 1 mm lidc chest CT a cap of 400
#: instead of 330 took 20 % of the labelled volume away (the marrow's rim opens and is no
#: longer filled); the partial-volume rim a low cap admits is trimmed at the end instead
#: (:func:`._v_edge.trim_rim`; with it 260 and 400 both did worse than 330 on the phantoms).
CAP_TABLE = ((1.0, 1.5, 3.0), (MAX_BONE_HU, 180.0, 110.0))
#: Coarse-label voxels deeper than this many working voxels are kept whatever their HU
#: (2.0 beat 1.5 and 3.0 on the phantoms; 3.0 cut into tptbox and ts-abdomen).
INNER = 2.0
#: Gaussian smoothing of the CT before thresholding (mm).  Smoothing widened the outline
#: by the blur and cost 0.5-5 Dice points (phantoms, tptbox), so it is off by default.
SMOOTH_MM = 0.0
#: An axial hole is marrow (filled) when the coarse labels cover this fraction of it
#: (the canal is a hole whose rim the coarse labels cover, not its lumen).
HOLE_COVER = 0.5
#: Axial holes up to this area (mm^2) that open into soft tissue both above and below are
#: canals through the bone (the transverse foramina of C1-C6 with the vertebral artery,
#: 230-400 HU with contrast, 4-6 mm wide), not marrow, and stay empty.
CHANNEL_MAX_MM2 = 60.0
#: ... and at least this area (mm^2, ~3 mm wide): smaller holes are gaps between noisy
#: bone voxels.
CHANNEL_MIN_MM2 = 7.0
#: Where two vertebrae touch bone to bone (facet joints, a disc slab placed a voxel off),
#: the boundary is re-drawn along the brightest ridge between them (the two cortical
#: plates of the joint) within this distance (mm) of the contact, against voxel size
#: (interpolated in log size): the ridge is resolved in 1-1.5 mm voxels (+0.01-0.03 Dice
#: on the phantoms' facets and tptbox), blurred into the joint at 3 mm (only the contact
#: voxels themselves are re-decided there; a 3-4 mm band cost ts-abdomen up to 0.005).
CONTACT_BAND_TABLE = ((1.5, 3.0), (6.0, 0.0))
#: Pieces of a label smaller than this fraction of its largest piece are dropped (rib
#: stubs cut off at the costovertebral joints, specks).
SPECK = 0.02
#: Gaussian smoothing of each label's indicator (in voxels, geometric-mean voxel size)
#: before re-thresholding at one half: 0.75 gained 1-4 Dice points on the 1.5 and 3 mm real
#: scans and was neutral (within 0.001) on the 1 mm phantoms; 1.0 began to erode thin
#: processes.
LABEL_SMOOTH_VOX = 0.75
#: Steps (CT voxels) by which each vertebra grows into unlabelled bone it touches
#: (1: +0.005 Dice on ts-abdomen T12 and tptbox L4, neutral on the phantoms).
GROW_STEPS = 1


def bone_threshold(hu: np.ndarray, vert: np.ndarray, spacing_mm) -> float:
    """Bone threshold (HU) for the outline on the CT grid.

    Half-way between soft tissue (~40 HU) and the scan's cortex (95th percentile of HU over
    the coarse vertebra voxels), but at most :data:`CAP_TABLE` at the voxel size: thin
    cortex blurs to lower values in thick voxels, and reference outlines (TotalSegmentator,
    VerSe) include the partial-volume rim there.
    """
    vox = float(np.prod(np.asarray(spacing_mm, float)) ** (1.0 / 3.0))
    cap = float(np.interp(np.log(max(vox, 1.0)), np.log(CAP_TABLE[0]), CAP_TABLE[1]))
    vals = hu[vert]
    if vals.size < 100:
        return float(np.clip(MIN_BONE_HU, 0, cap))
    cortex = float(np.percentile(vals, 95))
    return float(np.clip(0.5 * (cortex + 40.0), MIN_BONE_HU, cap))


def _ball(radius_mm: float, spacing_mm) -> np.ndarray:
    """Ellipsoidal footprint of ``radius_mm`` on a grid of ``spacing_mm`` (at least 3 voxels)."""
    r = np.maximum(1, np.floor(radius_mm / np.asarray(spacing_mm, float) + 1e-6)).astype(int)
    g = np.ogrid[tuple(slice(-n, n + 1) for n in r)]
    d2 = sum((gi * s) ** 2 for gi, s in zip(g, spacing_mm))
    out = d2 <= max(radius_mm, float(np.min(spacing_mm))) ** 2 + 1e-6
    return out


def _slice_holes(fore: np.ndarray, axis: int) -> np.ndarray:
    """2-D holes of ``fore`` in every slice normal to ``axis`` (bool, same shape)."""
    st = ndi.generate_binary_structure(3, 1)
    st[tuple(slice(None) if a != axis else [0, 2] for a in range(3))] = False
    return ndi.binary_fill_holes(fore, structure=st) & ~fore


def bony_channels(labels: np.ndarray, bone: np.ndarray, spacing_mm, *, axis: int,
                  max_area_mm2: float = CHANNEL_MAX_MM2, min_area_mm2: float = CHANNEL_MIN_MM2) -> np.ndarray:
    """Canals through the bone: small axial holes of ``labels`` that open into non-bone,
    non-enclosed tissue both above and below (bool mask of their voxels).

    Marrow is capped by cortex (an endplate, the roof of a pedicle); a transverse foramen
    is a tube the vertebral artery runs through, open at both ends.  ``axis`` is the
    array axis nearest to the patient's S axis.
    """
    fore = labels > 0
    holes = _slice_holes(fore, axis)
    if not holes.any():
        return holes
    # small holes only (the canal and the body marrow are large)
    st2 = ndi.generate_binary_structure(3, 1)
    st2[tuple(slice(None) if a != axis else [0, 2] for a in range(3))] = False
    comp2, n2 = ndi.label(holes, structure=st2)
    area = np.bincount(comp2.ravel())[1:] * float(np.prod(np.delete(np.asarray(spacing_mm, float), axis)))
    small = np.r_[False, (area <= max_area_mm2) & (area >= min_area_mm2)][comp2]
    del comp2
    if not small.any():
        return small
    outside = ~bone & ~fore & ~holes
    comp, n = ndi.label(small)
    up = np.zeros_like(small)
    down = np.zeros_like(small)
    sl_a = [slice(None)] * 3
    sl_b = [slice(None)] * 3
    sl_a[axis], sl_b[axis] = slice(0, -1), slice(1, None)
    up[tuple(sl_a)] = outside[tuple(sl_b)]  # the voxel above is open soft tissue
    down[tuple(sl_b)] = outside[tuple(sl_a)]
    opens_up = np.bincount(comp[small & up], minlength=n + 1) > 0
    opens_down = np.bincount(comp[small & down], minlength=n + 1) > 0
    through = opens_up & opens_down
    through[0] = False
    return through[comp]


def _contacts(lab: np.ndarray) -> np.ndarray:
    """Labelled voxels with a face-neighbour of another label (bool)."""
    out = np.zeros(lab.shape, bool)
    for ax in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[ax], hi[ax] = slice(0, -1), slice(1, None)
        a, b = lab[tuple(lo)], lab[tuple(hi)]
        diff = (a != b) & (a > 0) & (b > 0)
        out[tuple(lo)] |= diff
        out[tuple(hi)] |= diff
    return out


def split_contacts(labels: np.ndarray, hu: np.ndarray, spacing_mm, *, band_mm: float,
                   max_move_ml: float = CONTACT_MAX_MOVE_ML) -> np.ndarray:
    """Re-draw the boundary where two labels touch along the brightest ridge between them.

    Two vertebrae touching bone to bone meet at a joint: two cortical plates, brighter than
    the cancellous bone behind them.  Every labelled voxel within ``band_mm`` of a contact
    (a voxel with a face-neighbour of another label) is re-assigned by a marker watershed
    on HU (SimpleITK), flooded from the labels beyond the band; the fronts meet on the
    ridge.  A re-assigned piece that does not reach its new label's voxels outside the band
    through bone keeps its old label; so does a moved piece larger than ``max_move_ml``.
    Each cluster of contacts is solved in its own box.  Returns a new array.
    """
    lab = np.array(labels, copy=True)
    contact = _contacts(lab)
    if not contact.any():
        return lab
    sp = np.asarray(spacing_mm, float)
    r = np.ceil(band_mm / sp).astype(int) + 1
    # clusters of contacts: connected blocks of r voxels
    blk = tuple(int(x) for x in r)
    shp = tuple(-(-n // k) for n, k in zip(lab.shape, blk))
    padded = np.zeros(tuple(n * k for n, k in zip(shp, blk)), bool)
    padded[tuple(slice(0, n) for n in lab.shape)] = contact
    coarse = padded.reshape(shp[0], blk[0], shp[1], blk[1], shp[2], blk[2]).any(axis=(1, 3, 5))
    cl, _ = ndi.label(coarse, structure=np.ones((3, 3, 3), bool))
    for sl in ndi.find_objects(cl):
        box = tuple(slice(max(0, (s.start - 1) * k), min(n, (s.stop + 1) * k))
                    for s, k, n in zip(sl, blk, lab.shape))
        sub = lab[box]
        f = sub > 0
        cbox = contact[box]
        band = f & (ndi.distance_transform_edt(~cbox, sampling=sp) <= band_mm)
        markers = np.where(f & ~band, sub, 0).astype(np.uint8)
        if not markers.any():
            continue
        elev = np.where(f, np.asarray(hu[box], np.float32), np.float32(1e4))
        # SimpleITK sees the arrays as (z, y, x): the voxel order is kept both ways
        ws = sitk.GetArrayFromImage(sitk.MorphologicalWatershedFromMarkers(
            sitk.GetImageFromArray(elev), sitk.GetImageFromArray(markers),
            markWatershedLine=False, fullyConnected=False))
        new = np.where(band, ws, sub).astype(np.uint8)
        # pieces cut off from their new label's voxels beyond the band revert
        for m in np.unique(new[band & (new != sub)]):
            comp, n = ndi.label(new == m)
            if n <= 1:
                continue
            anchored = np.unique(comp[(markers == m) & (comp > 0)])
            stray = (comp > 0) & ~np.isin(comp, anchored)
            new[stray] = sub[stray]
        # a joint moves a thin layer; a whole process lying inside the band (a thin
        # spinous or transverse process touching its neighbour's) is not re-decided here
        moved, n = ndi.label(new != sub)
        if n:
            size_ml = np.bincount(moved.ravel())[1:] * float(np.prod(sp)) / 1000.0
            big = np.r_[False, size_ml > max_move_ml][moved]
            new[big] = sub[big]
        sub[band] = new[band]
    return lab


def fill_label_holes(labels: np.ndarray, axes) -> np.ndarray:
    """Fill each label's 2-D holes in the slices normal to each of ``axes``.

    A hole is background (0) enclosed by one label within a slice; voxels of other labels
    are left alone.  Returns a new array.
    """
    out = np.array(labels, copy=True)
    for m, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        for ax in axes:
            mask = out[sl] == m
            # in-plane connectivity only; a zero slab on both ends keeps slices apart
            st = ndi.generate_binary_structure(3, 1)
            st[tuple(slice(None) if a != ax else [0, 2] for a in range(3))] = False
            pad = [(0, 0)] * 3
            pad[ax] = (1, 1)
            filled = ndi.binary_fill_holes(np.pad(mask, pad), structure=st)
            filled = filled[tuple(slice(1, -1) if a == ax else slice(None) for a in range(3))]
            sub = out[sl]
            sub[filled & (sub == 0)] = m
    return out


def smooth_labels(labels: np.ndarray, sigma_vox) -> np.ndarray:
    """Smooth each label's outline: Gaussian-blur its indicator (``sigma_vox`` per axis, in
    voxels) and keep the voxels where it exceeds one half and every other label's.
    Returns a new array."""
    sig = np.broadcast_to(np.asarray(sigma_vox, float), (3,))
    out = np.zeros_like(labels)
    best = np.full(labels.shape, 0.5, np.float32)
    margin = np.ceil(3 * sig).astype(int) + 1
    for m, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        box = tuple(slice(max(0, s.start - g), min(n, s.stop + g)) for s, g, n in zip(sl, margin, labels.shape))
        blur = ndi.gaussian_filter((labels[box] == m).astype(np.float32), sig)
        win = blur > best[box]
        best[box][win] = blur[win]
        out[box][win] = m
    return out


#: Re-draw the coarse boundary between vertebrae and other bone (ribs) on the CT grid
#: before the outline (:mod:`._v_ribs`); with :data:`._v_label.HEAD_CUT` (without it, lidc0314's
#: T3 body interior was left 0.77 labelled).
RIB_SPLIT = True


def _split_ribs(hu: np.ndarray, c: np.ndarray, sp: np.ndarray, wsp: float, axial: int):
    """Coarse labels with the rib/vertebra contacts re-decided (:func:`._v_ribs.split_ribs`),
    and their vertebra mask."""
    from needleplan.segmentation._v_ribs import split_ribs  # imports split_contacts from here

    c = split_ribs(hu, c, sp, work_spacing_mm=wsp, other=OTHER, axis=axial)
    return c, (c > 0) & (c != OTHER)


def refine_labels(volume: Volume, coarse: np.ndarray, *, work_spacing_mm, reach_mm: float | None = None,
                  bone_hu: float | None = None) -> np.ndarray:
    """Vertebra labels on the CT grid following the CT's own bone boundary.

    Parameters
    ----------
    volume : Volume
        The CT (HU).
    coarse : (I, J, K) uint8
        Work-grid labels mapped onto the CT grid (nearest neighbour): VerSe ids, :data:`OTHER`
        for other bone, 0 background.
    work_spacing_mm : float or (3,) array_like
        Voxel size of the grid ``coarse`` was made on.
    reach_mm : float, optional
        How far outside the coarse outline bone may still be claimed (default: one
        working voxel).
    bone_hu : float, optional
        Bone threshold; default :func:`bone_threshold`.

    Returns
    -------
    (I, J, K) uint8
        VerSe ids, 0 elsewhere (other bone dropped).
    """
    sp = np.asarray(volume.spacing_mm, float)
    wsp = float(np.max(np.broadcast_to(np.asarray(work_spacing_mm, float), (3,))))
    if reach_mm is None:
        reach_mm = wsp
    vert = (coarse > 0) & (coarse != OTHER)
    out = np.zeros(coarse.shape, np.uint8)
    if not vert.any():
        return out
    # crop: the vertebrae and a margin
    pad = np.ceil((reach_mm + 2.0) / sp).astype(int) + 1
    idx = [np.flatnonzero(vert.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    box = tuple(slice(max(0, int(i[0]) - p), min(n, int(i[-1]) + p + 1))
                for i, p, n in zip(idx, pad, coarse.shape))
    c = np.asarray(coarse[box])
    v = vert[box]
    hu = np.asarray(volume.voxels[box], dtype=np.float32)
    sig = SMOOTH_MM / sp
    sig = np.where(sig >= 0.3, sig, 0.0)
    if sig.any():
        hu = ndi.gaussian_filter(hu, sig)
    if RIB_SPLIT:
        c, v = _split_ribs(hu, c, sp, wsp, int(np.argmax(np.abs(np.asarray(volume.direction, float))[2])))
    thr = bone_threshold(hu, v, sp) if bone_hu is None else float(bone_hu)
    bone = hu > thr
    # the coarse label within ``reach_mm``; where two
    # labels compete the watershed's own boundary (inside the coarse labels) decides
    near = np.where(c > 0, c, ndi.maximum_filter(c, footprint=_ball(reach_mm, sp)))
    # sure interior: deeper than INNER working voxels inside the coarse vertebra
    deep = np.maximum(1, np.round(INNER * wsp / sp)).astype(int)
    inner = ndi.minimum_filter(v.view(np.uint8), size=tuple(2 * deep + 1)).astype(bool)
    # canals through the bone (transverse foramina) are neither interior nor marrow
    d = np.abs(np.asarray(volume.direction, float))
    axial = int(np.argmax(d[2]))
    channel = bony_channels(np.where(bone & (near != OTHER), near, 0), bone, sp, axis=axial)
    inner &= ~channel
    lab = np.where(bone | inner, near, 0).astype(np.uint8)
    del near
    lab[lab == OTHER] = 0
    if GROW_STEPS > 0:
        # bone left unlabelled next to a vertebra (an endplate layer cleared with a disc slab
        # placed a voxel off) joins the vertebra it touches, never other bone; one step stays
        # within a CT voxel of the claimed reach
        free = bone & (lab == 0) & (c != OTHER)
        cross = ndi.generate_binary_structure(3, 1)
        for _ in range(GROW_STEPS):
            nb = ndi.maximum_filter(lab, footprint=cross)
            take = free & (nb > 0)
            if not take.any():
                break
            lab[take] = nb[take]
            free &= ~take
    # marrow: fill holes slice by slice (all three orientations) where the coarse labels
    # say "vertebra"; the canal is no hole of the coarse labels, so it stays empty
    for ax in range(3):
        fore = lab > 0
        for k in range(fore.shape[ax]):
            sl = [slice(None)] * 3
            sl[ax] = k
            sl = tuple(sl)
            f = fore[sl]
            if not f.any():
                continue
            holes = ndi.binary_fill_holes(f) & ~f
            if ax == 2 and holes.any():
                # axial: only holes the coarse labels mostly cover (marrow); the canal,
                # mostly outside them, keeps its rim empty too
                hl, nh = ndi.label(holes)
                frac = ndi.mean(v[sl], hl, np.arange(1, nh + 1))
                holes = np.r_[False, np.asarray(frac) >= HOLE_COVER][hl]
            holes &= v[sl] & ~channel[sl]
            if holes.any():
                lab[sl][holes] = c[sl][holes]
    # drop specks not joined to their vertebra's main piece
    for m, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        mask = lab[sl] == m
        comp, n = ndi.label(mask)
        if n > 1:
            sizes = np.bincount(comp.ravel())[1:]
            small = sizes < max(SPECK * sizes.max(), 20.0 / np.prod(sp))
            if small.any():
                drop = np.r_[False, small][comp]
                lab[sl][drop] = 0
    # each vertebra's own holes in sagittal and coronal slices (normal to the two array
    # axes other than the one nearest to the patient's S axis): dark marrow in the body and
    # the processes
    lab = fill_label_holes(lab, sorted((a for a in range(3) if a != axial), key=lambda a: d[0, a] < d[1, a]))
    vox = float(np.prod(sp)) ** (1.0 / 3.0)
    band = float(np.interp(np.log(max(vox, 1e-3)), np.log(CONTACT_BAND_TABLE[0]), CONTACT_BAND_TABLE[1]))
    lab = split_contacts(lab, hu, sp, band_mm=band)
    if LABEL_SMOOTH_VOX > 0:
        lab = smooth_labels(lab, LABEL_SMOOTH_VOX * vox / sp)
    # the partial-volume rim outside bright cortex (and around the contrast-filled artery
    # in a transverse foramen) is above the threshold but beyond the edge
    lab = trim_rim(lab, hu, fraction=edge_fraction(sp), open_mask=channel)
    out[box] = lab
    return out
