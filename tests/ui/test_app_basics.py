"""Entry point without a display, slice geometry, camera math (fast, mostly without a window)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from needleplan.ui.camera import needle_camera
from needleplan.ui.slicing import VIEWS, SliceGeometry, apply_window


def test_gui_without_display_exits_2_with_one_line():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = subprocess.run([sys.executable, "-m", "needleplan", "gui"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0] and "xvfb-run" in lines[0]


def test_gui_missing_path_exits_2(tmp_path):
    out = subprocess.run([sys.executable, "-m", "needleplan", "gui", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "does not exist" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_gui_missing_labels_exits_2(tmp_path):
    ct = tmp_path / "ct.nii.gz"
    ct.write_bytes(b"")
    out = subprocess.run([sys.executable, "-m", "needleplan", "gui", str(ct), "--labels", str(tmp_path / "seg.nii.gz")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "seg.nii.gz" in lines[0] and "does not exist" in lines[0]


@pytest.mark.parametrize("codes", ["LPS", "RAS", "PIR", "LAS"])
def test_slice_geometry_any_orientation(codes):
    letters = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "S": (2, 1), "I": (2, -1)}
    rot = np.zeros((3, 3))
    spacing = (0.8, 1.0, 2.5)
    for col, ch in enumerate(codes):
        ax, sign = letters[ch]
        rot[ax, col] = sign * spacing[col]
    aff = np.eye(4)
    aff[:3, :3] = rot
    aff[:3, 3] = (10.0, -20.0, 30.0)
    shape = (7, 9, 11)
    g = SliceGeometry(aff, shape)
    arr = np.arange(np.prod(shape)).reshape(shape)
    c = g.canonical(arr)
    # canonical axes run toward L, P, S in LPS mm
    p0 = g.c_to_lps([0, 0, 0])
    for a in range(3):
        step = np.zeros(3)
        step[a] = 1
        d = g.c_to_lps(step) - p0
        assert d[a] > 0 and np.allclose(np.delete(d, a), 0)
    # values agree with the original array through the index mapping
    ijk = g.c_to_ijk([2, 3, 4]).astype(int)
    assert c[2, 3, 4] == arr[tuple(ijk)]
    assert np.allclose(g.lps_to_c(g.c_to_lps([1.5, 2.0, 3.0])), [1.5, 2.0, 3.0])
    # 2-D images: axial rows run posterior (down), coronal/sagittal rows run inferior (down)
    ax = g.slice2d(arr, VIEWS["axial"], 4)
    assert ax.shape == (g.shape[1], g.shape[0])
    assert ax[3, 2] == c[2, 3, 4]
    co = g.slice2d(arr, VIEWS["coronal"], 3)
    assert co[0, 2] == c[2, 3, g.shape[2] - 1]  # top row = most superior
    sa = g.slice2d(arr, VIEWS["sagittal"], 2)
    assert sa[0, 3] == c[2, 3, g.shape[2] - 1]
    uv = g.c_to_uv(np.array([2.0, 3.0, 4.0]), VIEWS["sagittal"])
    assert np.allclose(g.uv_to_c(uv, VIEWS["sagittal"], 2.0), [2, 3, 4])


def test_window_lut_matches_formula():
    img = np.array([[-1000, 40, 240, 3000]], np.int16)
    out = apply_window(img, 400, 40)
    assert out.tolist() == [[0, 127, 255, 255]]
    assert apply_window(img.astype(np.float32), 400, 40).tolist() == [[0, 127, 255, 255]]


def test_needle_camera_axis_projects_to_a_point():
    entry, target = np.array([40.0, 90.0, 10.0]), np.array([5.0, -20.0, 0.0])
    pose = needle_camera(entry, target, distance_mm=200)
    d = pose.focal_point_lps - pose.position_lps
    d /= np.linalg.norm(d)
    n = (target - entry) / np.linalg.norm(target - entry)
    assert np.allclose(d, n)
    for p in (entry, target, entry + 0.5 * (target - entry)):  # points of the axis: on the view ray
        v = p - pose.position_lps
        assert np.linalg.norm(v - (v @ d) * d) < 1e-9
    assert abs(pose.view_up_lps @ d) < 1e-9
