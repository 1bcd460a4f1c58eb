"""Thoracic vertebrae: Dice per level with the ribs kept out, and the T13 naming rule.

Phantoms of :mod:`tests.phantoms` (1 mm): T7-T9 with ribs and lungs, T11-L2 with the
floating ribs of T11/T12.  The issue's target is Dice >= 0.95 per level; it is reached on
every level; floors just under today's figures guard against regressions.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from needleplan.segmentation import _levels
from needleplan.segmentation._v_label import Segments
from needleplan.segmentation._vertebrae import segment_vertebrae
from needleplan.segmentation.model import VERSE_NAMES, level_label, level_name
from tests import phantoms
from tests.segmentation.conftest import dice as _dice

TARGET = 0.95
#: Floors per phantom and level (reached 2026-11-26 with the rib-head cut (_v_label.HEAD_CUT),
#: the CT-grid rib contacts (_v_refine.RIB_SPLIT) and the partial-volume rim trim: thoracic
#: T7 .964 T8 .976 T9 .981, thoracolumbar T11 .976 T12 .976 L1 .981 L2 .984; before this
#: round .923 .945 .958, .955 .957 .977 .980; before the rib cut .852 .883 .913, .927 .927 .956 .958).
FLOORS = {
    "thoracic": {"T7": 0.955, "T8": 0.965, "T9": 0.97},
    "thoracolumbar": {"T11": 0.965, "T12": 0.965, "L1": 0.97, "L2": 0.975},
}
#: Largest share of the rib voxels within 25 mm of a vertebra that may carry its label.
#: (2026-11-26 with HEAD_CUT and RIB_SPLIT: see the printed share; 0.131 / 0.24 without them,
#: 0.18 / 0.33 before the rib cut)
RIB_SHARE_MAX = {"thoracic": 0.05, "thoracolumbar": 0.13}
#: Rib voxels further than this from every vertebra are never labelled.
FAR_MM = 10.0


@pytest.fixture(scope="module")
def results():
    """Segmentation of each phantom (middle level given as a hint, as measure_all does)."""
    out = {}
    for name in FLOORS:
        ph = getattr(phantoms, name + "_phantom")()
        truth = ph.truth.labels
        labs = sorted(set(np.unique(truth)) - {0, 26})
        mid = labs[len(labs) // 2]
        hint = (level_name(int(mid)), ph.volume.to_lps(np.argwhere(truth == mid).mean(0)))
        out[name] = (ph, segment_vertebrae(ph.volume, hint=hint))
    return out


CASES = [(name, lev) for name, levels in FLOORS.items() for lev in levels]


@pytest.mark.parametrize("name,level", CASES)
def test_dice_floor(results, name, level):
    ph, res = results[name]
    lab = level_label(level)
    d = _dice(res.labels == lab, ph.truth.labels == lab)
    assert d >= FLOORS[name][level], f"{name} {level}: Dice {d:.3f}"


@pytest.mark.parametrize("name,level", CASES)
def test_dice_target(results, name, level):
    ph, res = results[name]
    lab = level_label(level)
    d = _dice(res.labels == lab, ph.truth.labels == lab)
    assert d >= TARGET, f"{name} {level}: Dice {d:.3f}"


@pytest.mark.parametrize("name", list(FLOORS))
def test_ribs_kept_out(results, name):
    ph, res = results[name]
    ribs = np.asarray(ph.structures["ribs"]) > 0
    vert = ph.truth.labels > 0
    sp = ph.volume.spacing_mm
    dist_mm = ndi.distance_transform_edt(~vert, sampling=sp)
    near_ribs = ribs & (dist_mm <= 25.0)
    share = float((near_ribs & (res.labels > 0)).sum()) / max(int(near_ribs.sum()), 1)
    assert share <= RIB_SHARE_MAX[name], f"{name}: {share:.1%} of the rib voxels near the spine labelled"
    # and no rib voxel further than FAR_MM from the vertebra is labelled (the shafts)
    far = ribs & (dist_mm > FAR_MM)
    assert int((far & (res.labels > 0)).sum()) == 0


# ------------------------------------------------------------------ T13 naming


def _fake_segments(n: int) -> Segments:
    return Segments(labels=np.zeros((2, 2, 2), np.uint8), n=n, bounds=[(0, 0)] * n,
                    partial=[m in (0, n - 1) for m in range(n)])


def _name(monkeypatch, ribbed: list[bool], *, sacrum: bool = False):
    """name_levels on ``len(ribbed)`` pieces (caudal first) with the given rib pattern."""
    n = len(ribbed)
    sides = [("rib", "rib") if r else ("", "") for r in ribbed]
    monkeypatch.setattr(_levels, "find_ribs", lambda g, c, s: sides)
    monkeypatch.setattr(_levels, "is_sacrum",
                        lambda g, c, s, p: (True, "sacrum found") if sacrum else (False, "no ilia"))
    monkeypatch.setattr(_levels, "_touches_ilia", lambda *a, **k: False)
    naming = _levels.name_levels(None, None, _fake_segments(n), pitch_mm=25.0)
    return [VERSE_NAMES.get(x, "?") for x in naming.labels], naming


def test_thirteenth_thoracic_counts_from_t1():
    ribbed = [False, False] + [True] * 13 + [False]  # L2 L1 | 13 rib-bearing | C7
    assert _levels.thirteenth_thoracic(15, 3, ribbed) == 3
    assert _levels.thirteenth_thoracic(14, 3, ribbed) is None  # twelve: T12
    assert _levels.thirteenth_thoracic(None, 3, ribbed) is None  # T1 not in view
    assert _levels.thirteenth_thoracic(15, None, ribbed) is None
    # ribs missed on three of the thirteen: not trusted
    sparse = [False, False] + [True, False, False, False] + [True] * 9 + [False]
    assert _levels.thirteenth_thoracic(15, 3, sparse) is None


def test_t13_named_when_thirteen_rib_bearing(monkeypatch):
    names, naming = _name(monkeypatch, [False, False] + [True] * 13 + [False, False])
    assert names == ["L2", "L1", "T13"] + [f"T{k}" for k in range(12, 0, -1)] + ["C7", "C6"]
    assert any("T13" in m for m in naming.messages)
    assert naming.naming_confidence >= 0.6


def test_twelve_rib_bearing_stay_t12(monkeypatch):
    names, naming = _name(monkeypatch, [False, False] + [True] * 12 + [False, False])
    assert names == ["L2", "L1"] + [f"T{k}" for k in range(12, 0, -1)] + ["C7", "C6"]
    assert not any("T13" in m for m in naming.messages)


def test_t13_with_sacrum_and_five_lumbar(monkeypatch):
    ribbed = [False] * 6 + [True] * 13 + [False, False]  # S L5..L1 | T13..T1 | C7 C6
    names, naming = _name(monkeypatch, ribbed, sacrum=True)
    thoracic = ["T13"] + [f"T{k}" for k in range(12, 0, -1)]
    assert names == ["S", "L5", "L4", "L3", "L2", "L1"] + thoracic + ["C7", "C6"]
    assert any("T13" in m for m in naming.messages)
    assert not any("check the level names" in m for m in naming.messages)
