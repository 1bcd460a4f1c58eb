"""Plans on real CT with reference vertebra labels (../shared/data)."""

import numpy as np
import pytest
from scipy import ndimage

from needleplan.io import load_ct
from needleplan.planner import MEDIAL_ANGLE_RANGE_DEG, PlanRequest, plan
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
        ref = anatomy.labels == va.label          # the imported reference mask on the CT grid
        length = np.linalg.norm(t.target_lps - t.bone_entry_lps)
        s = np.arange(sp, length, 0.25)          # from one voxel past the bone entry to the tip
        pts = t.bone_entry_lps + s[:, None] * t.direction_lps
        ijk = np.rint(volume.to_ijk(pts)).astype(int)
        inside = ref[ijk[:, 0], ijk[:, 1], ijk[:, 2]]
        assert inside.mean() == 1.0, f"{t.name}: {100 * (1 - inside.mean()):.0f}% of the bony path outside"
        s_all = np.arange(0.0, t.length_mm, 0.5)
        ax = t.skin_entry_lps + s_all[:, None] * t.direction_lps
        d = ndimage.map_coordinates(canal_d, volume.to_ijk(ax).T, order=1, mode="nearest") - sp / 2
        assert d.min() - t.needle_diameter_mm / 2 >= p.request.canal_margin_mm - sp / 2, t.name
        lo, hi = MEDIAL_ANGLE_RANGE_DEG[t.level]
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
    lab = require_shared("ts-abdomen-3mm", "totalseg-vertebrae-verse-labels.nii.gz")
    volume = load_ct(ct)
    anatomy = _anatomy(volume, lab)
    p = plan(volume, anatomy, PlanRequest())
    assert {lp.level for lp in p.levels} >= {"L1", "L2", "L3"}
    if not p.trajectories:
        pytest.xfail("no level planned on the 3 mm scan: " + "; ".join(lp.reasons[0] for lp in p.levels))
    _judge(volume, anatomy, p)
