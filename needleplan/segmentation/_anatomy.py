"""From a vertebra label map to an :class:`~needleplan.segmentation.model.Anatomy`.

Each vertebra is analysed in a cropped box on a local grid aligned with its own axes:
superior along the spine (from the neighbouring vertebrae), anterior from the canal
centre toward the body centre, left completing the right-handed LPS frame.  Nothing
assumes that the array axes are patient axes.

Robustness to imperfect labels: a ring left open by the label is closed with CT bone
next to it, or found in the bone of all levels together (a classical label map may give
a vertebra's arch or pedicles a neighbour's label; its pedicles are then taken from all
levels at the height of its body, and its body heights are not reported).  The canal is
the hole in the bone of all levels.  A map of vertebral bodies only is reported as such.
On coarse voxels (> 1.6 mm) pedicles are measured by coronal cuts with CT bone edges
(:mod:`._pedicle_coarse`) and their axes mirrored about the midsagittal plane; a
transverse process merged into the cuts (L5) is trimmed off, and an axis the cuts still
read diverging is aimed at the anterior body wall in the midline (flagged).  On fine
voxels a pedicle whose general search fails (L5's wide, oblique ones) is refined from a
line aimed at the body centre (flagged) unless that line turns far from the coronal cuts'
axis or reads far wider (a near-sagittal thoracic pedicle crossed into the body or a rib
head); a label section far wider or taller than the cuts is rejected for them, and cuts
whose axis diverges have it aimed at the anterior body wall (flagged); C2-C7 pedicles are found between the canal and
the transverse foramen (:mod:`._pedicle_cervical`).
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
from scipy import ndimage as ndi

from needleplan.errors import InputError, SegmentationError
from needleplan.segmentation._canal import CanalSection, canal_on_ct, foramen_section
from needleplan.segmentation._frame import LocalGrid, perpendicular_part, spine_axes, unit
from needleplan.segmentation._heights import (
    UNRELIABLE_FLAG,
    body_heights,
    genant_grade,
    height_reliability,
    posterior_wall_intact,
)
from needleplan.segmentation._landmarks import _Sampler, ap_walls, endplate_planes, pedicle_landmarks
from needleplan.segmentation._pedicle_cervical import (
    CERVICAL_WITH_FORAMINA,
    cervical_pedicle_start,
    narrowest_ray,
    tube_fit,
)
from needleplan.segmentation._pedicle_coarse import bone_level, coarse_pedicle
from needleplan.segmentation._parts import BODY_WALL_MM, split_parts
from needleplan.segmentation.model import (
    PART_BODY,
    PART_PEDICLE_LEFT,
    PART_PEDICLE_RIGHT,
    VERSE_NAMES,
    Anatomy,
    PedicleLandmarks,
    VertebraAnatomy,
    level_name,
)

__all__ = ["anatomy_from_labels"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
SACRUM = 26
#: VerSe label of C1 (the atlas: lateral masses and arches, no body, no pedicles).
ATLAS = 1
#: Voxels coarser than this (largest spacing, mm) have pedicles measured by coronal cuts.
COARSE_SPACING_MM = 1.6
#: Two pedicle axes within 8 degrees are taken to be the same pedicle's.
COS_AGREE = float(np.cos(np.radians(8.0)))
#: A label section this much wider (mm) than the coronal-cut width has something merged in.
WIDER_MM = 3.0
#: ... or this much taller (mm) than a cut that is itself pedicle-shaped (at least
#: :data:`CUT_ASPECT` x as tall as wide): a facet or rib head above or below is in it.
TALLER_MM = 6.0
CUT_ASPECT = 1.5
#: A pedicle axis turning outward by more than this (sin of 10 deg) is not a pedicle's.
SIN_DIVERGE = float(np.sin(np.radians(10.0)))
#: ... and by more than this (sin of 25 deg) the measurement is not trusted at all.
SIN_DIVERGE_MAX = float(np.sin(np.radians(25.0)))
#: On fine voxels the axis is fitted to the perpendicular sections up to this x the smallest
#: (a process joining a pedicle's end, T11-T12's, tilted their axes 3 deg with 1.45).
FINE_PERP_STRETCH = 1.25
#: The posterior wall cortex is only judged on voxels up to this size (mm).
WALL_MAX_SPACING_MM = 2.0


def anatomy_from_labels(volume, labels, *, method: str = "imported", confidence: dict | None = None,
                        progress: Progress | None = None) -> Anatomy:
    """Derive canal, parts and landmarks from a VerSe vertebra label map.

    Parameters
    ----------
    volume : Volume
        The CT (HU) the labels belong to.
    labels : (I, J, K) array_like of int
        VerSe vertebra numbers on the CT grid (0 background); other values are ignored.
    method : str
        Recorded in :attr:`Anatomy.method`.
    confidence : dict, optional
        ``{label: 0..1}`` confidence in each level name (default 1).
    progress : callable, optional
        ``progress(done, total, what)`` as in :func:`needleplan.io.load_ct`.

    Returns
    -------
    Anatomy

    Raises
    ------
    InputError
        The label map is not on the CT grid.
    SegmentationError
        No vertebra label in the map.
    """
    labels = np.asarray(labels)
    if labels.shape != tuple(volume.shape):
        raise InputError(f"label map shape {labels.shape} does not match the CT grid {tuple(volume.shape)}; "
                         "resample it onto the CT first (import_labels does)")
    lab8 = np.where(np.isin(labels, list(VERSE_NAMES)), labels, 0).astype(np.uint8)
    present = [int(v) for v in np.unique(lab8) if v]
    if not present:
        raise SegmentationError("the label map holds no vertebra (VerSe labels 1-26, 28)")
    aff = np.asarray(volume.ijk_to_lps, float)
    boxes = ndi.find_objects(lab8)
    centroids = {}
    for lab in present:
        box = boxes[lab - 1]
        c = np.argwhere(lab8[box] == lab).mean(axis=0) + [s.start for s in box]
        centroids[lab] = c @ aff[:3, :3].T + aff[:3, 3]
    axes = _axes_from_whole_vertebrae(centroids, {lab: boxes[lab - 1] for lab in present}, lab8.shape)
    spacing = volume.spacing_mm
    step = float(np.clip(spacing.min(), 0.6, 1.0))
    parts = np.zeros(lab8.shape, dtype=np.uint8)
    vertebrae: dict[int, VertebraAnatomy] = {}
    pieces = []
    messages: list[str] = []
    conf = confidence or {}
    for n, lab in enumerate(present):
        if progress:
            progress(n, len(present) + 1, f"landmarks {level_name(lab)}")
        try:
            va, piece = _vertebra(volume, lab8, lab, boxes[lab - 1], axes[lab], step, parts)
        except Exception as exc:  # one odd vertebra must not sink the rest
            log.debug("landmarks of %s failed", level_name(lab), exc_info=True)
            va = VertebraAnatomy(label=lab, body_center_lps=centroids[lab], ap_axis_lps=np.array([0.0, -1.0, 0.0]),
                                 left_lps=np.array([1.0, 0.0, 0.0]),
                                 flags=[f"landmarks could not be measured ({type(exc).__name__}: {exc})"])
            parts[(lab8 == lab) & (parts == 0)] = PART_BODY
            piece = None
        va.confidence = float(conf.get(lab, 1.0))
        vertebrae[lab] = va
        if piece is not None:
            pieces.append(piece)
    _grade_against_neighbours(vertebrae)
    body_only = _body_only_levels(lab8, aff, vertebrae, boxes)
    if body_only:
        messages.append("the labels look like vertebral bodies only (" + ", ".join(body_only)
                        + " reach no further back than a body): pedicles and canal need whole-vertebra "
                        "labels, e.g. TotalSegmentator's 'total' task (vertebrae_*), not its body/VerSe-refined output")
        for lab, va in vertebrae.items():
            if va.name in body_only:
                va.flags.append("label holds the vertebral body only: no pedicles or arch in it")
    if progress:
        progress(len(present), len(present) + 1, "spinal canal")
    canal = canal_on_ct(lab8.shape, aff, lab8, pieces)
    no_canal = [level_name(l) for l, v in vertebrae.items() if "no closed vertebral foramen found" in v.flags]
    if no_canal:
        messages.append("no vertebral foramen found at " + ", ".join(no_canal) + ": canal and pedicles missing there")
    if progress:
        progress(len(present) + 1, len(present) + 1, "anatomy done")
    nc = [float(conf.get(l, 1.0)) for l in present]
    return Anatomy(labels=lab8, parts=parts, canal=canal, ijk_to_lps=aff, vertebrae=vertebrae, method=method,
                   naming_confidence=min(nc) if nc else 1.0, messages=messages)


def _axes_from_whole_vertebrae(centroids: dict, boxes: dict, shape) -> dict:
    """Local spine axes from the centroids of the vertebrae wholly in view.

    The centroid of a vertebra cut by the edge of the scan is not its centre, and the
    line from it to the next level can tilt by tens of degrees; such a vertebra takes the
    axis of its nearest whole neighbour instead.
    """
    whole = {lab: c for lab, c in centroids.items()
             if not any(b.start == 0 or b.stop == n for b, n in zip(boxes[lab], shape))}
    axes = spine_axes(centroids)
    if len(whole) < 2:
        return axes
    good = spine_axes(whole)
    key = lambda lab: 19.5 if lab == 28 else lab  # noqa: E731
    for lab in centroids:
        if lab in good:
            axes[lab] = good[lab]
        else:
            axes[lab] = good[min(good, key=lambda w: abs(key(w) - key(lab)))]
    return axes


#: A whole vertebra (body, canal, arch) is deeper than this along its AP axis (mm).
WHOLE_VERTEBRA_DEPTH_MM = 52.0


def _body_only_levels(lab8, aff, vertebrae: dict, boxes) -> list[str]:
    """Names of the levels whose label is only a body, when most levels are like that.

    A body-only label (TotalSegmentator's body masks, some refined VerSe exports) is at
    most ~50 mm deep along the AP axis and no ring is found in it; a whole vertebra with
    its arch is 60-100 mm deep.  Reported only when at least half the levels look so.
    """
    cand, n = [], 0
    for lab, va in vertebrae.items():
        if lab in (SACRUM, ATLAS):  # the sacrum, and C1 (a ring without a body)
            continue
        n += 1
        box = boxes[lab - 1]
        pts = (np.argwhere(lab8[box] == lab) + [b.start for b in box]) @ aff[:3, :3].T
        d = pts @ np.asarray(va.ap_axis_lps, float)
        depth = float(np.percentile(d, 99) - np.percentile(d, 1))
        if depth < WHOLE_VERTEBRA_DEPTH_MM and not va.pedicles:
            cand.append(va.name)
    return cand if n and len(cand) >= 0.5 * n else []


def _symmetric_axes(va: VertebraAnatomy, *, medial: bool = True) -> None:
    """Mirror the two pedicle axes about the midsagittal plane: mean sagittal tilt and,
    when ``medial``, mean medial angle.  The pedicles of one vertebra are near mirror
    images in its own frame; the tilt of a tall, short isthmus is poorly defined by its
    sections (a few degrees of noise), and on coarse voxels so is the medial angle."""
    left, ant = unit(va.left_lps), unit(va.ap_axis_lps)
    up = np.cross(ant, left)
    med, tilt = [], []
    for p in va.pedicles.values():
        a = p.axis_lps
        med.append(np.arctan2(abs(a @ left), a @ ant))
        tilt.append(np.arctan2(a @ up, a @ ant))
    m, t = float(np.mean(med)), float(np.mean(tilt))
    for (side, p), own in zip(va.pedicles.items(), med):
        inward = -1.0 if side == "left" else 1.0
        p.axis_lps = unit(ant + inward * np.tan(m if medial else own) * left + np.tan(t) * up)


def _outward(ped: PedicleLandmarks, left, side: str) -> float:
    """Sine of the angle by which a pedicle axis turns outward (laterally) going anterior."""
    return float(ped.axis_lps @ left) * (1.0 if side == "left" else -1.0)


def _merged_into(ped: PedicleLandmarks, cuts: PedicleLandmarks | None) -> bool:
    """Whether a pedicle's narrowest section holds more than the pedicle: far wider than
    the coronal cuts' transverse run beside the canal (a rib head, the body's corner or a
    facet merged into it; thoracic labels read 12-15 mm for 6-8), or far taller than a
    pedicle-shaped cut (a facet or rib head above or below it: 20 mm for 13)."""
    if cuts is None:
        return False
    if ped.width_mm > cuts.width_mm + WIDER_MM:
        return True
    return cuts.height_mm >= CUT_ASPECT * cuts.width_mm and ped.height_mm > cuts.height_mm + TALLER_MM


def _medial_deg(axis_lps, left, ant) -> float:
    """Signed angle (deg) of a pedicle axis from the AP axis in the axial plane (toward
    ``left`` positive)."""
    return float(np.degrees(np.arctan2(float(axis_lps @ unit(left)), float(axis_lps @ unit(ant)))))


def _cos_medial(axis_lps, left, ant) -> float:
    """Cosine of a pedicle axis's angle from the AP axis in the axial plane."""
    a, b = float(axis_lps @ unit(ant)), float(axis_lps @ unit(left))
    return abs(a) / max(np.hypot(a, b), 1e-6)


def _aimed_axis(ped: PedicleLandmarks, target_lps, left, ant, side: str) -> np.ndarray:
    """Axis from the isthmus centre toward ``target_lps`` in the vertebra's axial plane,
    keeping the measured sagittal tilt."""
    up = np.cross(unit(ant), unit(left))
    d = np.asarray(target_lps, float) - ped.isthmus_center_lps
    depth = max(float(d @ ant), 10.0)
    medial = np.arctan2(abs(float(d @ left)), depth)
    tilt = np.arctan2(ped.axis_lps @ up, ped.axis_lps @ ant)
    inward = -1.0 if side == "left" else 1.0
    return unit(ant + inward * np.tan(medial) * left + np.tan(tilt) * up)


#: A refined cervical isthmus may move this far (mm) from the canal-foramen bridge ...
CERVICAL_SHIFT_MM = 3.0
#: ... and its axis turn this far (deg) from the bridge's perpendicular (C2: see below).
CERVICAL_TURN_DEG = 15.0
#: C2's pedicle rises 20-25 deg toward the front under its superior articular facet: its
#: axis may turn this far (deg) from the bridge's perpendicular in the axial plane, and its
#: tube is fitted to the walls in front of the isthmus (behind it the pedicle runs into the
#: pars and the lateral mass), from the bridge's line refined three times.
C2_TURN_DEG = 35.0
C2_TUBE_RANGE_MM = (0.0, 8.0)


def _cervical_pedicle(lab, side, mask_local, grid, sec, ped_local, sampler, left, ant,
                      hu) -> PedicleLandmarks | None:
    """A cervical pedicle (C2-C7) between the canal and the transverse foramen: the bridge
    of bone between the two holes gives a first line; the shortest crossing of it on lines
    through the foramen's centre gives the isthmus centre and width; an elliptic tube
    fitted to the pedicle's walls around the isthmus gives the axis and the height; sections
    perpendicular to that axis check that the bridge is a pedicle.  None when the
    label closes no transverse foramen on that side or the sections wander off the bridge
    (then the general search applies)."""
    st = cervical_pedicle_start(side, mask_local, grid, sec)
    if st is None:
        return None
    p0, a0, _chord, fora = st
    ray = narrowest_ray(sampler, grid, fora, p0 - fora)
    width = None
    if ray is not None and np.linalg.norm(ray[1] - p0) <= CERVICAL_SHIFT_MM:
        width, p0 = ray[0], ray[1]
        up = grid.rot[:, 2]
        a0 = unit(np.cross(up, ray[2]))
        a0 = a0 if a0 @ ant > 0 else -a0
    # the axis: an elliptic tube fitted to the pedicle's walls around the isthmus
    opts = dict(s_range_mm=C2_TUBE_RANGE_MM, iterations=3) if lab == 2 else {}
    turn = C2_TURN_DEG if lab == 2 else CERVICAL_TURN_DEG
    tube = tube_fit(sampler, p0, a0, left if side == "left" else -left,
                    width_mm=width if width is not None else 6.0, **opts)
    tube_ok = (tube is not None and np.linalg.norm(tube[0] - p0) <= CERVICAL_SHIFT_MM
               and tube[1] @ a0 >= np.cos(np.radians(turn)))
    if lab == 2 and not tube_ok:
        return None  # the bridge's axial line is no C2 pedicle axis
    a1 = tube[1] if tube_ok else a0
    ped = pedicle_landmarks(side, ped_local, grid, sampler, left, ant, hu=hu, start=(p0, a1), reach_mm=3.0)
    if ped is None:
        return None
    if (np.linalg.norm(ped.isthmus_center_lps - p0) > CERVICAL_SHIFT_MM
            or ped.axis_lps @ a1 < np.cos(np.radians(CERVICAL_TURN_DEG))):
        return None
    if width is not None:
        ped.isthmus_center_lps, ped.width_mm = np.asarray(p0, float), width
    if tube_ok:
        # the tube's height: the perpendicular section takes in what joins the pedicle above
        # or below (C2's superior facet: +3 mm); its width stays the shortest crossing's
        # (the fit's lateral wall leans on the transverse process's root)
        ped.axis_lps, ped.height_mm = a1, float(tube[3])
    return ped


#: An isthmus refined from the aimed line may lie this far (mm) from the pedicle band ...
AIMED_SHIFT_MM = 8.0
#: ... and its axis turn this far (deg) in the axial plane from a non-diverging cut axis.
AIMED_TURN_DEG = 15.0


def _aimed_pedicle(side, ped_local, grid, sampler, left, ant, hu, body_center_lps, cuts) -> PedicleLandmarks | None:
    """A pedicle refined from the line through its band's centroid toward the body centre
    (in the axial plane); None when the refinement diverges, wanders from the band, or
    reads a section far narrower than the coronal cuts (a transverse process's)."""
    idx = np.argwhere(ped_local)
    if len(idx) < 8:
        return None
    p0 = grid.center_lps + grid.rot @ (grid.lo_mm + grid.step_mm * idx.mean(0))
    up = np.cross(unit(ant), unit(left))
    a0 = perpendicular_part(np.asarray(body_center_lps, float) - p0, up)
    if a0 @ unit(ant) < 0.5:
        return None
    ped = pedicle_landmarks(side, ped_local, grid, sampler, left, ant, hu=hu, start=(p0, a0), reach_mm=6.0)
    if ped is None or _outward(ped, left, side) > 0.0:
        return None
    if np.linalg.norm(ped.isthmus_center_lps - p0) > AIMED_SHIFT_MM:
        return None
    if cuts is not None and ped.width_mm < 0.6 * cuts.width_mm:
        return None
    if cuts is None:
        return ped
    if _outward(cuts, left, side) > SIN_DIVERGE:
        if ped.width_mm > cuts.width_mm + WIDER_MM:
            # the cuts ran into a rib head or the body's corner, and the aimed line crossed
            # the pedicle obliquely into them too (T12 at the scan's edge: 14-15 mm for 8)
            return None
    elif abs(_medial_deg(ped.axis_lps, left, ant) - _medial_deg(cuts.axis_lps, left, ant)) > AIMED_TURN_DEG:
        # the cuts beside the canal follow the pedicle (L5's too: within 13 deg): a refined
        # line far more medial crossed a near-sagittal one obliquely into the body (T11:
        # 41 deg for -9, 12.3 mm for 6.1)
        return None
    return ped


def _grade_against_neighbours(vertebrae: dict) -> None:
    """Genant grade from the height loss against the larger of the body's own tallest
    height and its neighbours' mean height (a uniformly crushed body keeps min/max near 1
    but is much lower than the levels around it); flags the loss and vertebra plana."""
    order = sorted(vertebrae, key=lambda lab: 19.5 if lab == 28 else lab)
    # C1 has no body and C2's carries the dens: the 15/50/85 % heights mean nothing there
    for lab in (ATLAS, 2):  # C1, C2
        if lab in vertebrae:
            vertebrae[lab].body_heights_mm, vertebrae[lab].height_ratio = {}, None
            vertebrae[lab].body_heights_report_mm = {}
            vertebrae[lab].genant_grade = None
    # heights flagged unreliable are neither graded nor a reference for the neighbours
    ok = [lab for lab in order
          if vertebrae[lab].body_heights_mm and min(vertebrae[lab].body_heights_mm.values()) > 0
          and not any(f.startswith(UNRELIABLE_FLAG) for f in vertebrae[lab].flags)]
    tall = {lab: max(vertebrae[lab].body_heights_mm.values()) for lab in ok}
    mean = {lab: float(np.mean(list(vertebrae[lab].body_heights_mm.values()))) for lab in ok}
    for n, lab in enumerate(order):
        va = vertebrae[lab]
        if lab not in tall:
            continue
        adjacent = [o for o in order[max(n - 1, 0):n + 2] if o != lab]
        near = [mean[o] for o in adjacent if o in mean]
        if any(f.startswith(UNRELIABLE_FLAG) for o in adjacent for f in vertebrae[o].flags):
            near = []  # next to a ragged outline the labels around may be short too: own heights only
        ref = max([tall[lab], float(np.mean(near))] if near else [tall[lab]])
        low = min(va.body_heights_mm.values())
        loss = 1.0 - low / ref
        va.genant_grade = 0 if loss < 0.20 else 1 if loss < 0.25 else 2 if loss <= 0.40 else 3
        if va.genant_grade:
            va.flags.append(f"body height loss {100 * loss:.0f}% (Genant grade {va.genant_grade})")
        if low < 0.5 * ref and (near and max(va.body_heights_mm.values()) < 0.6 * float(np.mean(near))):
            va.flags.append("vertebra plana")


def _frame_and_foramen(mf, aff, off, lps, center, sup, step):
    """Local grid, resampled mask and foramen; the AP axis from canal centre to body."""
    ant = perpendicular_part(np.array([0.0, -1.0, 0.0]), sup)
    sec: CanalSection | None = None
    for _ in range(4):
        rot = np.column_stack([np.cross(sup, ant), ant, sup])
        grid = LocalGrid.around(lps, center, rot, step_mm=step, margin_mm=3.0)
        vf = grid.sample(mf, aff, order=1, offset_ijk=off)
        vm = vf >= 0.5
        sec = foramen_section(vm, grid)
        if sec is None:
            break
        y = grid.lo_mm[1] + step * np.arange(grid.shape[1])
        body = vm & (y > sec.front_y_mm - BODY_WALL_MM)[None, :, None]
        if not body.any():
            break
        bc = grid.lo_mm + step * np.argwhere(body).mean(0)
        d = np.array([bc[0] - sec.center_xy_mm[0], bc[1] - sec.center_xy_mm[1], 0.0])
        new = perpendicular_part(rot @ unit(d), sup)
        if np.degrees(np.arccos(np.clip(new @ ant, -1, 1))) < 1.0:
            break
        ant = new
    return grid, vf, vm, sec, grid.rot[:, 1].copy()


def _with_ct_bone(hu_crop, m, lab_crop, spacing, *, reach_mm: float = 4.0, bone_hu: float = 200.0):
    """The vertebra mask plus CT bone within ``reach_mm`` of it that no other label holds."""
    it = max(1, int(round(reach_mm / float(np.min(spacing)))))
    near = ndi.binary_dilation(m, iterations=it)
    bone = ndi.gaussian_filter(hu_crop.astype(np.float32), 0.7) > bone_hu
    aug = m | (bone & near & (lab_crop == 0))
    if aug.sum() <= m.sum():
        return None
    return ndi.binary_closing(aug, iterations=1).astype(np.float32)


def _find_foramen(volume, lab8, lab, box, off, m, lps, center, sup, step):
    """The foramen of one vertebra: in its own label, then completed with CT bone, then in
    the bone of all levels.  Returns (grid, vf, vm, sec, ant, mf, union, flags, box, off):
    the last two are the crop the masks refer to (wider when all levels were used)."""
    aff = volume.ijk_to_lps
    spacing = volume.spacing_mm
    mf = m.astype(np.float32)
    flags: list[str] = []
    grid, vf, vm, sec, ant = _frame_and_foramen(mf, aff, off, lps, center, sup, step)
    if sec is None:
        # labels that miss the pedicles (an open ring): complete the ring with CT bone
        # next to the vertebra that no other vertebra claims, and try again
        aug = _with_ct_bone(volume.voxels[box], m, lab8[box], spacing)
        if aug is not None:
            got_aug = _frame_and_foramen(aug, aff, off, lps, center, sup, step)
            if got_aug[3] is not None:
                mf = aug
                grid, vf, vm, sec, ant = got_aug
                flags.append("vertebral ring completed from CT bone (the labels leave it open)")
    union = None
    if sec is None:
        # the labels may split one vertebra's ring between levels (an arch or a pedicle
        # given to a neighbour): the canal is the hole in the bone of all levels, in a box
        # grown in the axial plane (the label may hold the body only) but not along the spine
        big = _grow_box(box, aff, lab8.shape, sup, UNION_REACH_MM)
        offb = np.array([b.start for b in big])
        um = lab8[big] > 0
        pts = (np.argwhere(um) + offb) @ aff[:3, :3].T + aff[:3, 3]
        h_own = lps @ sup
        along = pts @ sup
        keep = (along >= h_own.min() - 2.0) & (along <= h_own.max() + 2.0)
        um[tuple((np.argwhere(um)[~keep]).T)] = False
        if um.any():
            uf = _with_ct_bone(volume.voxels[big], um, lab8[big], spacing)
            uf = um.astype(np.float32) if uf is None else uf
            # centred on the thickest bone (the body), not on a label that may be mostly arch
            dt = ndi.distance_transform_edt(um, sampling=spacing)
            core = np.argwhere(dt >= 0.6 * dt.max()) + offb
            center_u = (core @ aff[:3, :3].T + aff[:3, 3]).mean(axis=0) if len(core) else center
            got_u = _frame_and_foramen(uf, aff, offb, pts[keep], center_u, sup, step)
            if got_u[3] is not None:
                grid, _, vm_u, sec, ant = got_u
                box, off = big, offb
                mf = (lab8[big] == lab).astype(np.float32)
                vf = grid.sample(mf, aff, order=1, offset_ijk=off)
                vm = vf >= 0.5
                # the pedicles are measured in the labels of all levels without the CT bone
                # that closed the ring (rib heads next to a thoracic pedicle)
                um_f = um.astype(np.float32)
                union = (um_f, grid.sample(um_f, aff, order=1, offset_ijk=off) >= 0.5)
                flags.append("vertebral foramen found on the bone of all levels (the labels split this ring)")
    return grid, vf, vm, sec, ant, mf, union, flags, box, off


#: How far the box for the foramen in the bone of all levels reaches in the axial plane (mm).
UNION_REACH_MM = 30.0


def _grow_box(box, aff, shape, sup, reach_mm: float):
    """``box`` grown by ``reach_mm`` along the CT axes that lie across the spine axis."""
    cols = np.asarray(aff)[:3, :3]
    spacing = np.linalg.norm(cols, axis=0)
    across = np.abs((cols / spacing) .T @ sup) < 0.8
    grow = np.where(across, np.ceil(reach_mm / spacing), 0).astype(int)
    return tuple(slice(max(b.start - g, 0), min(b.stop + g, n)) for b, g, n in zip(box, grow, shape))


def _vertebra(volume, lab8, lab, box, sup, step, parts_out):
    aff = volume.ijk_to_lps
    spacing = volume.spacing_mm
    margin = np.ceil(6.0 / spacing).astype(int)
    box = tuple(slice(max(s.start - m, 0), min(s.stop + m, n)) for s, m, n in zip(box, margin, lab8.shape))
    off = np.array([s.start for s in box])
    m = lab8[box] == lab
    mf = m.astype(np.float32)
    ijk = np.argwhere(m) + off
    lps = ijk @ aff[:3, :3].T + aff[:3, 3]
    center = lps.mean(axis=0)
    flags: list[str] = []
    touches = bool(np.any(ijk.min(0) == 0) or np.any(ijk.max(0) == np.array(lab8.shape) - 1))
    if touches:
        flags.append("partly outside the field of view")

    sec = None
    tries = [sup]
    if sup[2] < np.cos(np.radians(10.0)):
        tries.append(np.array([0.0, 0.0, 1.0]))  # the neighbours' line may mislead (odd labels)
    for n_try, sup_try in enumerate(tries):
        grid, vf, vm, sec, ant, mf_try, union, more, box_try, off_try = _find_foramen(
            volume, lab8, lab, box, off, m, lps, center, sup_try, step)
        if sec is not None or n_try == len(tries) - 1:
            break
    if sec is not None and n_try:
        flags.append("spine axis taken as the patient's head-foot axis (the neighbours' line gave no foramen)")
    sup = sup_try
    mf = mf_try
    if box_try is not box:  # the foramen was found in a wider box: work there
        box, off = box_try, off_try
        m = lab8[box] == lab
    flags.extend(more)
    left = np.cross(sup, ant)
    if sec is None:
        flags.append("no closed vertebral foramen found")
    canal_sec = sec
    if sec is not None and union is None and lab != SACRUM:
        # the canal is the hole in the bone of all levels: a label that also holds a
        # neighbour's arch (or misses part of its own) must not shift or widen it
        vu = grid.sample((lab8[box] > 0).astype(np.float32), aff, order=1, offset_ijk=off) >= 0.5
        su = foramen_section(vu, grid)
        if su is not None and su.area_mm2 <= sec.area_mm2 * 1.05:
            canal_sec = su

    parts_local = split_parts(vm, grid, sec) if lab != SACRUM else np.where(vm, PART_BODY, 0).astype(np.uint8)
    if (parts_local > 0).any():
        idx = ndi.distance_transform_edt(parts_local == 0, return_distances=False, return_indices=True)
        filled = parts_local[tuple(idx)]
    else:
        filled = np.full(parts_local.shape, PART_BODY, np.uint8)
    got = grid.lookup(filled, ijk.astype(float), aff)
    got[got == 0] = PART_BODY
    parts_out[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = got

    body_local = parts_local == PART_BODY
    bidx = np.argwhere(body_local)
    bc_local = grid.lo_mm + step * bidx.mean(0) if len(bidx) else grid.lo_mm + step * np.argwhere(vm).mean(0)
    va = VertebraAnatomy(label=lab, body_center_lps=grid.center_lps + grid.rot @ bc_local, ap_axis_lps=ant,
                         left_lps=left, flags=flags)
    piece = None
    if sec is not None:
        zi = np.nonzero(vm.any(axis=(0, 1)))[0]
        piece = (grid, canal_sec, grid.lo_mm[2] + step * zi.min() - 3.0, grid.lo_mm[2] + step * zi.max() + 3.0)
    if lab == SACRUM:
        flags.append("sacrum: only the centre is measured")
        return va, piece
    if sec is None:
        # without the foramen nothing tells body from arch: measuring the whole label as a
        # "body" would report false collapses, so only the centre is given
        flags.append("body landmarks and heights not measured (no foramen: check the labels)")
        return va, piece

    body_ijk = ijk[got == PART_BODY]
    body_cut = len(body_ijk) == 0 or bool(np.any(body_ijk.min(0) == 0)
                                          or np.any(body_ijk.max(0) == np.array(lab8.shape) - 1))
    body_f = vf * ndi.binary_dilation(body_local, iterations=1)
    walls = ap_walls(body_f, grid, bc_local)
    if walls is not None:
        y_post, y_ant = walls
        va.body_depth_mm = y_ant - y_post
        va.posterior_wall_lps = grid.to_lps((np.array([bc_local[0], y_post, bc_local[2]]) - grid.lo_mm) / step)
        va.anterior_wall_lps = grid.to_lps((np.array([bc_local[0], y_ant, bc_local[2]]) - grid.lo_mm) / step)
        if body_cut:
            flags.append("body cut by the edge of the scan: heights not measured")
        elif union is not None:
            # a label that splits the ring between levels holds part of a body at most:
            # its "heights" would report a collapse that is not there
            flags.append("body heights not measured (the labels split this vertebra between levels)")
        else:
            bx = grid.lo_mm[0] + step * np.nonzero(body_local.any(axis=(1, 2)))[0]
            quarter = 0.25 * (bx.max() - bx.min())
            x_range = (bx.min() + quarter, bx.max() - quarter)
            va.body_heights_mm = body_heights(body_f, grid, bc_local, y_post, y_ant, x_range_mm=x_range)
            # as TotalSegmentator's spine report counts them: samples every half voxel
            along = np.linalg.norm(np.linalg.inv(np.asarray(aff, float)[:3, :3]) @ grid.rot[:, 2])
            va.body_heights_report_mm = body_heights(body_f, grid, bc_local, y_post, y_ant, x_range_mm=x_range,
                                                     sample_step_mm=0.5 / along)
            va.height_ratio, va.genant_grade = genant_grade(va.body_heights_mm)
            why = height_reliability(body_f, grid, bc_local, y_post, y_ant, va.body_heights_mm,
                                     x_range_mm=x_range, voxel_mm=float(spacing.max()))
            if why:
                # a ragged outline would show a fracture that is not there: not graded
                va.height_ratio, va.genant_grade = None, None
                flags.append(f"{UNRELIABLE_FLAG}: {why}; not graded, check on the sagittal view")
    va.superior_endplate, va.inferior_endplate = endplate_planes(body_local, grid)
    if va.superior_endplate is not None and va.inferior_endplate is not None:
        # the body's own craniocaudal axis (mean endplate normal) is truer than the line
        # between the neighbours in a kyphotic or lordotic curve; AP and left follow it
        s_body = unit(va.superior_endplate.normal_lps + va.inferior_endplate.normal_lps)
        if s_body @ sup > np.cos(np.radians(25.0)):
            va.ap_axis_lps = perpendicular_part(ant, s_body)
            va.left_lps = np.cross(s_body, va.ap_axis_lps)
    if sec is not None and spacing.max() > WALL_MAX_SPACING_MM:
        flags.append(f"posterior wall not assessed: voxels of {spacing.max():.1f} mm are too coarse")
    elif sec is not None and not body_cut:
        hu = volume.voxels[box].astype(np.float32)
        hu_local = grid.sample(hu, aff, order=1, offset_ijk=off, cval=-1000.0)
        va.posterior_wall_intact, gap = posterior_wall_intact(body_local, hu_local, grid,
                                                              sec.center_xy_mm[0], sec.half_width_mm)
        if va.posterior_wall_intact is False:
            flags.append(f"posterior wall defect: cortical gap over {100 * gap:.0f}% of the wall behind the canal")
    if sec is not None:
        sampler = _Sampler(mf if union is None else union[0], aff, off, lab8.shape)
        ped_parts = parts_local
        if union is not None:
            # pedicles bridge the body and the arch whatever label the arch carries: take
            # them from the bone of all levels, at the height of this vertebra's body
            ped_parts = split_parts(union[1], grid, sec)
            bz = np.nonzero(body_local.any(axis=(0, 1)))[0]
            if len(bz):
                zkeep = np.zeros(grid.shape[2], bool)
                zkeep[max(bz.min() - 2, 0):bz.max() + 3] = True
                ped_parts = np.where(zkeep[None, None, :], ped_parts, 0)
        # coarse voxels: the general search on the label's cross-sections finds no clean
        # narrowest part (3-voxel pedicles blur into body, facets and transverse process);
        # coronal cuts of the smoothed label on the 1 mm local grid beside the canal do
        coarse_field = (ndi.gaussian_filter(vf, 1.0 / step) if spacing.max() > COARSE_SPACING_MM else None)
        bone_rel = None
        if coarse_field is not None:
            level = bone_level(volume.voxels[box], m, (lab8[box] > 0) & ~m)
            if level is not None:
                bone_rel = grid.sample(volume.voxels[box].astype(np.float32), aff, order=1, offset_ijk=off,
                                       cval=-1000.0) - level
        hu_sampler = _Sampler(volume.voxels[box].astype(np.float32), aff, off, lab8.shape)
        edge = np.array(lab8.shape) - 1
        sides = (("left", PART_PEDICLE_LEFT), ("right", PART_PEDICLE_RIGHT))
        aimed_any = False
        if lab == ATLAS:
            sides = ()  # a ring of lateral masses and arches: no pedicle to look for
            flags.append("C1 (atlas): no body and no pedicles")
        for side, code in sides:
            on_cuts = False
            on_ct = ijk[got == code]
            if len(on_ct) and (np.any(on_ct.min(0) == 0) or np.any(on_ct.max(0) == edge)):
                flags.append(f"{side} pedicle cut by the edge of the scan: not measured")
                continue
            if coarse_field is not None:
                ped = coarse_pedicle(side, coarse_field, grid, sec, bone=bone_rel)
                if ped is None or _outward(ped, left, side) > SIN_DIVERGE_MAX:
                    # a transverse process merged into the cuts (L5): trim it and retry
                    ped = coarse_pedicle(side, coarse_field, grid, sec, bone=bone_rel, trim_lateral=True) or ped
                gen = pedicle_landmarks(side, parts_local == code, grid, sampler, left, ant, hu=hu_sampler)
                if gen is not None and ped is not None and gen.axis_lps @ ped.axis_lps > COS_AGREE:
                    # both found the same pedicle: the sections of the label give the finer
                    # axis, centre and height; the CT's bone edges give the width
                    ped = PedicleLandmarks(side=side, isthmus_center_lps=gen.isthmus_center_lps,
                                           axis_lps=gen.axis_lps, width_mm=ped.width_mm, height_mm=gen.height_mm)
            elif lab in CERVICAL_WITH_FORAMINA and (cerv := _cervical_pedicle(
                    lab, side, vm if union is None else union[1], grid, sec, ped_parts == code, sampler, left, ant,
                    hu_sampler)) is not None:
                ped = cerv
            else:
                ped = pedicle_landmarks(side, ped_parts == code, grid, sampler, left, ant, hu=hu_sampler,
                                        perp_stretch=FINE_PERP_STRETCH)
                if ped is not None and _outward(ped, left, side) > SIN_DIVERGE_MAX:
                    ped = None  # pedicles converge: the sections followed something else
                cut_field = vf if union is None else union[1].astype(np.float32)
                cuts = coarse_pedicle(side, cut_field, grid, sec, trim_tails=True)
                if ped is None and (cuts is None or _outward(cuts, left, side) > SIN_DIVERGE_MAX):
                    # a transverse process merged into the cuts (L5): trim it and retry
                    cuts = coarse_pedicle(side, cut_field, grid, sec, trim_lateral=True, trim_tails=True) or cuts
                if ped is not None and _merged_into(ped, cuts):
                    # the narrowest label section is far wider (or taller) than the cut
                    # beside the canal: a rib head or facet merged into it (thoracic labels)
                    ped = None
                if ped is None:
                    # the search from cuts across the body's AP axis went astray (a wide,
                    # oblique pedicle such as L5's, merged with the body's corner and the
                    # transverse process): sections perpendicular to a line from the pedicle
                    # band toward the body's centre, refined, when they find a clean isthmus
                    ped = _aimed_pedicle(side, ped_parts == code, grid, sampler, left, ant, hu_sampler,
                                         va.body_center_lps, cuts)
                    if ped is not None:
                        aimed_any = True
                        flags.append(f"{side} pedicle refined from a line aimed at the body centre")
                if ped is None:
                    # no clean narrowest section (a pedicle merged with a rib head or a
                    # facet in the labels): the coronal cuts beside the canal instead
                    ped = cuts
                    if ped is not None:
                        flags.append(f"{side} pedicle measured on coronal cuts")
                        on_cuts = True
            if ((coarse_field is not None or on_cuts) and ped is not None
                    and _outward(ped, left, side) > SIN_DIVERGE_MAX and va.anterior_wall_lps is not None):
                # a short, wide pedicle (L5) on coarse voxels: its cuts run into the lamina
                # behind and the body's corner in front, and their centroids follow the
                # ring's outward slant; the isthmus (centre, width, height) stands, the
                # axis is aimed at the anterior body wall in the midsagittal plane
                old_axis = ped.axis_lps
                ped.axis_lps = _aimed_axis(ped, va.anterior_wall_lps, left, ant, side)
                if on_cuts:
                    # fine voxels (T12 at the scan's edge): the cuts' centroids ran into a rib
                    # head or the body's corner; the width, taken across the slanted line,
                    # is rescaled to the aimed axis
                    ped.width_mm *= _cos_medial(ped.axis_lps, left, ant) / _cos_medial(old_axis, left, ant)
                    flags.append(f"{side} pedicle axis not resolved (its coronal cuts diverge, a rib head or "
                                 "the body's corner in them): aimed at the anterior body wall in the midline")
                else:
                    flags.append(f"{side} pedicle axis not resolved on {spacing.max():.0f} mm voxels (its cuts "
                                 "diverge): aimed at the anterior body wall in the midline")
            if ped is None or ped.width_mm < 2.0 or ped.height_mm < 3.0:
                flags.append(f"{side} pedicle not found")
            elif (ped.axis_lps @ left) * (1.0 if side == "left" else -1.0) > SIN_DIVERGE_MAX:
                # pedicles converge toward the body at every level from T1 to L5
                flags.append(f"{side} pedicle not found (its measured axis diverges anteriorly)")
            else:
                if (ped.axis_lps @ left) * (1.0 if side == "left" else -1.0) > SIN_DIVERGE:
                    # a small outward turn is noise of a near-sagittal pedicle (T11-T12)
                    ped.axis_lps = unit(ped.axis_lps - (ped.axis_lps @ left) * left)
                    flags.append(f"{side} pedicle axis measured diverging: set sagittal")
                va.pedicles[side] = ped
    if len(va.pedicles) == 2:
        # the medial angle of an aimed-and-refined pedicle reads a few degrees off either
        # way (L5: 27 and 34 for 30): mirror it as on coarse voxels
        _symmetric_axes(va, medial=coarse_field is not None or aimed_any)
    return va, piece
