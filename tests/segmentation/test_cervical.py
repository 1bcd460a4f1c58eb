"""Cervical spine: C4-C6 Dice with the canal and foramina left empty, C1/C2 named by the dens.

Phantoms only (cached; each segmentation takes about a second).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from needleplan.phantom import make_phantom
from needleplan.segmentation import segment
from needleplan.segmentation._vertebrae import segment_vertebrae
from needleplan.segmentation.model import PART_BODY
from tests.phantoms import cervical_phantom, upper_cervical_phantom
from tests.segmentation.conftest import identified as _identified
from tests.segmentation.conftest import angle_deg as _angle_deg
from tests.segmentation.conftest import dice as _dice
from tests.segmentation.conftest import true_anatomy


def _assert_canal_empty(ph, res):
    """No label in the dural sac, nor deeper than 2 mm inside the canal (before the fix the
    cervical canal was filled: ~1000-1600 CSF voxels per level)."""
    vert = res.labels > 0
    core = ndimage.binary_erosion(ph.truth.canal, iterations=2)
    assert int((vert & ph.structures["csf"]).sum()) <= 0.005 * int(vert.sum())
    assert int((vert & core).sum()) <= 0.005 * int(vert.sum())


@pytest.fixture(scope="module")
def cervical():
    """C4-C6 with a level hint (no anchor in view), as the measurement script runs it."""
    ph = cervical_phantom()
    t = ph.truth.labels
    hint = ("C5", ph.volume.to_lps(np.argwhere(t == 5).mean(0)))
    return ph, segment_vertebrae(ph.volume, hint=hint)


@pytest.fixture(scope="module")
def upper():
    """C1-C4 without any hint: the dens names the levels."""
    ph = upper_cervical_phantom()
    return ph, segment_vertebrae(ph.volume)


# ----------------------------------------------------------------------------- C4-C6
def test_cervical_dice_target(cervical):
    """Measured C4 0.981, C5 0.977, C6 0.980 (0.949, 0.945, 0.950 before the partial-volume
    rim of the thin arches and the transverse foramina was trimmed, _v_edge)."""
    ph, res = cervical
    for lab in (4, 5, 6):
        assert _dice(res.labels == lab, ph.truth.labels == lab) >= 0.965, lab


def test_cervical_outline_has_no_rim(cervical):
    """False positives outside the bone are a thin scatter, not a one-voxel rim all round
    (before the edge test: 830-930 voxels per level, 8-9 % of the vertebra)."""
    ph, res = cervical
    t = ph.truth.labels
    for lab in (4, 5, 6):
        fp = int(((res.labels == lab) & (t != lab)).sum())
        assert fp <= 0.04 * int((t == lab).sum()), (lab, fp)


def test_cervical_facets_split_along_the_joint(cervical):
    """Lateral-mass pillars: few voxels go to the wrong level (before the CT-grid contact
    watershed the cut was square to the column: 10-330 voxels per level, now 34-45)."""
    ph, res = cervical
    t = ph.truth.labels
    for lab in (4, 5, 6):
        wrong = int(((res.labels == lab) & (t > 0) & (t != lab)).sum())
        assert wrong <= 0.01 * int((t == lab).sum()), (lab, wrong)


def test_cervical_canal_stays_out_of_the_labels(cervical):
    """The column runs through the small bodies, not the wide canal behind them."""
    ph, res = cervical
    _assert_canal_empty(ph, res)
    # the body column's centreline lies inside the bodies (in front of the canal)
    for lab in (4, 5, 6):
        v = ph.truth.vertebra(lab)
        d = np.linalg.norm(res.centerline_lps - v.body_center_lps, axis=1)
        assert d.min() <= 0.3 * v.body_depth_mm, lab


def test_cervical_transverse_foramina_empty(cervical):
    """The contrast-filled vertebral arteries (230 HU) run through canals open above and
    below: no marrow to fill (before: ~40 % of the artery inside the labels; now 4.8 %, the
    partial-volume rim next to the foramen's cortex)."""
    ph, res = cervical
    art = ph.structures["vertebral_arteries"]
    kk = np.unique(np.argwhere(ph.truth.labels > 0)[:, 2])
    assert ((res.labels[:, :, kk] > 0) & art[:, :, kk]).sum() <= 0.1 * art[:, :, kk].sum()


def test_no_dens_below_c2(cervical):
    """C4-C6 hold no atlas: the names come from the hint, not from a false dens."""
    _, res = cervical
    assert not any("identified by its dens" in m for m in res.messages)
    assert res.levels == ["C4", "C5", "C6"]


# ----------------------------------------------------------------------------- C1-C4
def test_upper_cervical_named_from_the_dens_without_hint(upper):
    ph, res = upper
    assert res.levels == ["C1", "C2", "C3", "C4"]
    assert any("dens" in m for m in res.messages)
    assert res.naming_confidence >= 0.8
    for lab in (1, 2, 3, 4):
        assert _identified(res.labels, ph.truth.labels, ph.volume, lab), lab


def test_atlas_and_axis_dice(upper):
    ph, res = upper
    t = ph.truth.labels
    # issue target 0.95 (C2 with the dens)
    assert _dice(res.labels == 1, t == 1) >= 0.95
    assert _dice(res.labels == 2, t == 2) >= 0.95
    for lab in (3, 4):
        assert _dice(res.labels == lab, t == lab) >= 0.95, lab


def test_upper_cervical_dice_above_target(upper):
    """Measured C1 0.984, C2 0.980, C3 0.975, C4 0.984 (0.954, 0.953, 0.945, 0.948 with the
    partial-volume rim)."""
    ph, res = upper
    for lab in (1, 2, 3, 4):
        assert _dice(res.labels == lab, ph.truth.labels == lab) >= 0.965, lab


@pytest.mark.parametrize("position", ["HFS", "HFP"])
def test_upper_cervical_tilted_and_turned_still_named_from_the_dens(position):
    """Flexed 4 deg, tilted 3 deg and turned 8 deg, supine and prone: the dens still names
    every level."""
    ph = make_phantom(("C1", "C2", "C3", "C4"), rotation_deg=(4.0, 3.0, 8.0), patient_position=position)
    res = segment_vertebrae(ph.volume)
    assert res.levels == ["C1", "C2", "C3", "C4"]
    for lab in (1, 2, 3, 4):
        assert _identified(res.labels, ph.truth.labels, ph.volume, lab), lab
    assert _dice(res.labels == 1, ph.truth.labels == 1) >= 0.92  # 0.935 / 0.946
    assert _dice(res.labels == 2, ph.truth.labels == 2) >= 0.92  # 0.948 / 0.943


@pytest.mark.parametrize("rotation, position", [((4.0, 3.0, 8.0), "HFP"), ((4.0, 3.0, 8.0), "HFS"),
                                                ((0.0, 3.0, 0.0), "HFS")])
def test_upper_cervical_turned_c3_c4_dice(rotation, position):
    """Flexed, tilted and turned: C3/C4 keep their lateral masses and articular pillars.

    Measured C3 0.966 / 0.969 / 0.966, C4 0.975 / 0.977 / 0.974.  Before: C3 0.70, C4 0.68
    turned (the column ran on below C4's body onto its arch, the envelope slid off the
    body, C4's own arch seeded a "rib" and the rib-head cut took the pillars of C3 and
    C4) and C4 0.71 tilted 3 deg (a contrast-filled vessel in the band taken for a rib).
    """
    ph = make_phantom(("C1", "C2", "C3", "C4"), rotation_deg=rotation, patient_position=position)
    res = segment_vertebrae(ph.volume)
    for lab in (3, 4):
        assert _dice(res.labels == lab, ph.truth.labels == lab) >= 0.95, lab


def test_no_rib_on_the_atlas_and_axis():
    """Prone, turned the other way and extended: bone beside C1/C2 turned out of the envelope
    was taken for a rib, and the lowest "rib" named the spine T11-L2 against the dens."""
    ph = make_phantom(("C1", "C2", "C3", "C4"), rotation_deg=(-6.0, 4.0, -10.0), patient_position="HFP")
    res = segment_vertebrae(ph.volume)
    assert res.levels == ["C1", "C2", "C3", "C4"]
    assert res.naming_confidence >= 0.8
    for lab in (1, 2, 3, 4):
        assert _identified(res.labels, ph.truth.labels, ph.volume, lab), lab


def test_dens_belongs_to_c2_and_ring_to_c1(upper):
    ph, res = upper
    t, parts = ph.truth.labels, ph.truth.parts
    c2 = ph.truth.vertebra("C2")
    body = (t == 2) & (parts == PART_BODY)
    pts = ph.volume.to_lps(np.argwhere(body).astype(float))
    dens = np.zeros(t.shape, bool)
    dens[tuple(np.argwhere(body)[c2.superior_endplate.signed_distance_mm(pts) > 4.0].T)] = True
    assert dens.sum() > 300
    assert (res.labels[dens] == 2).mean() >= 0.8
    ring = t == 1
    assert (res.labels[ring] == 1).mean() >= 0.8


def test_upper_cervical_canal_and_foramina(upper):
    ph, res = upper
    _assert_canal_empty(ph, res)
    art = ph.structures["vertebral_arteries"]
    kk = np.unique(np.argwhere(ph.truth.labels > 0)[:, 2])
    assert ((res.labels[:, :, kk] > 0) & art[:, :, kk]).sum() <= 0.5 * art[:, :, kk].sum()


def test_upper_cervical_anatomy_has_no_false_flags():
    """C1 has no body or pedicles, C2's body carries the dens: no heights, grades or
    'vertebra plana' there, and C3 is not graded against them."""
    an = segment(upper_cervical_phantom().volume, backend="classical")
    c1, c2, c3 = an.vertebra("C1"), an.vertebra("C2"), an.vertebra("C3")
    assert not c1.pedicles and "C1 (atlas): no body and no pedicles" in c1.flags
    assert not any("pedicle not found" in f for f in c1.flags)
    for va in (c1, c2):
        assert not va.body_heights_mm and va.genant_grade is None
        assert not any("plana" in f or "height loss" in f for f in va.flags)
    assert set(c2.pedicles) == {"left", "right"}
    assert c3.genant_grade == 0


# ----------------------------------------------------------------------------- building blocks
def test_bony_channels_tube_versus_capped_marrow():
    """A hole running through a ring of bone (open above and below) is a canal; the same
    hole capped by bone at both ends is marrow."""
    from needleplan.segmentation._v_refine import bony_channels

    lab = np.zeros((20, 20, 20), np.uint8)
    yy, xx = np.mgrid[:20, :20]
    r = np.hypot(yy - 10, xx - 10)
    ring = (r >= 2.5) & (r <= 5.0)
    hole = r < 2.5
    lab[:, :, 6:14][ring] = 3
    bone = lab > 0
    ch = bony_channels(lab, bone, (1.0, 1.0, 1.0), axis=2)
    assert ch[:, :, 6:14][hole].all() and ch.sum() == hole.sum() * 8
    capped = lab.copy()
    capped[:, :, 6][hole | ring] = 3
    capped[:, :, 13][hole | ring] = 3
    assert not bony_channels(capped, capped > 0, (1.0, 1.0, 1.0), axis=2).any()


def test_split_contacts_follows_the_bright_joint():
    """Two blocks labelled with a boundary 3 voxels off the bright joint plate between them:
    the boundary moves onto the plate."""
    from needleplan.segmentation._v_refine import split_contacts

    hu = np.full((12, 12, 30), 250.0, np.float32)
    hu[:, :, 14:16] = 900.0  # the two cortical plates of a joint at z 14-15
    lab = np.zeros(hu.shape, np.uint8)
    lab[:, :, :18] = 4
    lab[:, :, 18:] = 5  # boundary placed 3 voxels above the joint
    out = split_contacts(lab, hu, (1.0, 1.0, 1.0), band_mm=6.0)
    assert (out[:, :, :14] == 4).all() and (out[:, :, 16:] == 5).all()


def test_trim_rim_cuts_the_blurred_rim_but_keeps_marrow():
    """A cortical plate (1150 HU, voxel-centre edges at x 10 and 16) blurred by 0.7 mm and
    labelled one voxel too wide on each side: the two rim voxels (~290 HU, above a 250 HU
    threshold) go, the plate stays.  Labelled marrow (150-300 HU, textured) next to
    unlabelled marrow keeps every voxel, and so does a plate whose outer neighbour is a
    canal in ``open_mask`` only when that mask is not given."""
    from scipy.ndimage import gaussian_filter

    from needleplan.segmentation._v_edge import edge_fraction, trim_rim

    assert edge_fraction((1.0, 1.0, 1.0)) == pytest.approx(0.5)
    assert edge_fraction((3.0, 3.0, 3.0)) < 0.5
    hu = np.full((30, 8, 8), 50.0, np.float32)
    hu[10:17] = 1150.0
    hu = gaussian_filter(hu, 0.7)
    lab = np.zeros(hu.shape, np.uint8)
    lab[9:18] = 7
    out = trim_rim(lab, hu, fraction=0.5)
    assert (out[10:17] == 7).all() and not out[9].any() and not out[17].any()
    assert 250 < hu[9, 4, 4] < 330
    # textured marrow: labelled half next to an unlabelled half of the same tissue
    rng = np.random.default_rng(1)
    marrow = (225.0 + 75.0 * rng.uniform(-1, 1, (30, 8, 8))).astype(np.float32)
    lab2 = np.zeros(marrow.shape, np.uint8)
    lab2[:15] = 7
    assert (trim_rim(lab2, marrow, fraction=0.5) == lab2).all()
    # a contrast-filled canal (230 HU) outside the plate: trimmed only as an open canal
    hu3 = np.full((30, 8, 8), 230.0, np.float32)
    hu3[10:17] = 1150.0
    hu3 = gaussian_filter(hu3, 0.7)
    assert out.dtype == lab.dtype
    kept = trim_rim(lab, hu3, fraction=0.5)
    assert kept[9].all() and kept[17].all()
    cut = trim_rim(lab, hu3, fraction=0.5, open_mask=hu3 < 400)
    assert not cut[9].any() and (cut[10:17] == 7).all()


# ----------------------------------------------------------------------------- pedicles
@pytest.fixture(scope="module")
def cervical_anatomy():
    """C4-C6 anatomy from the true labels (pedicles only; the segmentation is tested above)."""
    return true_anatomy(cervical_phantom())


@pytest.fixture(scope="module")
def upper_anatomy():
    return true_anatomy(upper_cervical_phantom())


def _pedicle_errors(ph, an, names):
    out = {}
    for name in names:
        truth, got = ph.truth.vertebra(name), an.vertebra(name)
        for side, tp in truth.pedicles.items():
            assert side in got.pedicles, (name, side, got.flags)
            p = got.pedicles[side]
            # converging: the axis turns medially going anterior
            assert (p.axis_lps @ got.left_lps) * (1 if side == "left" else -1) < 0, (name, side)
            out[name, side] = (float(np.linalg.norm(p.isthmus_center_lps - tp.isthmus_center_lps)),
                               _angle_deg(p.axis_lps, tp.axis_lps), p.width_mm - tp.width_mm,
                               p.height_mm - tp.height_mm)
    return out


def _assert_within_issue_tolerances(err):
    """Centre 1.0 mm, axis 3 deg, width 0.5 mm (the issue's), height 1.0 mm."""
    for key, (c, a, dw, dh) in err.items():
        assert c <= 1.0, (key, c)
        assert abs(dw) <= 0.5, (key, dw)
        assert a <= 3.0, (key, a)
        assert abs(dh) <= 1.0, (key, dh)


def test_cervical_pedicles_between_canal_and_transverse_foramen(cervical_anatomy):
    """C4-C6: the isthmus is the shortest crossing of the bone between the canal and the
    transverse foramen, the axis that of an elliptic tube fitted to the pedicle's walls.
    Before: centre 3.9 / 2.1 / 3.4 mm, axis 15.5 / 1.6 / 15.5 deg, width +2.2 / +0.7 / +2.3 mm
    (coronal cuts behind the isthmus); then axis 5.3 / 3.6 / 4.6 deg (the direction of the
    shortest crossing).  Now centre 0.45-0.61 mm, width +0.12-0.43 mm, axis 1.1-1.3 deg,
    height -0.16 to -0.28 mm."""
    ph, an = cervical_anatomy
    _assert_within_issue_tolerances(_pedicle_errors(ph, an, ("C4", "C5", "C6")))


def test_upper_cervical_pedicles(upper_anatomy):
    """C2-C4 by the canal-foramen bridge and the tube fit: centre 0.25 / 0.41 / 0.54 mm, width
    +0.35 / -0.08 / +0.42 mm, axis 0.2 / 0.8 / 2.6 deg (C4's lower wall lies almost in an
    axial voxel plane: its 3 deg tilt is read from few voxel steps).  C2's pedicle rises
    22 deg under its superior facet; before, the general search read it 19 deg off, 1.3 mm
    and +2.2 mm wide, +4.6 mm high.  Heights (the tube's) -0.1 / -0.0 / -0.1 mm."""
    ph, an = upper_anatomy
    _assert_within_issue_tolerances(_pedicle_errors(ph, an, ("C2", "C3", "C4")))
    assert not an.vertebra("C1").pedicles
