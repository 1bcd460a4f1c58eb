"""Classical vertebra segmentation: :func:`segment_vertebrae`.

Pipeline (no model weights; SimpleITK and scipy.ndimage):

1. resample the CT onto an LPS-aligned ~1.5-2 mm grid (:mod:`._bone`);
2. bone mask (cortex, dense cancellous bone) inside the patient outline (couch removed);
3. the vertebral body column: per slice the thickest bone or the widest bony ring near the
   posterior midline, tracked from slice to slice, re-centred and smoothed
   (:mod:`._v_column`);
4. discs: dips of the "bodyness" profile along the column where the bone is absent across
   the body or the HU steps down between two endplates (a dip in the marrow is no disc), a
   regularly spaced subset, each with a plane fitted to its voxels;
5. bodies between discs, made solid, seed a density-weighted geodesic partition of the
   bone (:mod:`._v_geodesic`: low-density joint gaps are costly, climbing behind the bodies
   too, so an arch joins the body its pedicles come from); ribs and ilia leaving the
   vertebra's envelope seed a competing "other bone" front, and rib heads and necks beside
   the bodies are cut off, the rib zones turned with each vertebra's axial rotation
   (:mod:`._v_label`);
   C1's ring is split off the piece holding C2's dens (no disc between them;
   :mod:`._v_atlas`);
6. level names from the sacrum, the ribs, C2's dens and counting (:mod:`._levels`); the sacral
   label kept to S1 and the L5/S1 facets split along the ridge where their cortices touch
   (:mod:`._v_sacrum`);
7. labels mapped back onto the CT grid and re-drawn there along the CT's own bone
   boundary (:mod:`._v_refine`: the rib contacts re-drawn by :mod:`._v_ribs`, one
   partial-volume layer trimmed by :mod:`._v_edge`); the marrow of each body inside its coarse label is
   taken back there (:mod:`._v_body`) and each body is carried out to its endplates along
   the disc normals (:mod:`._v_endplate`: the disc slabs of step 5 cut them off); where two
   vertebrae touch (facet joints), the voxels
   near their boundary are re-decided on the CT grid, where the joint gap may be visible
   (:mod:`._v_joints`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from needleplan.errors import SegmentationError
from needleplan.io.volume import Volume
from needleplan.segmentation._bone import body_outline, bone_mask, enclosure_radius, make_work_grid, to_ct_grid
from needleplan.segmentation._levels import name_levels
from needleplan.segmentation._v_atlas import split_atlas
from needleplan.segmentation._v_body import fill_body_marrow
from needleplan.segmentation._v_column import bodyness, find_column, find_discs
from needleplan.segmentation._v_endplate import reach_endplates
from needleplan.segmentation._v_joints import split_joints
from needleplan.segmentation._v_label import disc_planes, split_levels
from needleplan.segmentation._v_refine import OTHER, refine_labels
from needleplan.segmentation._v_sacrum import cap_sacrum
from needleplan.segmentation.model import VERSE_NAMES, level_label

__all__ = ["VertebraSegmentation", "segment_vertebrae"]

#: Re-decide the boundaries between touching vertebrae on the CT grid (:mod:`._v_joints`).
JOINTS = True
#: Carry each body out to its endplates on the CT grid (:mod:`._v_endplate`).
ENDPLATES = True
#: Smallest body column (mm along the spine) accepted as a spine.
MIN_COLUMN_MM = 15.0


@dataclass
class VertebraSegmentation:
    """Vertebra labels on the CT grid and how they were named.

    Attributes
    ----------
    labels : (I, J, K) ndarray of uint8
        VerSe ids (see :data:`~needleplan.segmentation.model.VERSE_NAMES`), 0 background.
    bone : (I, J, K) ndarray of bool
        The bone mask used (CT grid).
    confidence : dict
        ``{label: 0..1}`` confidence of each level name.
    naming_confidence : float
        Confidence of the names as a whole.
    messages : list of str
        How the levels were named and anything doubtful.
    centerline_lps : (N, 3) ndarray
        Body-column centreline, cranial to caudal, LPS mm.
    """

    labels: np.ndarray
    bone: np.ndarray
    confidence: dict[int, float]
    naming_confidence: float
    messages: list[str] = field(default_factory=list)
    centerline_lps: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))

    @property
    def levels(self) -> list[str]:
        """Level names present, cranial to caudal."""
        return [VERSE_NAMES[k] for k in sorted(self.confidence)]


def _source(volume: Volume) -> str:
    src = volume.meta.get("source") if isinstance(volume.meta, dict) else None
    return Path(str(src)).name if src else "the CT"


def segment_vertebrae(volume: Volume, *, progress: Callable[[float, str], None] | None = None,
                      hint: tuple[str, object] | None = None,
                      spacing_mm: float | None = None) -> VertebraSegmentation:
    """Segment and name every vertebra wholly or partly in ``volume``.

    Parameters
    ----------
    volume : Volume
        CT in HU, any orientation and field of view.
    progress : callable(fraction, message), optional
        Called with 0..1 as the work advances.
    hint : (level name, point_lps), optional
        Used only when no anatomical anchor (sacrum, ribs) is in view: the vertebra
        nearest to ``point_lps`` (LPS mm) is called ``level name`` (e.g. ``("L3", p)``).
        Without it such scans are named by a low-confidence guess.
    spacing_mm : float, optional
        Working voxel size; default 1.5-2 mm (the source's when coarser).

    Returns
    -------
    VertebraSegmentation

    Raises
    ------
    SegmentationError
        When the CT shows no spine (no bony column with vertebral bodies).
    """
    def step(f: float, msg: str) -> None:
        if progress is not None:
            progress(float(f), msg)

    src = _source(volume)
    if min(volume.shape) < 2:
        raise SegmentationError(f"no spine found in {src}: the volume is a single slice {volume.shape}")
    step(0.0, "resampling")
    grid = make_work_grid(volume, spacing_mm=spacing_mm)
    step(0.1, "bone mask")
    body = body_outline(grid)
    bone = bone_mask(grid, body)
    if bone.sum() * np.prod(grid.spacing_mm) < 2000.0:  # < 2 ml of bone
        raise SegmentationError(f"no spine found in {src}: almost no bone (> 160 HU) in the image")
    step(0.3, "spine column")
    ring = enclosure_radius(bone, grid.spacing_mm)
    feature = bodyness(grid, bone, ring)
    col = find_column(grid, bone, body, feature, ring)
    if col is None:
        raise SegmentationError(f"no spine found in {src}: no column of vertebral bodies "
                                f"(at least {MIN_COLUMN_MM:.0f} mm long) in the image")
    step(0.45, "discs")
    discs = find_discs(grid, col, feature)
    step(0.55, "splitting levels")
    seg = split_levels(grid, bone, col, discs, feature)
    seg = split_atlas(grid, bone, col, seg)  # C1's ring off C2's dens (no disc between them)
    if seg.n == 0:
        raise SegmentationError(f"no spine found in {src}: the bony column is too short to hold a vertebra")
    step(0.8, "naming levels")
    pts = col.points_ijk() * grid.spacing_mm
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
    ca = arc[discs.centre]
    pitch = float(np.median(np.diff(ca))) if len(ca) >= 2 else 2.2 * float(np.median(col.radius_mm))
    piece_hint = None
    if hint is not None:
        name, point = hint
        level_label(name)  # validates the name
        p_work = grid.to_ijk(np.asarray(point, float))
        best, best_d = None, np.inf
        for m in range(1, seg.n + 1):
            idx = np.argwhere(seg.labels == m)
            if len(idx) == 0:
                continue
            d = np.linalg.norm((idx.mean(0) - p_work) * grid.spacing_mm)
            if d < best_d:
                best, best_d = m, d
        if best is not None:
            piece_hint = (name, best)
    naming = name_levels(grid, col, seg, pitch_mm=pitch, hint=piece_hint)

    # piece ids -> VerSe ids on the work grid
    lut = np.zeros(256, np.uint8)
    confidence: dict[int, float] = {}
    for m, (lab, conf) in enumerate(zip(naming.labels, naming.confidence), start=1):
        if lab <= 0 or not (seg.labels == m).any():
            continue
        lut[m] = lab
        confidence[int(lab)] = round(float(conf), 3)
    lut[seg.n + 1] = OTHER
    work_labels = lut[seg.labels]
    planes = disc_planes(grid, col, discs, feature)
    work_labels, keep = cap_sacrum(grid, col, seg, discs, planes, work_labels, other=OTHER)
    step(0.85, "mapping to the CT grid")
    # one resampling for both: VerSe ids (< 128) in the low bits, bone in the top bit
    both = to_ct_grid(work_labels | (bone.astype(np.uint8) << 7), grid, volume)
    bone_ct = both >= 128
    step(0.9, "refining outlines on the CT grid")
    centre = grid.to_lps(col.points_ijk()[keep])[::-1]  # cranial -> caudal, stops at S1
    coarse_ct = both & 0x7F
    del both
    labels = refine_labels(volume, coarse_ct, work_spacing_mm=grid.spacing_mm)
    # the marrow of bodies cut obliquely (kyphosis) or with a faint cortex (see _v_body)
    labels = fill_body_marrow(volume.voxels, labels, coarse_ct, spacing_mm=volume.spacing_mm,
                              work_spacing_mm=grid.spacing_mm, other=OTHER)
    # the endplates and the marrow under them, left in the disc slabs (see _v_endplate)
    if ENDPLATES:
        disc_lps = [(pl.centre_mm + grid.origin_lps, pl.normal) for pl in planes]
        labels = reach_endplates(volume.voxels, labels, coarse_ct, disc_lps, ijk_to_lps=volume.ijk_to_lps,
                                 other=OTHER)
    del coarse_ct
    if JOINTS:
        labels = split_joints(volume.voxels, labels, volume.spacing_mm)
    present = set(int(x) for x in np.unique(labels)) - {0}
    confidence = {k: v for k, v in confidence.items() if k in present}
    if not confidence:
        raise SegmentationError(f"no spine found in {src}: no vertebra left after mapping to the CT grid")
    messages = list(naming.messages)
    messages.append("levels: " + ", ".join(VERSE_NAMES[k] for k in sorted(confidence)))
    step(1.0, "vertebrae done")
    return VertebraSegmentation(labels=labels, bone=bone_ct, confidence=confidence,
                                naming_confidence=float(naming.naming_confidence),
                                messages=messages, centerline_lps=centre)
