"""Small cached synthetic spines for every area's tests.

Each helper builds its phantom once per test session (``functools.lru_cache``) and returns
the same :class:`needleplan.phantom.Phantom`; its arrays are made read-only so a test
cannot change what the next test sees (copy before modifying).

Examples
--------
>>> from tests.phantoms import lumbar_phantom
>>> ph = lumbar_phantom()
>>> ph.truth.vertebra("L2").pedicles["left"].width_mm
8.2
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from needleplan.phantom import Phantom, make_phantom

__all__ = [
    "lumbar_phantom",
    "thoracolumbar_phantom",
    "thoracic_phantom",
    "cervical_phantom",
    "pathology_phantom",
    "rotated_phantom",
    "coarse_phantom",
    "lumbosacral_phantom",
    "upper_cervical_phantom",
    "scoliotic_phantom",
]


def _freeze(ph: Phantom) -> Phantom:
    arrays = [ph.volume.voxels, ph.truth.labels, ph.truth.parts, ph.truth.canal, *ph.structures.values()]
    for a in arrays:
        if isinstance(a, np.ndarray):
            a.flags.writeable = False
    return ph


@lru_cache(maxsize=None)
def lumbar_phantom(spacing_mm: float = 1.0, patient_position: str = "HFP") -> Phantom:
    """L1-L3, 1 mm, prone, no pathology (the default phantom)."""
    return _freeze(make_phantom(("L1", "L2", "L3"), spacing_mm=(spacing_mm,) * 3,
                                patient_position=patient_position))


@lru_cache(maxsize=None)
def thoracolumbar_phantom() -> Phantom:
    """T11-L2 with ribs on T11/T12 (level naming from the lowest rib), 1 mm, prone."""
    return _freeze(make_phantom(("T11", "T12", "L1", "L2")))


@lru_cache(maxsize=None)
def thoracic_phantom() -> Phantom:
    """T7-T9 with ribs and lungs; the left T8 pedicle is narrow (3.5 mm)."""
    return _freeze(make_phantom(("T7", "T8", "T9"), narrow_pedicle_level=("T8", "left")))


@lru_cache(maxsize=None)
def cervical_phantom() -> Phantom:
    """C4-C6 supine with trachea, oesophagus, carotids and jugulars (contrast)."""
    return _freeze(make_phantom(("C4", "C5", "C6"), patient_position="HFS"))


@lru_cache(maxsize=None)
def pathology_phantom() -> Phantom:
    """L1-L3: lytic lesion and posterior-wall defect at L2, vertebra plana at L3."""
    return _freeze(make_phantom(("L1", "L2", "L3"), lesion_level="L2", posterior_wall_defect_level="L2",
                                plana_level="L3"))


@lru_cache(maxsize=None)
def rotated_phantom() -> Phantom:
    """L1-L3 rotated 10 deg about S (axial rotation), 5 deg about L and 4 deg about P."""
    return _freeze(make_phantom(("L1", "L2", "L3"), rotation_deg=(5.0, 4.0, 10.0)))


@lru_cache(maxsize=None)
def coarse_phantom() -> Phantom:
    """L2-L4 at 2 x 2 x 3 mm, supine: quick and anisotropic."""
    return _freeze(make_phantom(("L2", "L3", "L4"), spacing_mm=(2.0, 2.0, 3.0), patient_position="HFS"))


@lru_cache(maxsize=None)
def lumbosacral_phantom() -> Phantom:
    """L4-L5 and the sacrum (S1 with alae, fused S2) with iliac wings, 1.5 mm, prone."""
    return _freeze(make_phantom(("L4", "L5", "S"), spacing_mm=(1.5, 1.5, 1.5)))


@lru_cache(maxsize=None)
def upper_cervical_phantom() -> Phantom:
    """C1-C4 supine: the atlas ring (no body) around C2's dens, with the neck's soft tissue."""
    return _freeze(make_phantom(("C1", "C2", "C3", "C4"), patient_position="HFS"))


@lru_cache(maxsize=None)
def scoliotic_phantom() -> Phantom:
    """T11-L3, a 30 deg lateral curve convex to the right (apex L1, rotated toward the
    convexity), ribs on T11/T12 (naming anchor), 1 mm, prone."""
    return _freeze(make_phantom(("T11", "T12", "L1", "L2", "L3"), scoliosis_cobb_deg=30.0))
