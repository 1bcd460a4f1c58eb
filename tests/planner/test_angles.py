"""Angle conventions on hand-built geometry (no CT needed)."""

import numpy as np
import pytest

from needleplan.planner import carm_views, clinical_angles_deg


def _entry(target, medial_deg, cc_deg, side="left", length=80.0):
    """Hub position for a needle that converges by medial_deg and whose hub is cc_deg cranial."""
    m, c = np.radians(medial_deg), np.radians(cc_deg)
    lateral = 1.0 if side == "left" else -1.0
    back = np.array([lateral * np.sin(m) * np.cos(c), np.cos(m) * np.cos(c), np.sin(c)])
    return np.asarray(target, float) + length * back


def test_straight_down_prone_is_zero_everywhere():
    entry, target = [10.0, 90.0, -300.0], [10.0, 20.0, -300.0]
    assert clinical_angles_deg(entry, target, side="left") == pytest.approx((0.0, 0.0))
    views = carm_views(entry, target, side="left", patient_position="HFP")
    assert (views["bullseye"]["lao_deg"], views["bullseye"]["cran_deg"]) == pytest.approx((0.0, 0.0))
    assert views["patient_position"] == "HFP"
    # the progression view is perpendicular to the needle: a true lateral here
    assert abs(views["progression"]["lao_deg"]) == pytest.approx(90.0)


def test_hub_tilted_15_deg_toward_head_is_cc_15_and_cran_15():
    target = np.array([0.0, 20.0, -300.0])
    entry = _entry(target, 0.0, 15.0)
    med, cc = clinical_angles_deg(entry, target, side="left")
    assert med == pytest.approx(0.0, abs=1e-9)
    assert cc == pytest.approx(15.0)
    v = carm_views(entry, target, side="left", patient_position="HFP")["bullseye"]
    assert v["cran_deg"] == pytest.approx(15.0, abs=0.01)
    assert v["lao_deg"] == pytest.approx(0.0, abs=0.01)
    assert clinical_angles_deg(_entry(target, 0.0, -10.0), target, side="left")[1] == pytest.approx(-10.0)


@pytest.mark.parametrize("side", ["left", "right"])
def test_converging_needle_has_positive_medial_angle_on_both_sides(side):
    target = np.array([0.0, 10.0, 0.0])
    med, cc = clinical_angles_deg(_entry(target, 25.0, 0.0, side), target, side=side)
    assert med == pytest.approx(25.0)
    assert cc == pytest.approx(0.0, abs=1e-9)
    # diverging (hub medial to the tip) is negative
    med_div, _ = clinical_angles_deg(_entry(target, -10.0, 0.0, side), target, side=side)
    assert med_div == pytest.approx(-10.0)


def test_medial_angle_from_midline_when_side_unknown():
    # entry on the patient's right (x < 0), tip at the midline: converging
    med, _ = clinical_angles_deg([-30.0, -60.0, 0.0], [0.0, 0.0, 0.0], midline_x_mm=0.0)
    assert med == pytest.approx(np.degrees(np.arctan2(30, 60)))


def test_left_hub_is_lao_for_prone_and_supine():
    target = np.array([0.0, 10.0, 0.0])
    prone = carm_views(_entry(target, 20.0, 0.0, "left"), target, side="left", patient_position="HFP")
    assert prone["bullseye"]["lao_deg"] == pytest.approx(20.0, abs=0.01)
    right = carm_views(_entry(target, 20.0, 0.0, "right"), target, side="right", patient_position="HFP")
    assert right["bullseye"]["lao_deg"] == pytest.approx(-20.0, abs=0.01)
    assert right["bullseye"]["label"].startswith("RAO 20")
    # supine anterolateral needle from the right-front: detector anterior and to the right -> RAO
    sup = carm_views([-20.0, -60.0, 0.0], [0.0, 0.0, 0.0], side="right", patient_position="HFS")
    assert sup["bullseye"]["lao_deg"] == pytest.approx(-np.degrees(np.arctan2(20, 60)), abs=0.01)


def test_zero_length_needle_is_rejected():
    with pytest.raises(ValueError):
        clinical_angles_deg([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
