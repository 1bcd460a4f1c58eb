"""Per-vertebra Dice of the classical segmentation on the two labelled real scans, and the
outline steps that got it there (:mod:`needleplan.segmentation._v_refine`: per-label hole
filling in sagittal/coronal slices, voxel-scale label smoothing, growing into touching bone;
:mod:`needleplan.segmentation._v_label`: seeds on the faces of a cropped field of view).

Floors sit a little under the measured figures (2026-11-26, in the comments); the issue's
target 0.85 is asserted, its goal 0.92 is kept as ``xfail`` where not reached.
"""

from __future__ import annotations

import numpy as np
import pytest

from needleplan.io import Volume
from needleplan.segmentation._bone import WorkGrid
from needleplan.segmentation._v_column import Column
from needleplan.segmentation._v_label import _seed_fov_faces
from needleplan.segmentation._v_refine import OTHER, fill_label_holes, refine_labels, smooth_labels
from tests.segmentation.conftest import dice as _dice

#: Measured Dice: ts-abdomen-3mm T12..L5 and tptbox L2..L4 (tptbox .879 .879 .876 before the
#: joint split on the CT grid, :mod:`needleplan.segmentation._v_joints`).
TS_MEASURED = {19: 0.874, 20: 0.889, 21: 0.895, 22: 0.918, 23: 0.920, 24: 0.856}
TP_MEASURED = {21: 0.896, 22: 0.892, 23: 0.887}
#: Floors: this much under the measured figures.
MARGIN = 0.01


@pytest.fixture(scope="module")
def ts_dice(ts_abdomen):
    vol, truth, res = ts_abdomen
    return {lab: _dice(res.labels == lab, truth == lab) for lab in TS_MEASURED}


@pytest.fixture(scope="module")
def tp_dice(tptbox):
    vol, truth, res = tptbox
    return {lab: _dice(res.labels == lab, truth == lab) for lab in TP_MEASURED}


# ----------------------------------------------------------------------------- real scans
@pytest.mark.needs_data
@pytest.mark.parametrize("lab", sorted(TS_MEASURED))
def test_ts_abdomen_dice_floor(ts_dice, lab):
    assert ts_dice[lab] >= TS_MEASURED[lab] - MARGIN, f"label {lab}: Dice {ts_dice[lab]:.3f}"


@pytest.mark.needs_data
@pytest.mark.parametrize("lab", sorted(TP_MEASURED))
def test_tptbox_dice_floor(tp_dice, lab):
    assert tp_dice[lab] >= TP_MEASURED[lab] - MARGIN, f"label {lab}: Dice {tp_dice[lab]:.3f}"


@pytest.mark.needs_data
def test_issue_target_085_on_both_real_scans(ts_dice, tp_dice):
    low = {k: round(v, 3) for k, v in {**ts_dice, **tp_dice}.items() if v < 0.85}
    assert not low, f"Dice < 0.85: {low}"


@pytest.mark.xfail(reason="issue 3 goal Dice >= 0.92 not reached: ts-abdomen T12 0.86, L1 0.89, L2 0.90, "
                          "L5 0.85 (one 3 mm voxel of rim), tptbox 0.89-0.90 (part of the facet "
                          "joints still split at the wrong side, thin transverse processes)", strict=False)
@pytest.mark.needs_data
def test_issue_goal_092(ts_dice, tp_dice):
    assert min({**ts_dice, **tp_dice}.values()) >= 0.92


# ----------------------------------------------------------------------------- mechanisms
def test_fill_label_holes_fills_marrow_but_not_the_canal():
    """A ring-shaped vertebra (canal along axis 2) with a dark cavity in its body: the cavity
    is a hole in the slices normal to axes 0 and 1 and is filled; the canal is a hole only
    in axial slices (normal to axis 2) and stays empty; another label's voxels are kept."""
    lab = np.zeros((20, 20, 12), np.uint8)
    lab[3:17, 3:17, 2:10] = 5
    lab[8:12, 10:14, :] = 0          # canal: open at both ends along axis 2
    lab[6:9, 4:7, 4:7] = 0           # dark marrow cavity inside the body
    lab[7, 5, 5] = 6                 # a voxel of another label inside the cavity
    out = fill_label_holes(lab, [0, 1])
    assert (out[6:9, 4:7, 4:7] == 5).sum() == 26 and out[7, 5, 5] == 6
    assert (out[8:12, 10:14, :] == 0).all()
    assert (lab[6:9, 4:7, 4:7] != 5).all()  # input untouched


def test_smooth_labels_removes_voxel_noise_and_keeps_the_shape():
    rng = np.random.default_rng(0)
    box = np.zeros((30, 30, 30), np.uint8)
    box[8:22, 8:22, 5:15] = 3
    box[8:22, 8:22, 15:25] = 4  # a neighbour touching it
    noisy = box.copy()
    flip = rng.random(box.shape) < 0.05
    near = np.zeros(box.shape, bool)
    near[6:24, 6:24, 3:27] = True
    noisy[flip & near & (box == 0)] = 3   # specks outside
    noisy[flip & (box == 3)] = 0          # holes inside
    out = smooth_labels(noisy, 0.75)
    for m in (3, 4):
        assert _dice(out == m, box == m) > 0.97
    assert _dice(noisy == 3, box == 3) < 0.93
    # the two neighbours stay apart and no gap opens between them
    assert (out[8:22, 8:22, 14] == 3).mean() > 0.8 and (out[8:22, 8:22, 15] == 4).mean() > 0.8


def test_fov_face_seeds_give_the_cut_arch_to_the_cut_body():
    """The cranial face of the view cuts the end body (piece 2, no disc above): bone on that
    face gets its label; the caudal end piece has a disc below it, so its face stays unseeded."""
    shape = (10, 10, 20)
    grid = WorkGrid(hu=np.zeros(shape, np.float32), spacing_mm=np.array([1.5, 1.5, 1.5]),
                    origin_lps=np.zeros(3), inside=np.ones(shape, bool))
    col = Column(z=np.arange(0, 20), xy=np.full((20, 2), 5.0), radius_mm=np.full(20, 10.0),
                 support=np.ones(20, bool))
    cand = np.zeros(shape, bool)
    cand[4:6, 7:9, :] = True  # an arch behind the bodies, running through the whole view
    markers = np.zeros(shape, np.uint8)
    disc = object()
    _seed_fov_faces(markers, grid, cand, col, [(disc, disc), (disc, None)])
    assert (markers[4:6, 7:9, 19] == 2).all()
    assert (markers[:, :, :19] == 0).all()
    # without the disc below, the caudal face goes to piece 1
    _seed_fov_faces(markers, grid, cand, col, [(None, disc), (disc, None)])
    assert (markers[4:6, 7:9, 0] == 1).all() and (markers[:, :, 1:19] == 0).all()


def test_refine_grows_into_a_bone_layer_the_coarse_labels_left_out():
    """A bone block whose top layer the coarse labels missed by more than their reach (a
    disc slab placed a voxel off): the layer joins the vertebra it touches; the bone of
    "other" (a rib) beside it does not, nor does soft tissue."""
    hu = np.full((24, 24, 24), 40.0, np.float32)
    hu[6:18, 6:18, 4:16] = 400.0       # the vertebra's bone, top layer at k = 15
    hu[19:22, 6:18, 4:12] = 400.0      # a rib beside it (coarse: other bone)
    vol = Volume(hu, np.eye(4))
    coarse = np.zeros(hu.shape, np.uint8)
    coarse[6:18, 6:18, 4:14] = 20      # k = 14 and 15 left out (reach 1 voxel: 14 only)
    coarse[19:22, 6:18, 4:12] = OTHER
    out = refine_labels(vol, coarse, work_spacing_mm=1.0)
    assert (out[7:17, 7:17, 15] == 20).mean() > 0.9
    assert (out[19:22] == 0).all() and (out[:, :, 16:] == 0).all()


def _two_processes(gap_k: int, *, gap_hu: float = 40.0):
    """A bar of bone along k (cortex 700 HU around 250 HU marrow) with a 1-voxel joint gap
    at ``gap_k``; labels split at k = 20 instead (the coarse, horizontal split)."""
    hu = np.full((20, 20, 40), 0.0, np.float32)
    hu[5:15, 5:15, 2:38] = 700.0
    hu[7:13, 7:13, 4:36] = 250.0
    hu[5:15, 5:15, gap_k] = gap_hu
    labels = np.zeros(hu.shape, np.uint8)
    labels[5:15, 5:15, 2:20] = 21
    labels[5:15, 5:15, 20:38] = 20
    return hu, labels


def test_split_joints_moves_the_boundary_into_the_joint_gap():
    """The boundary between two touching vertebrae moves to the dark joint gap seen on the CT
    grid (4 mm off the coarse split), within the band; the union is unchanged."""
    from needleplan.segmentation._v_joints import split_joints

    hu, labels = _two_processes(24)
    out = split_joints(hu, labels, (1.0, 1.0, 1.0))
    assert ((out > 0) == (labels > 0)).all()
    assert (out[5:15, 5:15, 2:24] == 21).mean() > 0.97  # below the gap: the lower vertebra
    assert (out[5:15, 5:15, 25:38] == 20).all()
    # without a gap the boundary stays near the coarse split
    hu, labels = _two_processes(24, gap_hu=700.0)
    out = split_joints(hu, labels, (1.0, 1.0, 1.0))
    moved = int((out != labels).sum())
    assert moved < 0.1 * 100 * 4, f"{moved} voxels moved without a gap"


def test_split_joints_leaves_coarse_grids_and_cervical_levels_alone():
    """3 mm voxels show no joint gap (nothing to re-decide); C-spine labels stay as they are."""
    from needleplan.segmentation._v_joints import split_joints

    hu, labels = _two_processes(24)
    assert (split_joints(hu, labels, (3.0, 3.0, 3.0)) == labels).all()
    cerv = np.where(labels == 21, 5, np.where(labels == 20, 4, 0)).astype(np.uint8)
    assert (split_joints(hu, cerv, (1.0, 1.0, 1.0)) == cerv).all()
