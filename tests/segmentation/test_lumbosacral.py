"""The lumbosacral junction (issue 3): L4-L5 on the sacrum, 1.5 mm phantom.

:func:`tests.phantoms.lumbosacral_phantom` is L4, L5 and the sacrum (S1 with alae, fused S2)
with iliac wings.  The articular processes of L5 and S1 interlock without a visible joint
gap; the geodesic split cut them across, giving the tops of S1's superior articular
processes to L5 (L5 Dice 0.932).  They are re-decided along the cortical ridge between the
two processes' marrow (:func:`needleplan.segmentation._v_sacrum.split_lumbosacral_facets`),
and bone cut by a tilted disc slab is left for the CT-grid outline to give back to its
body (``_v_label.SLAB_UNLABELLED``).

Measured (2026-11-26): L4 0.986, L5 0.955; L5 on the truth sacrum 2.7 ml (was 4.5 ml),
truth L5 labelled sacrum 0.5 ml (was 1.3 ml); the sacral label 112 ml, 96.5 % on the sacrum.
"""

from __future__ import annotations

import numpy as np
import pytest

from needleplan.segmentation._vertebrae import segment_vertebrae
from tests.phantoms import lumbosacral_phantom
from tests.segmentation.conftest import dice

L4, L5, S = 23, 24, 26


@pytest.fixture(scope="module")
def seg():
    ph = lumbosacral_phantom()
    return ph, segment_vertebrae(ph.volume)


def _ml(mask, ph) -> float:
    return float(mask.sum() * np.prod(ph.volume.spacing_mm) / 1000.0)


def test_named_from_the_sacrum(seg):
    _, res = seg
    assert res.levels == ["L4", "L5", "S"], res.messages


def test_dice_per_level(seg):
    ph, res = seg
    truth, lab = ph.truth.labels, res.labels
    assert dice(lab == L4, truth == L4) >= 0.98
    assert dice(lab == L5, truth == L5) >= 0.95


def test_facets_follow_their_own_vertebra(seg):
    ph, res = seg
    truth, lab = ph.truth.labels, res.labels
    # S1's superior articular processes and lamina stay with the sacrum, L5's inferior
    # processes with L5 (measured 3.7 ml / 0.37 ml with the rim trim and the endplate walk;
    # 4.5 / 1.3 ml before the facet split)
    assert _ml((lab == L5) & (truth == S), ph) < 4.0
    assert _ml((lab == S) & (truth == L5), ph) < 1.0


def test_sacral_label_keeps_s1(seg):
    ph, res = seg
    truth, lab = ph.truth.labels, res.labels
    sac = lab == S
    assert _ml(sac, ph) > 80.0  # S1's body and alae, not only its arch
    assert (truth[sac] == S).mean() > 0.95
