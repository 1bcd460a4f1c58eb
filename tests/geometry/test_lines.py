import numpy as np
import pytest

from needleplan.geometry.lines import (angle_between_deg, closest_point_on_segment, point_segment_distance_mm,
                                       sample_segment, sample_volume)
from needleplan.io.volume import Volume


def test_point_segment_distance():
    a, b = np.array([0.0, 0, 0]), np.array([0.0, 0, 10])
    pts = np.array([[3.0, 4, 5], [0, 0, -2], [0, 0, 13], [1, 0, 10]])
    assert point_segment_distance_mm(pts, a, b) == pytest.approx([5.0, 2.0, 3.0, 1.0])
    assert point_segment_distance_mm([[1.0, 1, 1]], a, a) == pytest.approx([np.sqrt(3)])
    c, t = closest_point_on_segment([3.0, 4, 5], a, b)
    assert c == pytest.approx([0, 0, 5]) and t == pytest.approx(0.5)


def test_sample_segment_step():
    pts = sample_segment([0, 0, 0], [0, 0, 10.5], step_mm=1.0)
    assert len(pts) == 12 and pts[0] == pytest.approx([0, 0, 0]) and pts[-1] == pytest.approx([0, 0, 10.5])
    assert np.diff(pts[:, 2]).max() <= 1.0
    with pytest.raises(ValueError):
        sample_segment([0, 0, 0], [1, 0, 0], step_mm=0)


def test_sample_volume_trilinear_in_lps():
    # value = 2*x + 3*y - z (LPS mm) on an oblique-ish grid: trilinear is exact for linear fields
    aff = np.array([[-0.8, 0, 0, 40.0], [0, 0, -1.5, 20.0], [0, 2.0, 0, -100.0], [0, 0, 0, 1]])
    ijk = np.stack(np.meshgrid(np.arange(20), np.arange(15), np.arange(12), indexing="ij"), -1)
    lps = ijk @ aff[:3, :3].T + aff[:3, 3]
    vol = Volume((2 * lps[..., 0] + 3 * lps[..., 1] - lps[..., 2]).astype(np.float32), aff)
    pts = vol.to_lps(np.array([[3.3, 4.7, 5.1], [10.5, 2.25, 8.0]]))
    expected = 2 * pts[:, 0] + 3 * pts[:, 1] - pts[:, 2]
    assert sample_volume(vol, pts) == pytest.approx(expected, abs=1e-3)
    assert sample_volume(vol.voxels, aff, pts) == pytest.approx(expected, abs=1e-3)
    assert sample_volume(vol, [[1e4, 0, 0]], cval=-1000)[0] == -1000


def test_angle_between():
    assert angle_between_deg([1, 0, 0], [1, 1e-9, 0]) == pytest.approx(0, abs=1e-6)
    assert angle_between_deg([1, 0, 0], [-1, 0, 0]) == pytest.approx(180)
    assert angle_between_deg([[1, 0, 0]], [[1, 1, 0]]) == pytest.approx([45])
