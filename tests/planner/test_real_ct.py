"""Plans on real CT with reference vertebra labels (../shared/data)."""

import numpy as np
import pytest
from scipy import ndimage

from needleplan.io import load_ct
from needleplan.planner import MEDIAL_ANGLE_RANGE_DEG, PlanRequest, plan
from needleplan.planner._levels import medial_angle_window
from tests.conftest import require_shared

pytestmark = [pytest.mark.needs_data, pytest.mark.slow]


def _anatomy(volume, labels_path):
    from needleplan.segmentation import segment

    return segment(volume, labels=labels_path)


_FOV_ONLY = {"skin_in_view", "needle_length"}


def _ok(t):
    """ok, or warned only because the scan is cropped (skin out of view, length unknown)."""
    return t.status == "ok" or (t.status == "warning" and
                                all(c.passed or c.name in _FOV_ONLY for c in t.checks))


def _reference_sd(volume, labels, label, pts_lps):
    """Signed distance (mm, > 0 inside) to the reference vertebra's surface at LPS points.

    The surface lies half a voxel beyond the outermost labelled voxel centres and the
    distance is interpolated linearly (on 3 mm voxels nearest-voxel look-ups would judge
    a point 0.6 mm inside the surface as outside)."""
    ref = labels == label
    lo = np.maximum(np.argwhere(ref).min(0) - 3, 0)
    hi = np.minimum(np.argwhere(ref).max(0) + 4, ref.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    m = ref[box]
    half = float(np.min(volume.spacing_mm)) / 2
    sd = np.where(m, ndimage.distance_transform_edt(m, sampling=volume.spacing_mm) - half,
                  -(ndimage.distance_transform_edt(~m, sampling=volume.spacing_mm) - half))
    return ndimage.map_coordinates(sd, (volume.to_ijk(pts_lps) - lo).T, order=1, mode="nearest")


def _judge(volume, anatomy, p):
    """Every ok trajectory: inside its reference vertebra from bone entry to tip, off the canal."""
    sp = float(np.min(volume.spacing_mm))
    canal_d = ndimage.distance_transform_edt(~anatomy.canal, sampling=volume.spacing_mm)
    checked = 0
    for t in p.trajectories:
        if not _ok(t):
            continue
        checked += 1
        va = anatomy.vertebra(t.level)
        length = np.linalg.norm(t.target_lps - t.bone_entry_lps)
        s = np.arange(sp, length, 0.25)          # from one voxel past the bone entry to the tip
        pts = t.bone_entry_lps + s[:, None] * t.direction_lps
        sd = _reference_sd(volume, anatomy.labels, va.label, pts)
        assert sd.min() >= 0.0, f"{t.name}: axis {-sd.min():.1f} mm outside the reference vertebra"
        s_all = np.arange(0.0, t.length_mm, 0.5)
        ax = t.skin_entry_lps + s_all[:, None] * t.direction_lps
        d = ndimage.map_coordinates(canal_d, volume.to_ijk(ax).T, order=1, mode="nearest") - sp / 2
        assert d.min() - t.needle_diameter_mm / 2 >= p.request.canal_margin_mm - sp / 2, t.name
        lo, hi = medial_angle_window(t.level, t.approach)
        if t.approach != "parapedicular":
            assert (lo, hi) == MEDIAL_ANGLE_RANGE_DEG[t.level]
        assert lo <= t.medial_angle_deg <= hi, (t.name, t.medial_angle_deg)
    return checked


def test_tptbox_l3():
    ct = require_shared("tptbox-l3-1.5mm", "sub-ct_label-22_ct.nii.gz")
    lab = require_shared("tptbox-l3-1.5mm", "sub-ct_seg-vert_label-22_msk.nii.gz")
    volume = load_ct(ct)
    anatomy = _anatomy(volume, lab)
    if not anatomy.vertebra("L3").pedicles:
        pytest.xfail(f"segmentation gives no L3 pedicle landmarks ({anatomy.vertebra('L3').flags})")
    p = plan(volume, anatomy, PlanRequest(levels=["L3"]))
    assert p.levels[0].recommendation != "not advised", p.levels[0].reasons
    rec = [t for t in p.trajectories if t.role == "recommended"]
    assert rec and all(t.breach_grade == "A" for t in rec)
    # the scan is a tight crop: the skin lies outside it, which must be said (warning), not hidden
    for t in rec:
        assert any(c.name == "skin_in_view" and not c.passed for c in t.checks)
    assert _judge(volume, anatomy, p) >= 1


def test_ts_abdomen_lumbar_levels():
    ct = require_shared("ts-abdomen-3mm", "ct.nii.gz")
    lab = require_shared("ts-abdomen-3mm", "totalseg-total.nii.gz")
    volume = load_ct(ct)
    anatomy = _anatomy(volume, lab)
    p = plan(volume, anatomy, PlanRequest())
    assert {lp.level for lp in p.levels} >= {"T12", "L1", "L2", "L3", "L4", "L5"}
    planned = [lp for lp in p.levels if lp.recommendation != "not advised"]
    assert len(planned) >= 4, [(lp.level, lp.reasons) for lp in p.levels]
    assert _judge(volume, anatomy, p) >= 4
    # L5's pedicles are found at 3 mm, but their axis is aimed, not measured: the plan says so
    l5 = next(lp for lp in p.levels if lp.level == "L5")
    assert "pedicle_axis_aimed" in l5.flags
    assert any("bull's-eye" in r for r in l5.reasons)


@pytest.fixture(scope="session")
def lidc_plan():
    """The chest CT (FFS, 1 mm), classical segmentation and a plan of every level; built once."""
    volume = load_ct(require_shared("lidc0314-chest-1mm", "dicom"))
    from needleplan.segmentation import segment

    anatomy = segment(volume)
    return volume, anatomy, plan(volume, anatomy, PlanRequest())


def test_lidc_chest_thoracic_plans_are_plausible(lidc_plan):
    volume, anatomy, p = lidc_plan
    assert p.input["patient_position"] == "FFS"
    planned = [lp for lp in p.levels if lp.recommendation != "not advised"]
    assert len(planned) >= 3, [(lp.level, lp.reasons[:1]) for lp in p.levels]
    for lp in planned:   # a recommendation with its reason (the single needle's distance to the midline)
        assert lp.recommendation.split()[0] in ("unipedicular", "bipedicular", "parapedicular",
                                                  "anterolateral"), lp
        assert lp.reasons and "midline" in lp.reasons[0], lp.reasons
    for lp in p.levels:
        if lp.recommendation == "not advised":
            assert lp.reasons, lp.level     # never silent
    used = [t for t in p.trajectories if t.status in ("ok", "warning")]
    assert sum(t.status == "ok" for t in used) >= 2
    for t in used:
        if t.approach == "anterolateral":      # C6/C7 from the front, patient supine
            assert t.level.startswith("C") and t.procedure_position() == "FFS", t.name
            continue
        assert t.level.startswith("T"), t.name
        lo, hi = medial_angle_window(t.level, t.approach)
        assert lo <= t.medial_angle_deg <= hi, (t.name, t.medial_angle_deg)
        assert t.breach_grade == "A", t.name
        assert t.procedure_position() == "FFP" and t.carm["patient_position"] == "FFP"
    # ok paths: measured again on the segmented canal, needle surface >= the limit from it
    sp = float(np.min(volume.spacing_mm))
    for t in used:
        if t.status != "ok":
            continue
        assert t.clearance_mm["canal"] >= p.request.canal_margin_mm
        s = np.arange(0.0, t.length_mm, 0.5)
        ijk = volume.to_ijk(t.skin_entry_lps + s[:, None] * t.direction_lps)
        pad = np.ceil(15.0 / volume.spacing_mm).astype(int)      # exact below 15 mm: all that matters
        lo = np.maximum(np.floor(ijk.min(0)).astype(int) - pad, 0)
        hi = np.minimum(np.ceil(ijk.max(0)).astype(int) + pad + 1, volume.shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        canal_d = ndimage.distance_transform_edt(~anatomy.canal[box], sampling=volume.spacing_mm)
        d = ndimage.map_coordinates(canal_d, (ijk - lo).T, order=1, mode="nearest") - sp / 2
        assert min(d.min(), 15.0) - t.needle_diameter_mm / 2 >= p.request.canal_margin_mm - sp / 2, t.name
