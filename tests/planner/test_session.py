"""PlanSession: edits are checked, undoable, saved and reopened (no Qt)."""

from __future__ import annotations

import numpy as np
import pytest

from needleplan.planner import PlanRequest, plan
from needleplan.planner.model import Plan, Trajectory
from needleplan.planner import clinical_angles_deg
from needleplan.planner.session import PlanSession, geometric_update
from tests.phantoms import lumbar_phantom


@pytest.fixture(scope="module")
def study():
    ph = lumbar_phantom()
    return ph.volume, ph.truth, plan(ph.volume, ph.truth, PlanRequest(levels=["L1", "L2"]))


@pytest.fixture()
def session(study):
    vol, anatomy, p = study
    s = PlanSession()
    s.set_study(vol, anatomy, Plan.from_dict(p.to_dict()))
    return s


def test_angles_sign_convention():
    # left entry converging medially, hub tilted toward the head: medial > 0, craniocaudal > 0
    m, c = clinical_angles_deg([20, 80, 10], [0, 10, 0], side="left")
    assert m == pytest.approx(np.degrees(np.arctan2(20, 70)))
    assert c == pytest.approx(np.degrees(np.arctan2(10, 70)))
    m_r, _ = clinical_angles_deg([-20, 80, 0], [0, 10, 0], side="right")
    assert m_r == pytest.approx(m)


def test_geometric_update_sets_bullseye_angles():
    t = Trajectory("L1", "left", "transpedicular", [20, 80, 0], [10, 40, 0], [0, 10, 0])
    g = geometric_update(t, patient_position="HFS")  # supine scan, prone procedure
    lao = g.carm["bullseye"]["lao_deg"]
    assert lao == pytest.approx(np.degrees(np.arctan2(20, 70)), abs=0.01)  # detector toward patient left
    assert g.carm["bullseye"]["cran_deg"] == pytest.approx(0.0, abs=1e-6)
    assert np.array_equal(t.carm, {}) or t.carm == {}  # input untouched


def test_move_target_rechecks_and_undo_restores(session):
    events = []
    session.connect("trajectory_changed", events.append)
    t0 = session.trajectories[0]
    old_target = t0.target_lps.copy()
    new_target = old_target + [0.0, -4.0, 0.0]  # 4 mm deeper (anterior)
    t1 = session.move_point(0, "target", new_target)
    assert events == [0]
    assert np.allclose(t1.target_lps, new_target)
    assert t1.checks and t1.status in ("ok", "warning", "unsafe")
    assert t1.length_mm == pytest.approx(np.linalg.norm(new_target - t1.skin_entry_lps))
    assert session.can_undo and session.modified
    assert session.undo()
    assert np.allclose(session.trajectories[0].target_lps, old_target)
    assert session.redo()
    assert np.allclose(session.trajectories[0].target_lps, new_target)


def test_moving_target_into_canal_is_unsafe(session, study):
    _, anatomy, _ = study
    t = session.trajectories[0]
    v = anatomy.vertebra(t.level)
    # the canal lies between the pedicles, posterior to the body: aim the tip there
    canal_pt = np.asarray(v.posterior_wall_lps) + np.asarray(v.ap_axis_lps) * -8.0
    new = session.move_point(0, "target", canal_pt)
    assert new.status == "unsafe"
    assert any(not c.passed for c in new.checks)


def test_drag_is_one_undo_step(session):
    start = session.trajectories[1].skin_entry_lps.copy()
    session.begin_edit()
    for k in range(1, 6):
        session.move_point(1, "entry", start + [k * 1.0, 0, 0], full=False)
    session.end_edit()
    assert not np.allclose(session.trajectories[1].skin_entry_lps, start)
    session.undo()
    assert np.allclose(session.trajectories[1].skin_entry_lps, start)
    assert not session.can_undo


def test_entry_on_target_is_refused(session):
    t = session.trajectories[0]
    with pytest.raises(ValueError, match="1 mm apart"):
        session.move_point(0, "entry", t.target_lps + 0.2)
    assert not session.can_undo


def test_add_delete_select(session):
    n = len(session.trajectories)
    sel = []
    session.connect("selection_changed", sel.append)
    i = session.new_trajectory("L2", "right")
    assert i == n and session.selected == n and sel[-1] == n
    t = session.trajectories[i]
    assert t.level == "L2" and t.side == "right" and t.checks
    session.delete_trajectory(0)
    assert len(session.trajectories) == n
    session.undo()
    session.undo()
    assert len(session.trajectories) == n


def test_rename_level_updates_everything_and_undoes(session, study):
    _, anatomy, _ = study
    levels_before = {t.level for t in session.trajectories}
    assert "L1" in levels_before
    with pytest.raises(ValueError, match="already exists"):
        session.rename_level("L1", "L2")
    session.rename_level("L1", "T12")
    assert "T12" in {v.name for v in session.anatomy.sorted_vertebrae()}
    assert "T12" in {t.level for t in session.trajectories}
    assert (session.anatomy.labels == 19).any() and not (session.anatomy.labels == 20).any()
    assert 20 in anatomy.vertebrae and (anatomy.labels == 20).any()  # shared input untouched
    session.undo()
    assert {t.level for t in session.trajectories} == levels_before
    assert 20 in session.anatomy.vertebrae


def test_save_and_reopen_round_trip(session, tmp_path):
    session.move_point(0, "target", session.trajectories[0].target_lps + [1.0, 0, 0])
    out = session.save(tmp_path / "plan.json")
    assert out.is_file() and not session.modified
    other = PlanSession()
    other.set_study(session.volume, session.anatomy)
    other.open_plan(out)
    assert len(other.trajectories) == len(session.trajectories)
    for a, b in zip(other.trajectories, session.trajectories):
        assert np.allclose(a.target_lps, b.target_lps, atol=1e-3)
        assert np.allclose(a.skin_entry_lps, b.skin_entry_lps, atol=1e-3)
        assert a.status == b.status
    assert other.plan_path == out and not other.can_undo


def test_merge_plan_replaces_only_the_planned_levels(session, study):
    vol, anatomy, _ = study
    before = {t.name: t.target_lps.copy() for t in session.trajectories if t.level == "L1"}
    assert before and {t.level for t in session.trajectories} == {"L1", "L2"}
    again = plan(vol, anatomy, PlanRequest(levels=["L2"], approach="bipedicular"))
    session.merge_plan(again)
    names = [t.name for t in session.trajectories]
    assert [t.level for t in session.trajectories] == sorted(
        (t.level for t in session.trajectories), key=lambda lv: ["L1", "L2"].index(lv))  # cranio-caudal
    assert [n for n in names if n.startswith("L2")] == ["L2 left", "L2 right"]
    assert all(t.approach == "bipedicular" for t in session.trajectories if t.level == "L2")
    for t in session.trajectories:  # L1 untouched
        if t.level == "L1":
            assert np.allclose(t.target_lps, before[t.name])
    assert [lv.level for lv in session.plan.levels] == ["L1", "L2"]
    assert session.selected_trajectory.level == "L2" and session.modified
    assert session.undo()  # one undo step brings the previous L2 back
    assert [t.level for t in session.trajectories].count("L2") == len(
        [t for t in study[2].trajectories if t.level == "L2"])
