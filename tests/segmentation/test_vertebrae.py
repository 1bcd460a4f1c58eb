"""Classical vertebra segmentation (:func:`segment_vertebrae`): Dice and level naming.

Real scans are segmented once per test session (``tests/segmentation/conftest.py``); their
Dice is tested in ``test_real_dice.py``, the thoracic, cervical and scoliotic phantoms' in
their own files.  Floors sit a little under today's figures; the issue's targets (phantom
Dice >= 0.95, real Dice >= 0.85) are asserted where reached and kept as ``xfail`` where not,
so that reaching them shows up.  Level identification must be right everywhere.
"""

from __future__ import annotations

import numpy as np
import pytest

from needleplan.errors import SegmentationError
from needleplan.io import Volume, load_ct, read_label_image
from needleplan.segmentation._v_geodesic import geodesic_partition
from needleplan.segmentation._vertebrae import segment_vertebrae
from needleplan.segmentation.model import level_label, level_name
from tests.conftest import require_shared
from tests.segmentation.conftest import dice as _dice
from tests.segmentation.conftest import identified as _identified
from tests.phantoms import (lumbar_phantom, lumbosacral_phantom, pathology_phantom, rotated_phantom,
                            thoracic_phantom, thoracolumbar_phantom)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def thoracolumbar():
    ph = thoracolumbar_phantom()
    return ph, segment_vertebrae(ph.volume)


@pytest.fixture(scope="module")
def lumbosacral():
    ph = lumbosacral_phantom()
    return ph, segment_vertebrae(ph.volume)


# ----------------------------------------------------------------------------- geodesic split
def test_geodesic_partition_cuts_at_the_joint_gap_and_favours_hanging_arches():
    """A bar of dense bone between two seeds with a low-density 'joint' off-centre: the
    front stops at the gap, not half-way; cranial steps behind the bodies cost more."""
    hu = np.full((3, 3, 40), 800.0)
    hu[:, :, 14] = 150.0  # a facet-like gap 5 voxels below the middle
    dom = np.ones(hu.shape, bool)
    mk = np.zeros(hu.shape, np.uint8)
    mk[:, :, 0] = 1
    mk[:, :, -1] = 2
    lab = geodesic_partition(dom, mk, hu, (1.5, 1.5, 1.5), dense_hu=400.0, loose_hu=150.0)
    assert (lab[1, 1, :15] == 1).all() and (lab[1, 1, 15:] == 2).all()
    flat = np.full(hu.shape, 800.0)
    even = geodesic_partition(dom, mk, flat, (1.5, 1.5, 1.5), dense_hu=400.0, loose_hu=150.0)
    up = geodesic_partition(dom, mk, flat, (1.5, 1.5, 1.5), dense_hu=400.0, loose_hu=150.0, up_cost=4.0)
    assert abs(int((even == 1).sum()) - int((even == 2).sum())) <= 9  # half-way without a gap
    assert (up == 2).sum() > 2 * (up == 1).sum()  # the upper seed's front goes down cheaply


# ----------------------------------------------------------------------------- phantoms
def test_phantom_levels_named_from_the_rib(thoracolumbar):
    ph, res = thoracolumbar
    assert res.levels == ["T11", "T12", "L1", "L2"]
    assert any("T12" in m for m in res.messages)
    for lab in (18, 19, 20, 21):
        assert _identified(res.labels, ph.truth.labels, ph.volume, lab)
    assert res.naming_confidence >= 0.6


def test_phantom_levels_named_from_the_sacrum(lumbosacral):
    ph, res = lumbosacral
    assert res.levels == ["L4", "L5", "S"]
    assert any("sacrum" in m for m in res.messages)
    for lab in (23, 24):
        assert _identified(res.labels, ph.truth.labels, ph.volume, lab)


# measured: thoracolumbar 0.976-0.987, lumbosacral 0.961-0.991
@pytest.mark.parametrize("fixture, floor", [("thoracolumbar", 0.97), ("lumbosacral", 0.955)])
def test_phantom_dice_floor(request, fixture, floor):
    ph, res = request.getfixturevalue(fixture)
    for lab in np.unique(ph.truth.labels):
        if lab == 0 or lab == 26:
            continue
        d = _dice(res.labels == lab, ph.truth.labels == lab)
        assert d >= floor, f"{fixture} label {lab}: Dice {d:.3f} < {floor}"


def test_phantom_outline_follows_the_ct_bone():
    """Outlines re-drawn on the 1 mm CT grid (not the 1.5 mm working grid): lumbar phantom."""
    ph = lumbar_phantom()
    centre = ph.volume.to_lps(np.argwhere(ph.truth.labels == 21).mean(0))
    res = segment_vertebrae(ph.volume, hint=("L2", centre))
    for lab in (20, 21, 22):
        d = _dice(res.labels == lab, ph.truth.labels == lab)
        assert d >= 0.98, f"label {lab}: Dice {d:.3f} (measured 0.989-0.996)"


@pytest.mark.parametrize("make", [lumbar_phantom, pathology_phantom, rotated_phantom, lumbosacral_phantom],
                         ids=["lumbar", "pathology", "rotated", "lumbosacral"])
def test_issue_dice_target_on_the_lumbar_phantoms(make):
    """The issue's Dice >= 0.95 per level (measured 2026-11-26: lumbar .989/.989/.996, collapsed L3
    and lesion L2 .984/.978/.979, rotated .981/.983/.989, lumbosacral L4/L5 .991/.961), with the
    middle level given as a hint so that Dice does not depend on naming."""
    ph = make()
    truth = ph.truth.labels
    labs = sorted(set(np.unique(truth)) - {0, 26})
    mid = labs[len(labs) // 2]
    res = segment_vertebrae(ph.volume, hint=(level_name(int(mid)), ph.volume.to_lps(np.argwhere(truth == mid).mean(0))))
    for lab in labs:
        d = _dice(res.labels == lab, truth == lab)
        assert d >= 0.95, f"{level_name(int(lab))}: Dice {d:.3f}"


def test_phantom_dice_target(thoracolumbar):
    ph, res = thoracolumbar
    for lab in (18, 19, 20, 21):
        assert _dice(res.labels == lab, ph.truth.labels == lab) >= 0.95


def test_thoracic_phantom_leaves_the_ribs_out():
    """Rib heads and necks are no part of the vertebra (the reference excludes ribs)."""
    ph = thoracic_phantom()
    centre = ph.volume.to_lps(np.argwhere(ph.truth.labels == level_label("T8")).mean(0))
    res = segment_vertebrae(ph.volume, hint=("T8", centre))
    assert res.levels == ["T7", "T8", "T9"]
    for lab in (14, 15, 16):
        d = _dice(res.labels == lab, ph.truth.labels == lab)
        assert d >= 0.84, f"label {lab}: Dice {d:.3f} (measured 0.85/0.88/0.91; 0.77-0.80 with rib necks)"


def test_phantom_without_anchor_uses_the_hint():
    ph = lumbar_phantom()
    centre = ph.volume.to_lps(np.argwhere(ph.truth.labels == level_label("L2")).mean(0))
    res = segment_vertebrae(ph.volume, hint=("L2", centre))
    assert res.levels == ["L1", "L2", "L3"]
    for lab in (20, 21, 22):
        assert _identified(res.labels, ph.truth.labels, ph.volume, lab)


def test_collapsed_level_is_segmented_not_crashing():
    ph = pathology_phantom()  # vertebra plana at L3, lesion at L2
    centre = ph.volume.to_lps(np.argwhere(ph.truth.labels == 21).mean(0))
    res = segment_vertebrae(ph.volume, hint=("L2", centre))
    assert res.labels.shape == ph.volume.shape
    assert _identified(res.labels, ph.truth.labels, ph.volume, 20)
    assert _identified(res.labels, ph.truth.labels, ph.volume, 21)


# ----------------------------------------------------------------------------- real CT
@pytest.mark.needs_data
def test_ts_abdomen_levels_identified(ts_abdomen):
    vol, ref, res = ts_abdomen
    for lab in range(19, 25):  # T12..L5 (T11 has 3 slices in view)
        assert _identified(res.labels, ref, vol, lab), f"level {lab} not identified"
    assert "S" in res.levels
    assert res.naming_confidence >= 0.8
    assert any("rib and sacrum agree" in m for m in res.messages)


@pytest.mark.needs_data
def test_tptbox_pir_crop(tptbox):
    vol, ref, res = tptbox
    assert res.levels == ["L2", "L3", "L4"]
    for lab in (21, 22, 23):
        assert _identified(res.labels, ref, vol, lab)
    # Dice: tests/segmentation/test_real_dice.py


@pytest.mark.needs_data
def test_ts_abdomen_sacrum_kept_to_s1(ts_abdomen):
    """The sacral label and the centreline stop near S1 (not in the coccyx, pelvis or femur)."""
    vol, ref, res = ts_abdomen
    raw, _ = read_label_image(require_shared("ts-abdomen-3mm", "totalseg-total.nii.gz"), like=vol)
    s1 = np.asarray(raw) == 26
    z_s1 = vol.to_lps(np.argwhere(s1))[:, 2]
    pts = vol.to_lps(np.argwhere(res.labels == 26))
    assert len(pts) > 0
    assert np.mean(pts[:, 2] < z_s1.min() - 15.0) < 0.05
    assert _dice(res.labels == 26, s1) >= 0.55  # measured 0.62 (TotalSegmentator's S1 only)
    assert res.centerline_lps[-1, 2] >= z_s1.min() - 25.0


@pytest.mark.needs_data
def test_tptbox_without_hint_says_it_guesses():
    vol = load_ct(require_shared("tptbox-l3-1.5mm", "sub-ct_label-22_ct.nii.gz"))
    res = segment_vertebrae(vol)
    assert res.naming_confidence <= 0.2
    assert any("guess" in m for m in res.messages)


# ----------------------------------------------------------------------------- robustness
def test_water_cylinder_has_no_spine():
    shape = (96, 96, 40)
    i, j = np.ogrid[:shape[0], :shape[1]]
    vox = np.full(shape, -1000, np.int16)
    vox[((i - 48) ** 2 + (j - 48) ** 2 < 40 ** 2)] = 0
    aff = np.diag([2.0, 2.0, 2.5, 1.0])
    with pytest.raises(SegmentationError, match="no spine found"):
        segment_vertebrae(Volume(vox, aff, meta={"source": "/tmp/water.nii.gz"}))


def test_part_of_one_vertebra_is_clear():
    ph = lumbar_phantom()
    zs = np.nonzero((ph.truth.labels == 21).any(axis=(0, 1)))[0]
    k0 = int(zs.mean())
    vox = np.array(ph.volume.voxels[:, :, k0:k0 + 8])  # an 8 mm slab through L2
    aff = ph.volume.ijk_to_lps.copy()
    aff[:3, 3] = ph.volume.to_lps([0, 0, k0])
    try:
        res = segment_vertebrae(Volume(vox, aff))
    except SegmentationError as exc:
        assert "no spine found" in str(exc)
    else:
        assert res.naming_confidence <= 0.5
        assert len(res.levels) <= 2
