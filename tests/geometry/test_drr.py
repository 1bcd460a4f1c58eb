"""DRR correctness: analytic line integrals, needles, the phantom's pedicle, plastimatch."""

import os
import shutil
import subprocess

import numpy as np
import pytest
from scipy import ndimage

from needleplan.geometry import drr as drr_mod
from needleplan.geometry.drr import MU_NEEDLE_PER_MM, MU_WATER_PER_MM, needle_chord_lengths_mm, render_drr
from needleplan.geometry.views import (CArmGeometry, ap_view, bullseye_view, lateral_view, pixel_rays,
                                       progression_view, view_for_angles)
from needleplan.io.volume import Volume
from tests.conftest import require_shared

CENTRE = np.array([5.0, -20.0, 100.0])
RADIUS = 40.0


def _ball_volume(aff3: np.ndarray, shape) -> Volume:
    """Water ball (HU 0) of RADIUS mm around CENTRE in air, on the grid ``aff3``."""
    shape = np.asarray(shape)
    aff = np.eye(4)
    aff[:3, :3] = aff3
    aff[:3, 3] = CENTRE - aff3 @ ((shape - 1) / 2.0)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).astype(np.float32)
    lps = ijk @ aff3.T.astype(np.float32) + aff[:3, 3].astype(np.float32)
    r = np.linalg.norm(lps - CENTRE.astype(np.float32), axis=-1)
    # partial-volume edge (1 voxel wide) keeps the trilinear integral close to the true chord
    frac = np.clip(RADIUS + 0.5 - r, 0.0, 1.0)
    hu = (-1000.0 + 1000.0 * frac).astype(np.int16)
    return Volume(hu, aff, meta={"patient_position": "HFS"})


GRIDS = {
    "LPS-iso": (np.diag([1.2, 1.2, 1.2]), (80, 80, 80)),
    "PIR-aniso": (np.array([[0.0, 0.0, -1.0], [1.5, 0.0, 0.0], [0.0, -2.0, 0.0]]) * [1.0, 1.0, 1.0], (64, 48, 100)),
}


def _exact_chords(view) -> np.ndarray:
    src = view.source_lps
    w = pixel_rays(view) - src
    w /= np.linalg.norm(w, axis=-1, keepdims=True)
    q = CENTRE - src
    t = w @ q
    d2 = np.maximum(q @ q - t * t, 0.0)
    return 2.0 * np.sqrt(np.maximum(RADIUS ** 2 - d2, 0.0))


@pytest.mark.parametrize("grid", sorted(GRIDS))
@pytest.mark.parametrize("which", ["ap", "lateral", "oblique", "steep"])
def test_ball_line_integrals_match_exact_chords(grid, which):
    vol = _ball_volume(*GRIDS[grid])
    g = CArmGeometry(detector_pixels=96)
    iso = CENTRE + [6.0, -4.0, 3.0]
    view = {"ap": ap_view(iso, "HFS", geometry=g), "lateral": lateral_view(iso, "HFS", geometry=g),
            "oblique": view_for_angles(iso, 35, -20, "HFS", geometry=g),
            "steep": view_for_angles(iso, 10, 60, "HFS", geometry=g)}[which]
    line = render_drr(vol, view).image
    exact = MU_WATER_PER_MM * _exact_chords(view)
    inside = exact > MU_WATER_PER_MM * 20  # chord > 20 mm: away from the partial-volume rim
    err = np.abs(line - exact)
    assert err[inside].mean() < 0.005 * exact.max()
    assert err[inside].max() < 0.06 * exact.max()  # worst at the rim of the voxelised ball
    # the shadow sits exactly where the exact projection puts it (sub-pixel)
    rr, cc = np.mgrid[0:96, 0:96]
    for coord in (rr, cc):
        assert abs((line * coord).sum() / line.sum() - (exact * coord).sum() / exact.sum()) < 0.05
    assert line.sum() == pytest.approx(exact.sum(), rel=0.005)
    far = ~ndimage.binary_dilation(exact > 0, iterations=3)
    assert line[far].max() < 1e-3 * exact.max()  # nothing outside the ball's shadow
    centre_px = np.unravel_index(np.argmax(exact), exact.shape)
    assert line[centre_px] == pytest.approx(2 * RADIUS * MU_WATER_PER_MM, rel=0.02)


def test_needle_chords_bullseye_dot_and_side_view():
    entry, target, diam = np.array([10.0, 80.0, 5.0]), np.array([0.0, 10.0, 0.0]), 3.05
    length = np.linalg.norm(entry - target)
    g = CArmGeometry(detector_pixels=128)
    bull = bullseye_view(entry, target, "HFP", geometry=g)
    ch = needle_chord_lengths_mm(bull, entry, target, diam, supersample=1)
    c = 63  # the four central pixels (63.5 is the exact centre)
    assert ch[c, c] == pytest.approx(length, rel=0.01)
    # the dot: disc of diameter ~ diam * magnification (entry and target at different depths)
    dot_px = (ch > 1.0).sum()
    r_px = np.sqrt(dot_px / np.pi) * g.pixel_mm
    assert 0.5 * diam * 1.2 < r_px < 0.5 * diam * 1.8
    side = progression_view(entry, target, "HFP", side="left", geometry=g)
    ch = needle_chord_lengths_mm(side, entry, target, diam, supersample=1)
    assert ch.max() == pytest.approx(diam, rel=0.02)
    uv = side.project(np.stack([entry, target]))
    drawn_len = np.linalg.norm(uv[0] - uv[1])
    cols = np.nonzero(ch.max(axis=0) > 0.5)[0]
    rows = np.nonzero(ch.max(axis=1) > 0.5)[0]
    assert np.hypot(np.ptp(cols), np.ptp(rows)) == pytest.approx(drawn_len, abs=4)


def test_thin_needle_never_falls_between_pixels():
    entry, target, diam = np.array([3.3, 80.0, 2.1]), np.array([3.3, 10.0, 2.1]), 1.83
    g = CArmGeometry(detector_pixels=48)  # 6.25 mm pixels: the needle is ~0.5 px wide
    bull = bullseye_view(entry, target, "HFP", isocenter_lps=[0.0, 40.0, 0.0], geometry=g)
    ch = needle_chord_lengths_mm(bull, entry, target, diam)
    assert ch.max() > 2.0  # the dot is there, partly covering its pixel
    exact = needle_chord_lengths_mm(bull, entry, target, diam, supersample=1)
    assert exact.max() == 0.0  # (with one ray per pixel it vanishes)
    side = progression_view(entry, target, "HFP", side="left", geometry=g)
    fine = needle_chord_lengths_mm(side, entry, target, diam, supersample=9)
    ss = needle_chord_lengths_mm(side, entry, target, diam)
    assert ss.sum() == pytest.approx(fine.sum(), rel=0.3)  # the metal is conserved (3x3 vs 9x9 rays)


def test_needle_is_drawn_dark_and_cache_is_reused():
    vol = _ball_volume(*GRIDS["LPS-iso"])
    entry, target = CENTRE + [25, 60, 0], CENTRE + [25, 0, 0]  # through the ball, off its centre
    view = bullseye_view(entry, target, "HFS", geometry=CArmGeometry(detector_pixels=65))
    plain = render_drr(vol, view)
    with_needle = render_drr(vol, view, needles=[(entry, target, 3.05)])
    assert with_needle.image[32, 32] - plain.image[32, 32] == pytest.approx(60 * MU_NEEDLE_PER_MM, rel=1e-4)
    assert with_needle.display[32, 32] == with_needle.display.min() == 15  # metal: darkest grey
    assert 0 < (with_needle.display != plain.display).sum() < 30  # only the dot changed
    assert plain.display.dtype == np.uint8 and plain.image.dtype == np.float32
    assert len(drr_mod._cache[vol]) >= 1  # attenuation volume cached per Volume
    assert plain.project(target) == pytest.approx([32, 32])


def test_preview_is_small_and_close_to_full():
    vol = _ball_volume(*GRIDS["LPS-iso"])
    view = view_for_angles(CENTRE, 20, 10, "HFS")
    full = render_drr(vol, view, size=64)
    prev = drr_mod.render_preview(vol, view, size=64, step_mm=2.5)
    assert prev.image.shape == (64, 64) and prev.step_mm == pytest.approx(2.4)
    assert np.abs(prev.image - full.image).max() < 0.06 * full.image.max()


# ----------------------------------------------------------------------------- phantom
@pytest.fixture(scope="module")
def phantom():
    from tests.phantoms import lumbar_phantom

    return lumbar_phantom()


@pytest.mark.parametrize("side", ["left", "right"])
def test_bullseye_needle_dot_inside_pedicle_ring(phantom, side):
    from needleplan.segmentation.model import PART_PEDICLE_LEFT, PART_PEDICLE_RIGHT, level_label

    v2 = phantom.truth.vertebra("L2")
    ped = v2.pedicles[side]
    ax = ped.axis_lps / np.linalg.norm(ped.axis_lps)  # posterior -> anterior
    c = ped.isthmus_center_lps
    entry, target = c - 45 * ax, c + 30 * ax
    g = CArmGeometry(detector_pixels=256)
    view = bullseye_view(entry, target, phantom.volume.patient_position, isocenter_lps=c, geometry=g)
    img = render_drr(phantom.volume, view, needles=[(entry, target, 3.05)])
    plain = render_drr(phantom.volume, view).image
    dot = img.project(c)
    assert dot == pytest.approx([127.5, 127.5], abs=1e-6)
    # the pedicle's voxels project around the dot (dot near their centroid)
    part = PART_PEDICLE_LEFT if side == "left" else PART_PEDICLE_RIGHT
    mask = (phantom.truth.parts == part) & (phantom.truth.labels == level_label("L2"))
    uv = view.project(phantom.volume.to_lps(np.argwhere(mask)))
    px_per_mm_iso = g.magnification / g.pixel_mm
    assert np.linalg.norm(uv.mean(axis=0) - dot) < 1.5 * px_per_mm_iso
    # image: the pedicle cortex is a ring (denser rays) around the dot, in every direction:
    # rho = elliptic radius in units of the isthmus half-width/half-height
    rr, cc = np.mgrid[0:256, 0:256]
    dx = (cc - dot[0]) / (0.5 * ped.width_mm * px_per_mm_iso)
    dy = (rr - dot[1]) / (0.5 * ped.height_mm * px_per_mm_iso)
    rho, ang = np.hypot(dx, dy), np.arctan2(dy, dx)
    centre = plain[rho < 0.4].mean()
    rims = []
    for k in range(8):
        sector = np.abs(np.angle(np.exp(1j * (ang - k * np.pi / 4)))) < np.pi / 8
        ring = max(plain[sector & (rho >= a) & (rho < a + 0.2)].mean() for a in (0.6, 0.8, 1.0))
        outside = plain[sector & (rho > 1.6) & (rho < 2.2)].mean()
        assert ring > outside + 0.04, (k, ring, outside)  # the oval encloses the dot on every side
        assert ring > centre - 0.005, (k, ring, centre)  # its rim is at least as dense as its middle
        rims.append(ring - centre)
    assert np.mean(rims) > 0.01  # ... and denser on average: a cortical ring
    # the needle dot is the darkest thing there
    assert img.display[127:129, 127:129].max() < 40


def test_angles_in_view_equal_carm_convention(phantom):
    from needleplan.geometry import carm

    ped = phantom.truth.vertebra("L1").pedicles["left"]
    entry = ped.isthmus_center_lps - 50 * ped.axis_lps
    target = ped.isthmus_center_lps + 25 * ped.axis_lps
    view = bullseye_view(entry, target, "HFP")
    lao, cran = carm.carm_angles_deg(carm.bullseye_detector_lps(entry, target), "HFP")
    assert view.angles_deg == pytest.approx((lao, cran))
    assert view.angles_text == carm.format_carm_angles(lao, cran)
    assert lao > 0  # left pedicle: hub posterior-left -> LAO in prone


# ----------------------------------------------------------------------------- plastimatch
def _read_pfm(path) -> np.ndarray:
    with open(path, "rb") as f:
        assert f.readline().strip() == b"Pf"
        w, h = (int(x) for x in f.readline().split())
        scale = float(f.readline())
        data = np.frombuffer(f.read(), dtype="<f4" if scale < 0 else ">f4").reshape(h, w)
    return data


@pytest.mark.needs_data
@pytest.mark.parametrize("lao,cran", [(30, 12), (-75, -8)])
def test_matches_plastimatch_drr(tmp_path, lao, cran):
    exe = shutil.which("plastimatch")
    if exe is None:
        msg = "plastimatch is not installed (Debian package 'plastimatch'; tools/setup.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    from needleplan.io import load_ct, write_volume
    from needleplan.io.volume import flip_to_lps

    src = require_shared("ts-abdomen-3mm", "ct.nii.gz")
    vol = load_ct(src)
    mha = tmp_path / "ct.mha"
    write_volume(flip_to_lps(vol), mha)  # plastimatch ignores direction cosines
    lo, hi = vol.bounds_lps()
    iso = 0.5 * (lo + hi) + [10.0, 5.0, -15.0]
    g = CArmGeometry(source_to_isocenter_mm=800, source_to_detector_mm=1200, detector_size_mm=300,
                     detector_pixels=128)
    view = view_for_angles(iso, lao, cran, "HFS", geometry=g)
    ours = render_drr(vol, view).image

    def vec(v):
        return " ".join(f"{x:.6f}" for x in v)

    cmd = [exe, "drr", "-t", "pfm", "-r", "128 128", "-z", "300 300", "--sad", "800", "--sid", "1200",
           "-n", vec(-view.detector_lps),  # plastimatch's normal points toward the source
           "--vup", vec(view.up_lps), "-o", vec(iso), "-O", str(tmp_path / "pl"), str(mha)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    theirs = _read_pfm(tmp_path / "pl0000.pfm")[:, ::-1]  # plastimatch's columns run the other way
    a = (ours - ours.mean()) / ours.std()
    b = (theirs - theirs.mean()) / theirs.std()
    corr = float((a * b).mean())
    assert corr >= 0.95, corr
    # and the agreement is geometric: a one-pixel shift agrees less
    shifted = float((a[:, 1:] * b[:, :-1]).mean())
    assert corr > shifted
