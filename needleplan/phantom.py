"""Synthetic spine CT phantoms with exact ground truth (sample_data/ and tests).

:func:`make_phantom` draws a contiguous run of vertebrae (C1-L5, optionally the sacrum) with
discs, canal, ribs, muscles, fat, skin and air, blurs and adds noise like a scanner, and
returns the CT as a :class:`~needleplan.io.volume.Volume` together with its truth as an
:class:`~needleplan.segmentation.model.Anatomy` computed analytically from the drawn
geometry (pedicle isthmus centres and axes, widths, body centres, endplates, heights).

Anatomy and values (before the 0.7 mm blur and the noise):

=====================  ==========================================================
air / lung             -1000 / -860 HU
fat / epidural fat     -95 / -70 HU
CSF / cord / discs     8 / 32 / 72-95 HU
muscle / skin          52 / 35 HU; viscera 32, kidney 38, blood 42 HU
contrast (neck)        carotid 230, jugular 170, vertebral artery 230 HU
cancellous bone        170 HU (+ texture); arch core 250 HU
cortex                 1150 HU, 0.8 mm (body) / 1.1 mm (arch); ~450-650 HU after blur
lytic lesion           38 HU; posterior-wall defect: soft tissue through the cortex
=====================  ==========================================================

Conventions of the truth
------------------------
- Every vertebra has a local frame: origin at the body centre (the midpoint of its depth
  and height; the centroid for an undeformed body), ``left_lps``, ``-ap_axis_lps``
  (posterior) and the superior axis.  The column has a gentle natural curve (cervical and
  lumbar lordosis, thoracic kyphosis), so ``ap_axis_lps`` is not exactly ``(0, -1, 0)``.
- ``scoliosis_cobb_deg`` bends the column into a lateral C curve: every vertebra (and its
  truth) is tilted in the coronal plane, shifted sideways and rotated toward the convexity.
- Pedicles are elliptic tubes narrowest at the isthmus: ``width_mm`` and ``height_mm`` are
  the drawn semi-axes x 2 perpendicular to ``axis_lps``; medial and sagittal angles follow
  the level (interpolated morphometry tables in ``needleplan._phantom.morphometry``).
- Body heights are exact at 15/50/85 % of the depth; Genant grade compares the smallest
  height with the level's nominal height.
- The array axes point as a scanner writes them: ``HFS`` i->L, j->P; ``HFP`` i->R, j->A
  (``ImageOrientationPatient = -1,0,0,0,-1,0``); ``FFS``/``FFP`` flip k.  The anatomy in LPS
  does not depend on the patient position; the CT couch is drawn behind the back (supine)
  or in front of the patient (prone) when it falls in the field of view.

Examples
--------
>>> ph = make_phantom(("L1", "L2"), spacing_mm=(2.0, 2.0, 2.0), noise_hu=0.0)
>>> ph.truth.vertebra("L1").pedicles["left"].width_mm
7.5
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from needleplan._phantom.build import AXIS_SIGNS, Grid, paint_all, paint_table, stack_vertebrae
from needleplan.errors import InputError
from needleplan.io.volume import Volume
from needleplan.segmentation.model import (
    Anatomy,
    PedicleLandmarks,
    Plane,
    VertebraAnatomy,
    level_label,
    level_name,
)

__all__ = ["Phantom", "make_phantom", "NARROW_PEDICLE_MM", "PHANTOM_PHI"]

#: Width of a pedicle made narrow by ``narrow_pedicle_level`` (mm).
NARROW_PEDICLE_MM = 3.5
#: Fake but realistic identifying fields, so anonymisation can be tested.
PHANTOM_PHI = {
    "PatientName": "PHANTOM^SPINE",
    "PatientID": "NP-PHANTOM-0001",
    "PatientBirthDate": "19580314",
    "PatientSex": "F",
    "PatientAge": "068Y",
    "AccessionNumber": "NPACC0001",
    "InstitutionName": "needleplan synthetic hospital",
    "ReferringPhysicianName": "REFERRER^DEMO",
    "StudyDate": "20240102",
    "StudyTime": "101500",
    "StudyID": "1",
}
#: Where the middle of the spine sits in LPS (a realistic, non-zero table position).
PIVOT_LPS = (0.0, 25.0, -310.0)
BLUR_SIGMA_MM = 0.7
SCAN_MARGIN = {"cervical": 72.0, "thoracic": 110.0, "lumbar": 110.0, "sacral": 125.0}


@dataclass
class Phantom:
    """A synthetic CT with its exact truth.

    Attributes
    ----------
    volume : Volume
        HU as int16; ``meta`` holds ``patient_position``, ``series_uid``, ``study_uid``,
        ``modality='CT'``, ``description``; ``phi`` holds fake identifying fields.
    truth : Anatomy
        ``method='phantom-truth'``: label map (VerSe), parts, canal and landmarks (LPS mm).
    structures : dict of str -> bool ndarray
        Masks on the CT grid: ``body_outline`` (skin interior) and, when present,
        ``trachea``, ``oesophagus``, ``carotid_left/right``, ``jugular_left/right``,
        ``lesion``, ``ribs``, ``lungs``, ``aorta``, ``csf``, ``vertebral_arteries``,
        ``pelvis`` (iliac wings, with the sacrum) and ``table`` (the CT couch, when in view).
    params : dict
        The arguments of :func:`make_phantom` that made it (enough to regenerate it).
    """

    volume: Volume
    truth: Anatomy
    structures: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict = field(default_factory=dict)


def _parse_levels(levels) -> list[int]:
    if isinstance(levels, str):
        levels = [levels]
    try:
        labs = sorted({level_label(v) for v in levels})
    except (ValueError, TypeError) as exc:
        raise InputError(f"levels: {exc}") from None
    if not labs:
        raise InputError("levels: give at least one level, e.g. ('L1', 'L2', 'L3')")
    bad = [level_name(v) for v in labs if v < 1 or v > 24 and v != 26]
    if bad:
        raise InputError(f"levels: {', '.join(bad)} not supported; use a contiguous run within C1-L5 "
                         "(optionally ending with the sacrum 'S')")
    run = [25 if v == 26 else v for v in labs]
    if run != list(range(run[0], run[-1] + 1)):
        raise InputError(f"levels: {', '.join(level_name(v) for v in labs)} is not contiguous; "
                         "give every level of the run")
    return labs


def _opt_level(name, value, labs):
    if value is None:
        return None
    try:
        lab = level_label(value)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{name}: {exc}") from None
    if lab not in labs:
        raise InputError(f"{name}: {level_name(lab)} is not among the phantom's levels")
    return lab


def _parse_narrow(value, labs) -> dict:
    """``'T8'`` (both sides), ``('T8', 'left')`` or ``('T8', 'left', 3.0)``."""
    if value is None:
        return {}
    if isinstance(value, str):
        value = (value,)
    value = tuple(value)
    lab = _opt_level("narrow_pedicle_level", value[0], labs)
    sides = ("left", "right") if len(value) < 2 or value[1] in (None, "both") else (str(value[1]),)
    for s in sides:
        if s not in ("left", "right"):
            raise InputError(f"narrow_pedicle_level: side {s!r} must be 'left', 'right' or 'both'")
    width = float(value[2]) if len(value) > 2 else NARROW_PEDICLE_MM
    if not 1.0 <= width <= 20.0:
        raise InputError(f"narrow_pedicle_level: width {width} mm outside 1-20 mm")
    return {lab: {s: width for s in sides}}


def _genant(heights, nominal) -> int:
    loss = 1.0 - min(heights) / nominal
    if loss < 0.20:
        return 0
    if loss < 0.25:
        return 1
    if loss <= 0.40:
        return 2
    return 3


def _truth_vertebra(m) -> VertebraAnatomy:
    g = m.geom
    ha, hm, hp = m.heights_mm
    k = 0.5 * (hp - ha) / (0.7 * g.body_depth_mm)  # dz_sup/dy in the local frame
    sup = Plane(m.to_lps([0.0, 0.0, 0.5 * hm]), m.dir_lps([0.0, -k, 1.0]))
    inf = Plane(m.to_lps([0.0, 0.0, -0.5 * hm]), m.dir_lps([0.0, k, 1.0]))
    peds = {}
    for side, p in m.pedicles.items():
        peds[side] = PedicleLandmarks(side=side, isthmus_center_lps=m.to_lps(p.center),
                                      axis_lps=m.dir_lps(p.axis), width_mm=float(p.width_mm),
                                      height_mm=float(p.height_mm))
    heights = {"anterior": float(ha), "middle": float(hm), "posterior": float(hp)}
    flags = []
    if m.lesion:
        flags.append("lytic lesion in the vertebral body")
    if m.wall_defect:
        flags.append("posterior wall defect")
    grade = _genant((ha, hm, hp), m.nominal_height_mm)
    if grade == 3 and min(ha, hm, hp) < 0.5 * m.nominal_height_mm:
        flags.append("vertebra plana")
    for side, w in m.narrow.items():
        flags.append(f"narrow {side} pedicle ({w:.1f} mm)")
    return VertebraAnatomy(
        label=g.label, body_center_lps=np.asarray(m.center_lps, float),
        ap_axis_lps=m.dir_lps([0.0, -1.0, 0.0]), left_lps=m.dir_lps([1.0, 0.0, 0.0]),
        superior_endplate=sup, inferior_endplate=inf, body_depth_mm=float(g.body_depth_mm),
        posterior_wall_lps=m.to_lps([0.0, 0.5 * g.body_depth_mm, 0.0]),
        anterior_wall_lps=m.to_lps([0.0, -0.5 * g.body_depth_mm, 0.0]),
        pedicles=peds, body_heights_mm=heights, height_ratio=min(heights.values()) / max(heights.values()),
        genant_grade=grade, posterior_wall_intact=not m.wall_defect, confidence=1.0, flags=flags,
    )


def _bounds(unrot, rg, pivot):
    """LPS box (lo, hi) holding the scan region of the unrotated spine, after rotation."""
    los, his = [], []
    for m in unrot:
        g = m.geom
        c = m.center_lps
        half_x = SCAN_MARGIN.get(g.region, 110.0)
        if g.region == "cervical":
            ant = c[1] - 0.5 * g.body_depth_mm - 52.0
        else:
            ant = c[1] - 0.5 * g.body_depth_mm - 45.0
        sp = g.spinous_len_mm * np.cos(np.deg2rad(g.spinous_down_deg))
        post = c[1] + 0.5 * g.body_depth_mm + g.canal_depth_mm + g.lamina_thick_mm + sp + 40.0
        below = 26.0 if g.region == "sacral" else 0.5 * g.disc_below_mm
        los.append([-half_x + c[0], ant, c[2] - 0.5 * m.heights_mm[1] - below])
        his.append([half_x + c[0], post, c[2] + 0.5 * m.heights_mm[1] + 0.5 * m.disc_above_mm])
    lo, hi = np.min(los, axis=0), np.max(his, axis=0)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    w = (corners - pivot) @ rg.T + pivot
    return w.min(axis=0), w.max(axis=0)


def _noise_gain(sigma_vox) -> float:
    """Standard deviation of white unit noise after the separable Gaussian blur."""
    gain = 1.0
    for s in sigma_vox:
        if s <= 0:
            continue
        n = int(4 * s + 0.5) * 2 + 1
        d = np.zeros(n)
        d[n // 2] = 1.0
        k = ndimage.gaussian_filter1d(d, s, mode="constant")
        gain *= float(np.sqrt(np.sum(k * k)))
    return gain


def _uid(*parts) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["needleplan-phantom", *map(str, parts)])


def make_phantom(levels=("L1", "L2", "L3"), *, spacing_mm=(1.0, 1.0, 1.0), patient_position="HFP",
                 lesion_level=None, posterior_wall_defect_level=None, plana_level=None,
                 narrow_pedicle_level=None, ribs=True, noise_hu=20.0, seed=0,
                 rotation_deg=(0.0, 0.0, 0.0), shape=None, scoliosis_cobb_deg=0.0) -> Phantom:
    """Draw a synthetic spine CT and its exact truth.

    Parameters
    ----------
    levels : sequence of str
        A contiguous run within C1-L5 (C1: the atlas ring without a body; C2: the axis
        with its dens, which is part of its body in the truth), e.g. ``("T11", "T12", "L1")`` (any order), which may
        end with the sacrum ``"S"`` after L5 (S1 with alae and fused S2, iliac wings in
        ``structures['pelvis']``).
    spacing_mm : (3,) float
        Voxel size along the array axes i, j, k (left-right, antero-posterior, axial).
    patient_position : {'HFP', 'HFS', 'FFS', 'FFP'}
        Written to ``meta['patient_position']``; the array axes point as a scanner writes
        them for that position (prone: i toward patient right, j anterior), the anatomy in
        LPS does not change.
    lesion_level, posterior_wall_defect_level, plana_level : str, optional
        Level with a lytic body lesion, a hole in the posterior body wall, or a collapsed
        (plana) body (heights 30/42/58 % of normal anterior/middle/posterior).
    narrow_pedicle_level : str or tuple, optional
        ``'T8'`` makes both T8 pedicles 3.5 mm wide; ``('T8', 'left')`` one side;
        ``('T8', 'left', 3.0)`` a chosen width.
    ribs : bool
        Draw ribs on thoracic levels (T1-T12; T11/T12 short floating ribs).
    noise_hu : float
        Standard deviation of the (correlated) image noise after blur, HU.
    seed : int
        Seed of the noise and bone texture.
    rotation_deg : (3,) float
        Rotation of the whole anatomy about the L, P and S axes (applied in that order)
        around the middle of the spine; the grid stays axis-aligned.
    shape : (3,) int, optional
        Array shape; default fits the anatomy with margins.
    scoliosis_cobb_deg : float
        A lateral C curve through the levels above the sacrum (at least three; the sacrum
        and pelvis stay level) with this Cobb angle
        (degrees, at most 60; positive: convex to the patient's right, negative: to the
        left), apex at the middle level: each vertebra is tilted in the coronal plane along
        the curve (the end vertebrae by half the angle each way), shifted sideways with it,
        and rotated about its own axis toward the convexity (a third of the Cobb angle at
        the apex, less toward the ends).  The truth follows every vertebra; the soft tissue
        follows the column's sideways shift.  0 (the default) draws a straight column.

    Returns
    -------
    Phantom

    Raises
    ------
    InputError
        For unknown, non-contiguous or unsupported levels and invalid options.
    """
    labs = _parse_levels(levels)
    spacing = np.asarray(spacing_mm, dtype=float).reshape(-1)
    if spacing.size == 1:
        spacing = np.repeat(spacing, 3)
    if spacing.size != 3 or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0.1) or np.any(spacing > 10):
        raise InputError(f"spacing_mm: {tuple(spacing_mm)} must be three values in 0.1-10 mm")
    pos = str(patient_position).upper()
    if pos not in AXIS_SIGNS:
        raise InputError(f"patient_position: {patient_position!r} must be one of {', '.join(AXIS_SIGNS)}")
    lesion = _opt_level("lesion_level", lesion_level, labs)
    defect = _opt_level("posterior_wall_defect_level", posterior_wall_defect_level, labs)
    plana = _opt_level("plana_level", plana_level, labs)
    narrow = _parse_narrow(narrow_pedicle_level, labs)
    rot = np.asarray(rotation_deg, dtype=float).reshape(-1)
    if rot.size != 3 or not np.all(np.isfinite(rot)):
        raise InputError(f"rotation_deg: {rotation_deg!r} must be three angles in degrees")
    if noise_hu < 0:
        raise InputError(f"noise_hu: {noise_hu} must be >= 0")
    try:
        cobb = float(scoliosis_cobb_deg)
    except (TypeError, ValueError):
        raise InputError(f"scoliosis_cobb_deg: {scoliosis_cobb_deg!r} must be an angle in degrees") from None
    if not np.isfinite(cobb) or abs(cobb) > 60.0:
        raise InputError(f"scoliosis_cobb_deg: {scoliosis_cobb_deg} must be within -60..60 degrees")
    if cobb and len([v for v in labs if v != 26]) < 3:
        raise InputError("scoliosis_cobb_deg: a scoliotic curve needs at least three levels above the sacrum")
    if shape is not None:
        shape = tuple(int(v) for v in shape)
        if len(shape) != 3 or min(shape) < 4 or np.prod(shape) > 400e6:
            raise InputError(f"shape: {shape} must be three sizes >= 4 (at most 400 M voxels)")

    world, unrot, rg, pivot = stack_vertebrae(labs, plana=plana, lesion=lesion, defect=defect,
                                             narrow=narrow, pivot_lps=PIVOT_LPS, rotation_deg=rot,
                                             scoliosis_cobb_deg=cobb)
    lo, hi = _bounds(unrot, rg, pivot)
    grid = Grid(lo, hi, spacing, AXIS_SIGNS[pos], shape=shape)
    if np.prod(grid.shape) > 400e6:
        raise InputError(f"spacing_mm: {tuple(spacing)} gives {grid.shape} voxels; use a coarser spacing")
    rng = np.random.default_rng(seed)
    hu, labels, parts, canal, structures = paint_all(grid, world, unrot, rg, pivot, ribs=ribs, rng=rng,
                                                     spacing=spacing)
    table = paint_table(hu, grid, structures["body_outline"], supine=pos.endswith("S"))
    if table.any():
        structures["table"] = table
    sigma = BLUR_SIGMA_MM / spacing
    if noise_hu > 0:
        gain = _noise_gain(sigma)
        noise = rng.standard_normal(grid.shape, dtype=np.float32)
        noise *= np.float32(noise_hu / gain)
        hu += noise
        del noise
    hu = ndimage.gaussian_filter(hu, sigma, mode="nearest")
    np.clip(hu, -1024, 3071, out=hu)
    vox = np.rint(hu).astype(np.int16)

    name = f"{level_name(labs[0])}-{level_name(labs[-1])}" if len(labs) > 1 else level_name(labs[0])
    params = dict(levels=[level_name(v) for v in labs], spacing_mm=[float(v) for v in spacing],
                  patient_position=pos, lesion_level=level_name(lesion) if lesion else None,
                  posterior_wall_defect_level=level_name(defect) if defect else None,
                  plana_level=level_name(plana) if plana else None,
                  narrow_pedicle_level=narrow_pedicle_level if narrow_pedicle_level is None or
                  isinstance(narrow_pedicle_level, str) else list(narrow_pedicle_level),
                  ribs=bool(ribs), noise_hu=float(noise_hu), seed=int(seed),
                  rotation_deg=[float(v) for v in rot],
                  shape=None if shape is None else list(shape))
    if cobb:  # only when used, so the UIDs of a straight phantom do not change
        params["scoliosis_cobb_deg"] = cobb
    key = repr(sorted(params.items()))
    meta = {
        "modality": "CT",
        "patient_position": pos,
        "series_uid": _uid("series", key),
        "study_uid": _uid("study", key),
        "frame_of_reference_uid": _uid("frame", key),
        "description": f"needleplan synthetic spine phantom {name}",
        "manufacturer": "needleplan phantom",
        "source": "needleplan.phantom.make_phantom",
        "warnings": [],
    }
    volume = Volume(voxels=vox, ijk_to_lps=grid.affine, meta=meta, phi=dict(PHANTOM_PHI))
    verts = {m.geom.label: _truth_vertebra(m) for m in world}
    truth = Anatomy(labels=labels, parts=parts, canal=canal, ijk_to_lps=grid.affine.copy(), vertebrae=verts,
                    method="phantom-truth", naming_confidence=1.0, messages=[])
    return Phantom(volume=volume, truth=truth, structures=structures, params=params)

