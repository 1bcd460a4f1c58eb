"""Per-level sizes and angles of the synthetic spine, interpolated from anchor tables.

Pedicle widths and heights follow the morphometry table of the project's clinical notes
(Zindrick 1987, Lien 2007, Panjabi 1992) at T1, T4, T6, T8, T10, T12 and L1-L5; cervical
values and body sizes are typical adult figures.  Every table is keyed by VerSe label
number (C3 = 3 ... T1 = 8 ... L1 = 20 ... L5 = 24, sacrum = 26) and interpolated linearly;
the atlas and the axis (C1, C2) have their own fixed sizes (:data:`UPPER_CERVICAL`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LevelGeometry", "level_geometry", "region_of", "UPPER_CERVICAL"]


def _table(pairs: dict[int, float]):
    keys = np.array(sorted(pairs), dtype=float)
    vals = np.array([pairs[int(k)] for k in keys], dtype=float)
    return keys, vals


# label: value.  C3=3, C5=5, C7=7, T1=8, T4=11, T6=13, T8=15, T10=17, T12=19, L1=20 ... L5=24, S=26
_PEDICLE_WIDTH = _table({3: 5.0, 5: 5.5, 7: 6.4, 8: 9.3, 11: 4.5, 13: 5.5, 15: 6.3, 17: 6.5, 19: 8.3,
                         20: 7.5, 21: 8.2, 22: 9.7, 23: 11.5, 24: 14.6, 26: 15.0})
_PEDICLE_HEIGHT = _table({3: 7.0, 5: 7.3, 7: 7.8, 8: 9.0, 11: 10.3, 13: 10.2, 15: 10.9, 17: 13.7,
                          19: 15.0, 20: 15.4, 21: 14.9, 22: 14.5, 23: 14.2, 24: 14.7, 26: 14.0})
# transverse (medial) angle, deg: cervical ~40, T1 ~27, near 0 at T12, rising to ~30 at L5
_MEDIAL_DEG = _table({3: 42.0, 7: 36.0, 8: 27.0, 11: 12.0, 13: 8.0, 15: 5.0, 17: 3.0, 19: 0.5,
                      20: 8.0, 21: 11.0, 22: 15.0, 23: 20.0, 24: 30.0, 26: 30.0})
# sagittal angle, deg: anterior end of the pedicle lower than its posterior end
_SAGITTAL_DEG = _table({3: 2.0, 7: 4.0, 8: 6.0, 13: 10.0, 17: 8.0, 19: 5.0, 20: 3.0, 24: 1.0, 26: 0.0})
# vertebral body: width (lateral), depth (antero-posterior), height, mm
_BODY_W = _table({3: 17.0, 7: 22.0, 8: 27.0, 11: 28.0, 15: 32.0, 17: 36.0, 19: 41.0, 20: 44.0,
                  22: 48.0, 24: 52.0, 26: 50.0})
_BODY_D = _table({3: 16.0, 7: 17.0, 8: 17.5, 11: 22.0, 15: 27.0, 17: 30.0, 19: 35.0, 20: 41.0,
                  21: 42.5, 22: 44.0, 23: 45.5, 24: 47.0, 26: 45.0})
_BODY_H = _table({3: 13.0, 7: 14.5, 8: 15.5, 11: 17.0, 15: 19.0, 17: 21.0, 19: 23.5, 20: 25.0,
                  21: 26.0, 22: 27.0, 23: 27.0, 24: 26.0, 26: 28.0})
# disc height below the level, mm
_DISC_H = _table({3: 5.0, 7: 5.5, 8: 4.5, 13: 5.0, 19: 7.0, 20: 9.0, 21: 10.0, 22: 11.0, 23: 11.0,
                  24: 10.5, 26: 10.0})
# spinal canal: width (interpedicular) and depth, mm
_CANAL_W = _table({3: 25.0, 7: 24.5, 8: 21.0, 11: 17.0, 17: 17.5, 19: 20.0, 20: 24.0, 22: 25.0,
                   24: 27.0, 26: 28.0})
_CANAL_D = _table({3: 14.5, 7: 14.5, 8: 15.0, 15: 16.0, 19: 18.0, 20: 19.0, 24: 20.0, 26: 18.0})
# sagittal alignment: tilt of the body's superior axis toward anterior, deg
_TILT_DEG = _table({3: -4.0, 5: 3.0, 7: 10.0, 8: 10.0, 11: 5.0, 14: 0.0, 17: -5.0, 19: -7.0,
                    20: -6.0, 21: -3.0, 22: 0.0, 23: 4.0, 24: 10.0, 25: 14.0, 26: 34.0})


def _at(table, label: float) -> float:
    keys, vals = table
    return float(np.interp(label, keys, vals))


def region_of(label: int) -> str:
    """``'cervical'``, ``'thoracic'``, ``'lumbar'`` or ``'sacral'`` for a VerSe label."""
    if label <= 7:
        return "cervical"
    if label <= 19:
        return "thoracic"
    if label <= 25:
        return "lumbar"
    return "sacral"


@dataclass
class LevelGeometry:
    """Nominal dimensions of one vertebra (mm, degrees) in its local frame.

    The local frame has its origin at the body centre, +x toward the patient's left,
    +y posterior and +z along the body's superior axis.
    """

    label: int
    region: str
    body_width_mm: float
    body_depth_mm: float
    body_height_mm: float
    disc_below_mm: float
    canal_width_mm: float
    canal_depth_mm: float
    pedicle_width_mm: float
    pedicle_height_mm: float
    medial_deg: float
    sagittal_deg: float
    tilt_deg: float
    isthmus_offset_mm: float  # isthmus centre behind the posterior wall of the body
    pedicle_post_mm: float  # pedicle length from the isthmus back to the arch
    lamina_thick_mm: float
    lamina_height_mm: float
    spinous_len_mm: float
    spinous_thick_mm: float
    spinous_height_mm: float
    spinous_down_deg: float
    tp_len_mm: float
    tp_back_deg: float
    tp_up_deg: float
    tp_thick_mm: float
    tp_height_mm: float
    facet_radius_mm: float
    has_rib: bool


#: The atlas (C1) and the axis (C2) are not interpolated: typical adult sizes.  C1 has no
#: body; its "body" entries are nominal (soft-tissue layout, stacking: the height is that of
#: the lateral masses, ``disc_below_mm`` the atlanto-axial joint gap); its ring is drawn by
#: :meth:`needleplan._phantom.vertebra.VertebraModel.atlas`.  C2's body height excludes the
#: dens; its pedicles rise ~22 deg cranially toward the front.
UPPER_CERVICAL = {
    1: dict(body_width_mm=17.0, body_depth_mm=16.0, body_height_mm=14.0, disc_below_mm=3.5,
            canal_width_mm=24.0, canal_depth_mm=17.0, pedicle_width_mm=7.0, pedicle_height_mm=4.5,
            medial_deg=10.0, sagittal_deg=0.0, tilt_deg=-5.0, isthmus_offset_mm=4.5,
            pedicle_post_mm=4.0, lamina_thick_mm=5.0, lamina_height_mm=8.0, spinous_len_mm=4.0,
            spinous_thick_mm=4.5, spinous_height_mm=7.0, spinous_down_deg=0.0, tp_len_mm=9.0,
            tp_back_deg=0.0, tp_up_deg=0.0, tp_thick_mm=5.0, tp_height_mm=9.0, facet_radius_mm=7.0),
    2: dict(body_width_mm=18.0, body_depth_mm=16.0, body_height_mm=20.0, disc_below_mm=5.0,
            canal_width_mm=24.0, canal_depth_mm=16.0, pedicle_width_mm=5.5, pedicle_height_mm=8.0,
            medial_deg=35.0, sagittal_deg=-22.0, tilt_deg=-5.0, isthmus_offset_mm=4.5,
            pedicle_post_mm=4.0, lamina_thick_mm=6.0, lamina_height_mm=14.0, spinous_len_mm=26.0,
            spinous_thick_mm=8.0, spinous_height_mm=10.0, spinous_down_deg=20.0, tp_len_mm=7.0,
            tp_back_deg=-35.0, tp_up_deg=0.0, tp_thick_mm=5.0, tp_height_mm=6.0, facet_radius_mm=5.5),
}


def level_geometry(label: int) -> LevelGeometry:
    """The nominal :class:`LevelGeometry` of VerSe level ``label`` (1-24, 26)."""
    if label in UPPER_CERVICAL:
        return LevelGeometry(label=int(label), region="cervical", has_rib=False, **UPPER_CERVICAL[label])
    g = float(label)
    reg = region_of(label)
    if reg == "cervical":
        extra = dict(isthmus_offset_mm=4.5, pedicle_post_mm=4.0, lamina_thick_mm=3.5,
                     lamina_height_mm=11.0, spinous_len_mm=18.0 + 4.0 * (g - 3),
                     spinous_thick_mm=4.5, spinous_height_mm=7.0, spinous_down_deg=20.0,
                     tp_len_mm=9.0, tp_back_deg=-35.0, tp_up_deg=0.0, tp_thick_mm=5.0,
                     tp_height_mm=6.0, facet_radius_mm=5.0)
    elif reg == "thoracic":
        t = (g - 8) / 11.0
        extra = dict(isthmus_offset_mm=5.0, pedicle_post_mm=5.5, lamina_thick_mm=5.0,
                     lamina_height_mm=15.0 + 6.0 * t, spinous_len_mm=36.0 - 6.0 * t,
                     spinous_thick_mm=5.5, spinous_height_mm=7.5 + 5.0 * t,
                     spinous_down_deg=45.0 - 30.0 * t ** 2, tp_len_mm=22.0 - 8.0 * t,
                     tp_back_deg=35.0, tp_up_deg=10.0, tp_thick_mm=7.0, tp_height_mm=9.0,
                     facet_radius_mm=5.0 + 1.0 * t)
    elif reg == "sacral":
        extra = dict(isthmus_offset_mm=6.0, pedicle_post_mm=7.0, lamina_thick_mm=6.0,
                     lamina_height_mm=20.0, spinous_len_mm=14.0, spinous_thick_mm=6.0,
                     spinous_height_mm=12.0, spinous_down_deg=25.0, tp_len_mm=0.0,
                     tp_back_deg=0.0, tp_up_deg=0.0, tp_thick_mm=0.0, tp_height_mm=0.0,
                     facet_radius_mm=7.0)
    else:
        tp = {20: 16.0, 21: 22.0, 22: 26.0, 23: 22.0, 24: 20.0}.get(label, 18.0)
        extra = dict(isthmus_offset_mm=7.0, pedicle_post_mm=8.0, lamina_thick_mm=6.5,
                     lamina_height_mm=24.0, spinous_len_mm=30.0, spinous_thick_mm=7.0,
                     spinous_height_mm=16.0, spinous_down_deg=8.0, tp_len_mm=tp,
                     tp_back_deg=12.0, tp_up_deg=0.0, tp_thick_mm=5.5, tp_height_mm=10.0,
                     facet_radius_mm=6.5)
    return LevelGeometry(
        label=int(label), region=reg,
        body_width_mm=_at(_BODY_W, g), body_depth_mm=_at(_BODY_D, g),
        body_height_mm=_at(_BODY_H, g), disc_below_mm=_at(_DISC_H, g),
        canal_width_mm=_at(_CANAL_W, g), canal_depth_mm=_at(_CANAL_D, g),
        pedicle_width_mm=_at(_PEDICLE_WIDTH, g), pedicle_height_mm=_at(_PEDICLE_HEIGHT, g),
        medial_deg=_at(_MEDIAL_DEG, g), sagittal_deg=_at(_SAGITTAL_DEG, g),
        tilt_deg=_at(_TILT_DEG, g), has_rib=(8 <= label <= 19), **extra,
    )
