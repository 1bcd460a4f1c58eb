"""evaluate_trajectory and plan on a tiny hand-built vertebra (exact geometry, fast)."""

import json
import time

import numpy as np
import pytest

from needleplan.errors import PlanningError
from needleplan.planner import PlanRequest, evaluate_trajectory, plan, plan_level
from needleplan.planner.model import Plan
from tests.planner._synth import synthetic_vertebra


@pytest.fixture(scope="module")
def synth():
    return synthetic_vertebra()


def _checks(t):
    return {c.name: c for c in t.checks}


def test_path_along_the_pedicle_axis_is_ok(synth):
    vol, anat = synth
    ped = anat.vertebra("L3").pedicles["left"]
    target = ped.isthmus_center_lps + 30 * ped.axis_lps
    t = evaluate_trajectory(vol, anat, "L3", "left", "transpedicular", ped.isthmus_center_lps - 40 * ped.axis_lps,
                            target)
    assert t.status in ("ok", "warning")
    assert t.breach_grade == "A"
    c = _checks(t)
    assert c["canal_clearance"].passed and c["medial_wall"].passed
    # exact geometry: pedicle 10 mm wide, 11 G needle -> 5 - 1.525 = 3.475 mm to the walls
    assert t.clearance_mm["medial_wall"] == pytest.approx(3.475, abs=0.6)
    assert t.clearance_mm["lateral_wall"] == pytest.approx(3.475, abs=0.6)
    assert t.medial_angle_deg == pytest.approx(15.0, abs=0.5)
    assert t.craniocaudal_angle_deg == pytest.approx(0.0, abs=0.5)
    # skin is the posterior surface of the elliptic body outline (x/75)^2 + (y/65)^2 = 1
    x, y = t.skin_entry_lps[:2]
    assert (x / 75) ** 2 + (y / 65) ** 2 == pytest.approx(1.0, abs=0.03)
    prof = t.clearance_profile
    assert len(prof["depth_mm"]) == len(prof["clearance_mm"]) > 50
    assert prof["depth_mm"][0] == pytest.approx(0.0, abs=1.0)


def test_path_through_the_canal_is_unsafe(synth):
    vol, anat = synth
    # from the left pedicle region straight across into the canal
    t = evaluate_trajectory(vol, anat, "L3", "left", "transpedicular", [40.0, 60.0, 0.0], [0.0, -10.0, 0.0])
    c = _checks(t)
    assert t.status == "unsafe"
    assert not c["canal_clearance"].passed
    assert c["canal_clearance"].value < 2.0


def test_tip_through_anterior_cortex_is_unsafe(synth):
    vol, anat = synth
    ped = anat.vertebra("L3").pedicles["left"]
    t = evaluate_trajectory(vol, anat, "L3", "left", "transpedicular", ped.isthmus_center_lps - 40 * ped.axis_lps,
                            ped.isthmus_center_lps + 52 * ped.axis_lps)
    c = _checks(t)
    assert t.status == "unsafe"
    assert not c["target_in_vertebra"].passed or not c["anterior_cortex"].passed


def test_rib_in_the_way_is_reported():
    vol, anat = synthetic_vertebra(rib=True)
    # a steep lateral path whose extension crosses the synthetic rib at x=45, y=30
    target = np.array([5.0, -26.0, 0.0])
    through = np.array([45.0, 30.0, 0.0])
    t = evaluate_trajectory(vol, anat, "L3", "left", "transpedicular", through + 10 * (through - target) /
                            np.linalg.norm(through - target), target)
    c = _checks(t)
    assert not c["bone_before_entry"].passed
    assert t.status == "unsafe"


def test_bad_input_raises_valueerror(synth):
    vol, anat = synth
    with pytest.raises(ValueError):
        evaluate_trajectory(vol, anat, "L3", "left", "transpedicular", [0, 50, 0], [0, 50, 0])
    with pytest.raises(ValueError):
        evaluate_trajectory(vol, anat, "L3", "up", "transpedicular", [0, 50, 0], [0, -20, 0])
    with pytest.raises(ValueError):
        evaluate_trajectory(vol, anat, "L3", "left", "sideways", [0, 50, 0], [0, -20, 0])
    with pytest.raises(ValueError):
        evaluate_trajectory(vol, anat, "L3", "left", "transpedicular", [0, 50, np.nan], [0, -20, 0])
    with pytest.raises(ValueError):
        evaluate_trajectory(vol, anat, "L1", "left", "transpedicular", [0, 50, 0], [0, -20, 0])
    with pytest.raises(ValueError):
        evaluate_trajectory(vol, anat, "L3", "left", "transpedicular", [0, 50, 0], [0, -20, 0], gauge=12)
    with pytest.raises(ValueError):
        plan(vol, anat, PlanRequest(approach="sideways"))


def test_manual_evaluation_is_fast(synth):
    vol, anat = synth
    ped = anat.vertebra("L3").pedicles["right"]
    entry = ped.isthmus_center_lps - 40 * ped.axis_lps
    evaluate_trajectory(vol, anat, "L3", "right", "transpedicular", entry, ped.isthmus_center_lps + 30 * ped.axis_lps)
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    for _ in range(10):
        target = ped.isthmus_center_lps + 30 * ped.axis_lps + rng.normal(0, 2, 3)
        evaluate_trajectory(vol, anat, "L3", "right", "transpedicular", entry, target)
    per_call = (time.perf_counter() - t0) / 10
    assert per_call < 0.1, f"{per_call * 1000:.0f} ms per manual evaluation"


def test_plan_reaches_midline_and_round_trips(synth):
    vol, anat = synth
    p = plan(vol, anat, PlanRequest())
    assert p.levels[0].recommendation.startswith("unipedicular")
    rec = [t for t in p.trajectories if t.role == "recommended"]
    assert len(rec) == 1
    t = rec[0]
    assert t.status == "ok" and t.breach_grade == "A"
    assert t.target_to_midline_mm <= 3.0
    assert t.target_depth_fraction >= 0.65
    d = json.loads(json.dumps(p.to_dict(), allow_nan=False))
    back = Plan.from_dict(d)
    assert back.trajectories[0].to_dict() == p.trajectories[0].to_dict()
    assert d["trajectories"][0]["carm"]["bullseye"]["lao_deg"] == pytest.approx(t.medial_angle_deg, abs=0.1)


def test_straight_pedicles_far_from_midline_need_two_needles():
    vol, anat = synthetic_vertebra(pedicle_angle_deg=0.0, pedicle_x_mm=18.0, pedicle_width_mm=8.0)
    lp, trajs = plan_level(vol, anat, "L3")
    assert lp.recommendation == "bipedicular", lp.reasons
    assert "from the midline" in lp.reasons[0] and "limit 5 mm" in lp.reasons[0]
    assert sorted(t.side for t in trajs if t.role == "recommended") == ["left", "right"]
    for t in trajs:
        assert t.approach == "bipedicular" and t.status != "unsafe" and t.breach_grade == "A"
        # each tip in its own half, in the ventral part
        own = t.target_lps[0] * (1 if t.side == "left" else -1)
        assert own > 0 and t.target_depth_fraction >= 0.65


def test_too_narrow_pedicle_raises_planning_error_from_plan_level():
    vol, anat = synthetic_vertebra(pedicle_width_mm=3.2, pedicle_height_mm=5.0)
    with pytest.raises(PlanningError):
        plan_level(vol, anat, "L3", PlanRequest(approach="transpedicular"))
    p = plan(vol, anat, PlanRequest())
    assert p.levels[0].recommendation == "not advised"
    assert any("narrow" in r for r in p.levels[0].reasons)
    assert all(t.role == "alternative" for t in p.trajectories)


def test_medial_angle_outside_the_level_window_is_a_warning(synth):
    """L3 window 10-42 deg: a straight (0 deg) needle is flagged and never proposed."""
    from needleplan.planner import MEDIAL_ANGLE_RANGE_DEG, medial_angle_window

    vol, anat = synth
    assert medial_angle_window("L3") == MEDIAL_ANGLE_RANGE_DEG["L3"] == (10.0, 42.0)
    assert medial_angle_window("T8", "parapedicular") == (0.0, 47.0)
    ped = anat.vertebra("L3").pedicles["left"]
    straight = np.array([0.0, -1.0, 0.0])                  # toward anterior, no convergence
    t = evaluate_trajectory(vol, anat, "L3", "left", "transpedicular",
                            ped.isthmus_center_lps - 40 * straight, ped.isthmus_center_lps + 25 * straight)
    c = _checks(t)["medial_angle"]
    assert t.medial_angle_deg == pytest.approx(0.0, abs=0.5)
    assert not c.passed and c.severity == "warning" and c.limit == 10.0 and t.status != "ok"
    p = plan(vol, anat, PlanRequest(levels=["L3"]))
    for t in p.trajectories:
        lo, hi = medial_angle_window("L3", t.approach)
        assert lo <= t.medial_angle_deg <= hi
        assert _checks(t)["medial_angle"].passed
