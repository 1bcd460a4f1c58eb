import numpy as np
import pytest

from needleplan.geometry.carm import (bullseye_detector_lps, carm_angles_deg, detector_direction_lps,
                                      format_carm_angles, progression_detector_lps)


def test_straight_down_prone_is_zero_zero():
    entry, target = np.array([0.0, 80.0, 0.0]), np.array([0.0, 10.0, 0.0])
    assert carm_angles_deg(bullseye_detector_lps(entry, target), "HFP") == pytest.approx((0.0, 0.0))


def test_hub_leaning_15_deg_to_head_is_cran_15():
    t = np.radians(15)
    target = np.zeros(3)
    entry = target + 60 * np.array([0.0, np.cos(t), np.sin(t)])  # hub posterior and cranial
    lao, cran = carm_angles_deg(bullseye_detector_lps(entry, target), "HFP")
    assert lao == pytest.approx(0.0, abs=1e-9)
    assert cran == pytest.approx(15.0)
    assert carm_angles_deg(bullseye_detector_lps(entry * [1, 1, -1], target), "HFP")[1] == pytest.approx(-15.0)


def test_left_lean_is_lao_both_positions():
    t = np.radians(20)
    # prone: hub posterior-left
    assert carm_angles_deg([np.sin(t), np.cos(t), 0], "HFP")[0] == pytest.approx(20.0)
    # supine: detector anterior-left (classic LAO)
    assert carm_angles_deg([np.sin(t), -np.cos(t), 0], "HFS")[0] == pytest.approx(20.0)
    assert carm_angles_deg([-np.sin(t), -np.cos(t), 0], "FFS")[0] == pytest.approx(-20.0)


@pytest.mark.parametrize("pp", ["HFP", "HFS", "FFS", "FFP", None])
def test_round_trip(pp):
    rng = np.random.default_rng(0)
    for lao, cran in rng.uniform([-170, -80], [170, 80], size=(50, 2)):
        d = detector_direction_lps(lao, cran, pp)
        assert np.linalg.norm(d) == pytest.approx(1.0)
        assert carm_angles_deg(d, pp) == pytest.approx((lao, cran))


def test_progression_view_is_perpendicular_and_lateral():
    # vertical needle: true lateral on the requested side
    entry, target = np.array([0.0, 90.0, 0.0]), np.array([0.0, 0.0, 0.0])
    assert progression_detector_lps(entry, target, side="left") == pytest.approx([1, 0, 0])
    assert progression_detector_lps(entry, target, side="right") == pytest.approx([-1, 0, 0])
    # left pedicle needle converging 20 deg: perpendicular, near-lateral, and above the table
    # of a prone patient (posterior), i.e. a contralateral oblique
    t = np.radians(20)
    entry = np.array([30.0, 90.0, 5.0])
    target = entry + 80 * np.array([-np.sin(t), -np.cos(t), 0.0])
    d = progression_detector_lps(entry, target, side="left")
    assert abs(d @ (target - entry)) < 1e-9
    assert abs(d[0]) == pytest.approx(np.cos(t))
    assert d[1] > 0
    lao, cran = carm_angles_deg(d, "HFP")
    assert lao == pytest.approx(-70.0)
    # anterolateral neck needle (hub anterior): the detector stays anterior
    entry, target = np.array([-40.0, -60.0, 0.0]), np.array([0.0, -5.0, 0.0])
    assert progression_detector_lps(entry, target, side="right")[1] < 0


def test_format():
    assert format_carm_angles(-12.4, 5.0) == "RAO 12°  CRAN 5°"
    assert format_carm_angles(3, -7.6) == "LAO 3°  CAUD 8°"


def test_zero_direction_rejected():
    with pytest.raises(ValueError, match="zero length"):
        carm_angles_deg([0, 0, 0], "HFP")
