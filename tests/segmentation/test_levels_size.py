"""Level names without an anchor: region and a size-based guess, always flagged as a guess."""

from __future__ import annotations

import numpy as np
import pytest

from needleplan.segmentation import level_name
from needleplan.segmentation._levels_size import (
    GUESS_CONFIDENCE,
    guess_levels_from_size,
    typical_body_depth_mm,
    typical_pitch_mm,
)
from needleplan.segmentation._vertebrae import segment_vertebrae
from tests.phantoms import lumbar_phantom, pathology_phantom, rotated_phantom, thoracic_phantom


def _sizes(caudal: int, n: int, scale: float = 1.0):
    labs = caudal - np.arange(n)
    return (typical_body_depth_mm(labs) / 2.0 * scale,
            float(np.mean(typical_pitch_mm(labs))) * scale)


@pytest.mark.parametrize("caudal, n, ribs, region", [
    (5, 3, False, "cervical"),   # C3-C5
    (7, 4, False, "cervical"),   # C4-C7
    (16, 3, True, "thoracic"),   # T7-T9
    (19, 5, True, "thoracic"),   # T8-T12
    (22, 3, False, "lumbar"),    # L1-L3
    (24, 5, False, "lumbar"),    # L1-L5
])
def test_typical_sizes_are_named_right(caudal, n, ribs, region):
    radius, pitch = _sizes(caudal, n)
    labels, conf, msg = guess_levels_from_size(radius, pitch, [ribs] * n)
    assert labels == [caudal - m for m in range(n)]
    assert region in msg and "guess" in msg
    assert conf <= GUESS_CONFIDENCE[0] < 0.5


@pytest.mark.parametrize("scale", [0.85, 1.15])
def test_a_small_or_large_spine_stays_in_its_region(scale):
    """Individual size differs by 10-20 %: the region holds, the level may shift (by up to
    four in the long thoracic spine: why the confidence of a guess stays low)."""
    for caudal, n, ribs, lo, hi, shift in ((6, 3, False, 3, 7, 2), (16, 3, True, 8, 19, 4),
                                           (23, 3, False, 20, 24, 2)):
        radius, pitch = _sizes(caudal, n, scale)
        labels, conf, _ = guess_levels_from_size(radius, pitch, [ribs] * n)
        assert all(lo <= lab <= hi for lab in labels), (caudal, scale, labels)
        assert abs(labels[0] - caudal) <= shift
        assert conf <= GUESS_CONFIDENCE[0]


def test_more_pieces_than_the_region_holds_runs_past_its_end():
    radius, pitch = _sizes(24, 7)  # L5 up to T11 sizes, no ribs seen
    labels, conf, _ = guess_levels_from_size(radius, pitch, [False] * 7)
    assert labels[0] == 24 and labels == sorted(labels, reverse=True) and len(set(labels)) == 7


@pytest.mark.parametrize("make, expected", [
    (lumbar_phantom, ["L1", "L2", "L3"]),
    (pathology_phantom, ["L1", "L2", "L3"]),
    (rotated_phantom, ["L1", "L2", "L3"]),
    (thoracic_phantom, ["T7", "T8", "T9"]),
])
def test_phantoms_without_anchor_or_hint(make, expected):
    """Phantom spines without sacrum, rib transition or dens: named from size, said to be a guess."""
    ph = make()
    res = segment_vertebrae(ph.volume)
    assert res.levels == expected
    assert res.naming_confidence <= GUESS_CONFIDENCE[0]
    assert any("guess" in m for m in res.messages)
    truth_names = [level_name(int(k)) for k in np.unique(ph.truth.labels) if k]
    assert sorted(truth_names) == sorted(expected)
