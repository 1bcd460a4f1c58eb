"""Level naming: counting from anchors, and the anchors found on a real chest CT."""

from __future__ import annotations

import numpy as np
import pytest

from needleplan.io import load_ct
from needleplan.phantom import make_phantom
from needleplan.segmentation import _v_column
from needleplan.segmentation._levels import SACRUM, T1, T12, _count
from needleplan.segmentation._vertebrae import segment_vertebrae
from needleplan.segmentation.model import VERSE_NAMES
from tests.conftest import require_shared


def _names(labels):
    return [VERSE_NAMES.get(x, "?") for x in labels]


def test_count_from_the_sacrum():
    # pieces are numbered caudal -> cranial; piece 1 is the sacrum
    assert _names(_count(1, SACRUM, 4)) == ["S", "L5", "L4", "L3"]


def test_count_from_t12_crosses_into_lumbar_and_thoracic():
    assert _names(_count(2, T12, 4)) == ["L1", "T12", "T11", "T10"]


def test_count_from_t1_reaches_the_neck():
    assert _names(_count(3, T1, 5)) == ["T3", "T2", "T1", "C7", "C6"]


def test_count_six_lumbar_names_l6():
    assert _names(_count(1, SACRUM, 3, lumbar=6)) == ["S", "L6", "L5"]


def test_count_past_c1_gives_no_name():
    assert _count(1, 2, 3) == [2, 1, 0]


@pytest.fixture(scope="module")
def chest(lidc_chest):
    return lidc_chest


@pytest.mark.needs_data
@pytest.mark.slow
def test_chest_levels_are_thoracic_and_anchored_on_the_ribs(chest):
    vol, res = chest
    names = res.levels
    # the README says "about C6-T11"; counting the ribs (12 posterior rib crossings per side
    # 35-50 mm lateral of the midline, the highest running forward at the apex as the first
    # rib does) gives C6-T12, C6 partly in view at the top
    assert names[:2] == ["C6", "C7"] and names[-1] == "T12", names
    assert len(names) >= 12
    assert sum(n.startswith("T") for n in names) >= 11
    assert any("rib-bearing" in m for m in res.messages)
    assert not any("guess" in m for m in res.messages)
    assert res.naming_confidence >= 0.5
    # names run cranio-caudally along the centreline
    z = {lab: vol.to_lps(np.argwhere(res.labels == lab).mean(0))[2] for lab in res.confidence}
    order = sorted(z, key=lambda k: -z[k])
    assert order == sorted(z)


@pytest.mark.needs_data
def test_progress_reports_fractions():
    vol = load_ct(require_shared("tptbox-l3-1.5mm", "sub-ct_label-22_ct.nii.gz"))
    seen = []
    segment_vertebrae(vol, progress=lambda f, m: seen.append((f, m)))
    fr = [f for f, _ in seen]
    assert fr[0] == 0.0 and fr[-1] == 1.0 and fr == sorted(fr)


def test_marrow_dips_are_not_discs():
    """L3-S at 2 mm: the bodies' cortex is seen only in part, so bodyness and HU dip inside
    them too; those dips keep bone around them and no endplates near them, so they are not
    taken for discs: three discs, every level named right, no doubt raised."""
    ph = make_phantom(("L3", "L4", "L5", "S"), spacing_mm=2.0)
    res = segment_vertebrae(ph.volume)
    assert res.levels == ["L3", "L4", "L5", "S"], (res.levels, res.messages)
    assert not any("probably not discs" in m for m in res.messages)
    assert res.naming_confidence > 0.5


@pytest.mark.parametrize("levels, spacing_mm", [(("L3", "L4", "L5", "S"), 2.5),
                                                 (("T12", "L1", "L2", "L3"), 2.0)])
def test_coarse_voxels_split_at_discs_only(levels, spacing_mm):
    """Coarse voxels (2-2.5 mm) with the sacrum or the last ribs as the anchor: no piece is
    split at a marrow dip, so the count from the anchor gives the right names (before
    the disc test: L1-S and T11-S, the latter with a 'sacrum' made of split bodies)."""
    ph = make_phantom(levels, spacing_mm=spacing_mm)
    res = segment_vertebrae(ph.volume)
    assert res.levels == list(levels), (res.levels, res.messages)
    assert res.naming_confidence > 0.5


def test_false_discs_are_flagged_not_silent(monkeypatch):
    """The safety net behind the disc test: with marrow dips let through as discs (pieces
    10-16 mm tall), the names counted from the sacrum run high; the pitch is implausible
    for bodies that deep, so the message says so and the confidence drops."""
    monkeypatch.setattr(_v_column, "DISC_GAP_FRAC", np.inf)  # every dip is a disc
    ph = make_phantom(("L3", "L4", "L5", "S"), spacing_mm=2.0)
    res = segment_vertebrae(ph.volume)
    assert res.levels != ["L3", "L4", "L5", "S"]
    assert any("probably not discs" in m for m in res.messages), res.messages
    assert res.naming_confidence <= 0.3


def test_disc_needs_a_bone_gap_or_endplates():
    # bodyness fraction, HU contrast between the nearest endplates, typical contrast
    frac = np.array([0.0, 0.1, 0.5, 0.5, 0.9])
    plate = np.array([0.0, 10.0, 200.0, 30.0, 20.0])
    assert _v_column._not_disc(frac, plate, 300.0).tolist() == [False, False, False, True, True]
