"""The C-arm model: exact projection, view construction, orientation, angles."""

import numpy as np
import pytest

from needleplan.geometry import carm
from needleplan.geometry.views import (CArmGeometry, ap_view, bullseye_view, lateral_view, needle_segment,
                                       orientation_letters, pixel_rays, progression_view, project_points,
                                       view_for_angles)

ISO = np.array([12.0, -30.0, 250.0])


@pytest.mark.parametrize("pp", ["HFP", "HFS", "FFS"])
@pytest.mark.parametrize("lao,cran", [(0, 0), (25, -10), (-70, 20), (90, 0), (160, 5)])
def test_isocentre_at_detector_centre_and_offsets_scale_exactly(pp, lao, cran):
    g = CArmGeometry(source_to_isocenter_mm=750, source_to_detector_mm=1100, detector_size_mm=320,
                     detector_pixels=400)
    v = view_for_angles(ISO, lao, cran, pp, geometry=g)
    c0 = (400 - 1) / 2
    assert project_points(v, ISO) == pytest.approx([c0, c0], abs=1e-9)
    px_per_mm = g.source_to_detector_mm / g.source_to_isocenter_mm / g.pixel_mm  # 1100/750/0.8
    for d in (7.0, -23.5):
        assert project_points(v, ISO + d * v.right_lps) == pytest.approx([c0 + d * px_per_mm, c0], abs=1e-9)
        assert project_points(v, ISO + d * v.up_lps) == pytest.approx([c0, c0 - d * px_per_mm], abs=1e-9)
    # a point 100 mm toward the detector is magnified by SID / (SAD + 100)
    p = ISO + 100 * v.detector_lps + 10 * v.right_lps
    expected = c0 + 10 * g.source_to_detector_mm / (g.source_to_isocenter_mm + 100) / g.pixel_mm
    assert project_points(v, p)[0] == pytest.approx(expected, abs=1e-9)
    # angles of the view are the requested ones
    assert v.angles_deg == pytest.approx((lao, cran), abs=1e-9)


def test_points_behind_source_are_nan():
    v = ap_view(ISO, "HFS")
    uv = project_points(v, [v.source_lps - 5 * v.detector_lps, ISO])
    assert np.all(np.isnan(uv[0])) and np.all(np.isfinite(uv[1]))


def test_pixel_rays_project_back_to_their_pixels():
    v = view_for_angles(ISO, 33, -12, "HFP", geometry=CArmGeometry(detector_pixels=64))
    pts = pixel_rays(v)  # on the detector
    rows, cols = np.mgrid[0:64, 0:64]
    mid = 0.5 * (pts + v.source_lps)  # any point on the ray
    uv = project_points(v, mid)
    assert np.abs(uv[..., 0] - cols).max() < 1e-9
    assert np.abs(uv[..., 1] - rows).max() < 1e-9


def test_bullseye_axis_projects_to_one_point():
    entry = np.array([35.0, 95.0, -290.0])
    target = np.array([4.0, 10.0, -300.0])
    v = bullseye_view(entry, target, "HFP", isocenter_lps=entry + 0.3 * (target - entry))
    t = np.linspace(-0.5, 1.5, 41)[:, None]
    uv = project_points(v, entry + t * (target - entry))
    spread = np.linalg.norm(uv - uv.mean(axis=0), axis=1).max()
    assert spread < 0.5
    assert uv.mean(axis=0) == pytest.approx([255.5, 255.5], abs=1e-6)
    assert v.angles_deg == pytest.approx(carm.carm_angles_deg(entry - target, "HFP"))


def test_progression_view_shows_the_needle_full_length():
    entry = np.array([35.0, 95.0, -290.0])
    target = np.array([4.0, 10.0, -300.0])
    v = progression_view(entry, target, "HFP", side="left")
    assert abs(v.detector_lps @ (target - entry)) < 1e-9
    uv = project_points(v, [entry, target])
    g = v.geometry
    # both ends at the isocentre depth: projected length = true length * magnification
    assert np.linalg.norm(uv[0] - uv[1]) * g.pixel_mm == pytest.approx(
        np.linalg.norm(entry - target) * g.magnification, rel=1e-9)
    assert v.angles_deg == pytest.approx(carm.carm_angles_deg(v.detector_lps, "HFP"))


def test_image_orientation_head_up_and_letters():
    # supine AP: face to face -> patient left on the image right, head up
    v = ap_view(ISO, "HFS")
    left, head = project_points(v, [ISO + [20, 0, 0], ISO + [0, 0, 20]])
    assert left[0] > 255.5 and head[1] < 255.5
    assert (orientation_letters(v.right_lps), orientation_letters(v.up_lps)) == ("L", "H")
    # prone PA (detector over the back): patient right on the image right
    v = ap_view(ISO, "HFP")
    assert project_points(v, ISO + [-20, 0, 0])[0] > 255.5
    assert orientation_letters(v.right_lps) == "R"
    # left lateral: posterior on the image right, head up
    v = lateral_view(ISO, "HFP")
    assert orientation_letters(v.right_lps) == "P" and orientation_letters(v.up_lps) == "H"
    assert orientation_letters(view_for_angles(ISO, 30, 0, "HFS").right_lps) == "LP"  # (0.87, 0.5, 0)


def test_near_axial_view_falls_back_to_table_up():
    v = view_for_angles(ISO, 0, 89.5, "HFP")
    assert v.up_lps @ [0, 1, 0] > 0.99  # posterior (ceiling) up for a prone patient


def test_needle_segment_extends_to_hub():
    e, t = np.array([0.0, 80.0, 0.0]), np.zeros(3)
    hub, tip = needle_segment(e, t, needle_length_mm=100)
    assert hub == pytest.approx([0, 100, 0]) and tip == pytest.approx(t)
    assert needle_segment(e, t, needle_length_mm=50)[0] == pytest.approx(e)


def test_bad_geometry_rejected():
    with pytest.raises(ValueError, match="source_to_isocenter_mm"):
        CArmGeometry(source_to_isocenter_mm=1300)
