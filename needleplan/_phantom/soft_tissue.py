"""Soft tissue around the synthetic spine: skin, fat, muscles, lungs, vessels, neck organs.

Everything is drawn as axial ellipses whose centres and sizes follow the spine from level
to level (interpolated along the unrotated superior axis), so the tissue moves with the
spine's sagittal curve.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SpineProfile", "paint_soft_tissue", "HU"]

#: Nominal tissue values (HU) before blur and noise.
HU = {
    "air": -1000.0, "lung": -860.0, "fat": -95.0, "skin": 35.0, "muscle": 52.0,
    "viscera": 32.0, "kidney": 38.0, "blood": 42.0, "contrast_artery": 230.0,
    "contrast_vein": 170.0, "thyroid": 95.0, "cartilage": 110.0, "csf": 8.0,
    "cord": 32.0, "epidural_fat": -70.0, "nucleus": 72.0, "annulus": 95.0,
    "soft_lesion": 38.0,
}


class SpineProfile:
    """Per-level quantities interpolated along the (unrotated) superior axis.

    Parameters
    ----------
    z_mm : (n,) array, ascending body-centre z of the levels
    values : dict of name -> (n,) array
    """

    def __init__(self, z_mm, values):
        order = np.argsort(z_mm)
        self.z = np.asarray(z_mm, float)[order]
        self.values = {k: np.asarray(v, float)[order] for k, v in values.items()}

    def __call__(self, name, zu):
        return np.interp(zu, self.z, self.values[name]).astype(np.float32)


def _ellipse(x, y, cx, cy, ax, ay):
    return ((x - cx) / np.maximum(ax, 1e-3)) ** 2 + ((y - cy) / np.maximum(ay, 1e-3)) ** 2 <= 1.0


def paint_soft_tissue(hu, xu, yu, zu, prof: SpineProfile, *, vessels_contrast: bool = True):
    """Paint skin, fat, muscle and organs into ``hu`` in place; return structure masks.

    ``xu, yu, zu`` are the unrotated-frame LPS coordinates (broadcastable to ``hu``).
    """
    f = lambda name: prof(name, zu)  # noqa: E731
    if "x_center" in prof.values:  # scoliosis: everything follows the column's lateral shift
        xu = xu - f("x_center")
    yc = f("y_center")
    d = f("body_depth")
    w = f("body_width")
    cw = f("canal_width")
    cd = f("canal_depth")
    reg = f("region")  # 0 cervical, 1 thoracic, 2 lumbar (interpolated)
    ax, ay, oy = f("outline_ax"), f("outline_ay"), f("outline_oy")
    fat = f("fat_mm")
    shape = hu.shape
    bc = lambda m: np.broadcast_to(m, shape)  # noqa: E731

    outline = bc(_ellipse(xu, yu, 0.0, yc + oy, ax, ay))
    inner = bc(_ellipse(xu, yu, 0.0, yc + oy, ax - fat, ay - fat))
    skin_inner = bc(_ellipse(xu, yu, 0.0, yc + oy, ax - 1.8, ay - 1.8))
    hu[outline] = HU["skin"]
    hu[skin_inner] = HU["fat"]
    hu[inner] = HU["viscera"]
    structures = {"body_outline": outline.copy()}

    post_wall = yc + 0.5 * d
    lumbar = reg > 1.5
    thoracic = (reg > 0.5) & (reg <= 1.5)
    cervical = reg <= 0.5

    # retroperitoneal fat behind the abdominal viscera (lumbar)
    retro = inner & bc(lumbar & (yu > yc - 0.5 * d - 35.0))
    hu[retro] = HU["fat"]
    # mediastinal fat around the thoracic spine
    medi = inner & bc(thoracic & _ellipse(xu, yu, 0.0, yc - 0.5 * d - 10.0, 0.5 * w + 22.0, 45.0))
    hu[medi] = HU["fat"] + 40.0

    # lungs: inside the chest wall, beside the mediastinum and the spine, above a domed
    # diaphragm (lowest in the posterior costophrenic recess) and below the apex
    z_dia = f("diaphragm_z") + 0.45 * (yc - yu) + 0.15 * np.maximum(0.0, 80.0 - np.abs(xu))
    z_apex = f("apex_z") - 0.25 * np.abs(np.abs(xu) - 45.0)
    rib_back = post_wall + 30.0
    chest_cy = yc - 10.0
    chest = _ellipse(xu, yu, 0.0, chest_cy, 0.5 * w + 100.0, rib_back - chest_cy)
    chest &= _ellipse(xu, yu, 0.0, yc + oy, ax - fat - 9.0, ay - fat - 9.0)
    medi_x = 22.0 + 0.25 * w
    medi = _ellipse(xu, yu, 0.0, yc - 0.5 * d - 48.0, medi_x, 55.0)
    spine_keep = (np.abs(xu / (0.5 * w + 6.0)) ** 2.5 + np.abs((yu - yc - 0.1 * d) / (0.5 * d + 16.0)) ** 2.5) <= 1.0
    lungs = np.zeros(shape, bool)
    for s_ in (1.0, -1.0):
        side = _ellipse(xu, yu, s_ * (0.5 * w + 52.0), yc - 8.0, 56.0, 82.0)
        lungs |= bc(side & chest & ~medi & ~spine_keep & (zu > z_dia) & (zu < z_apex))
    lungs &= inner
    # chest wall (intercostal and serratus muscles) between the lungs and the fat
    wall = inner & bc(thoracic & ~chest)
    hu[wall] = HU["muscle"]
    # erector spinae / posterior neck muscles
    er_x = np.where(cervical, 0.5 * cw + 12.0, np.where(thoracic, 0.5 * cw + 14.0, 0.5 * cw + 20.0))
    er_y = post_wall + cd + np.where(cervical, 14.0, np.where(thoracic, 16.0, 22.0))
    er_ax = np.where(cervical, 18.0, np.where(thoracic, 17.0, 23.0))
    er_ay = np.where(cervical, 20.0, np.where(thoracic, 17.0, 23.0))
    muscles = np.zeros(shape, bool)
    for s in (1.0, -1.0):
        muscles |= bc((np.abs((xu - s * er_x) / er_ax) ** 2.6 + np.abs((yu - er_y) / er_ay) ** 2.6) <= 1.0)
        # psoas (grows down the lumbar spine) and quadratus lumborum
        r_ps = f("psoas_r")
        muscles |= bc(_ellipse(xu, yu, s * (0.5 * w + 0.7 * r_ps), yc - 0.05 * d, r_ps, 0.9 * r_ps) &
                      (r_ps > 1.0))
        muscles |= bc(_ellipse(xu, yu, s * (0.5 * w + 38.0), post_wall + 8.0, 16.0, 8.0) & lumbar)
        # longus colli / prevertebral muscles and sternocleidomastoid in the neck
        muscles |= bc(_ellipse(xu, yu, s * 6.0, yc - 0.5 * d - 2.5, 5.0, 3.0) & cervical)
        muscles |= bc(_ellipse(xu, yu, s * 36.0, yc - 0.5 * d - 22.0, 11.0, 7.0) & cervical)
    muscles &= inner
    lungs &= ~muscles
    hu[muscles] = HU["muscle"]
    hu[lungs] = HU["lung"]
    if lungs.any():
        structures["lungs"] = lungs

    # kidneys (T12-L3)
    kid = np.zeros(shape, bool)
    kz = f("kidney")
    for s in (1.0, -1.0):
        kid |= bc(_ellipse(xu, yu, s * (0.5 * w + 48.0), yc + 8.0, 24.0 * kz + 1e-3, 20.0 * kz + 1e-3)
                  & (kz > 0.2))
    kid &= inner & ~muscles
    hu[kid] = HU["kidney"]

    # great vessels: aorta left-anterior, IVC right-anterior (lumbar / lower thoracic)
    blood = HU["blood"]
    ao_x = np.where(lumbar, 10.0, 0.5 * w * 0.55 + 6.0)
    ao_y = np.where(lumbar, yc - 0.5 * d - 12.0, yc - 0.5 * d + 3.0)
    aorta = bc(_ellipse(xu, yu, ao_x, ao_y, 11.0, 11.0) & (reg > 0.5) & (f("aorta") > 0.5)) & inner
    hu[aorta] = blood
    if aorta.any():
        structures["aorta"] = aorta
    ivc = bc(_ellipse(xu, yu, -20.0, yc - 0.5 * d - 14.0, 12.0, 9.0) & (f("ivc") > 0.5)) & inner
    hu[ivc] = blood

    # neck: trachea, oesophagus, carotids, jugulars, thyroid
    if np.any(cervical):
        oes_y = yc - 0.5 * d - 7.0
        tr_y = oes_y - 17.0
        oes = bc(_ellipse(xu, yu, 3.0, oes_y, 8.0, 4.5) & cervical) & inner
        hu[oes] = HU["muscle"] - 10.0
        oes_lumen = bc(_ellipse(xu, yu, 3.0, oes_y, 2.5, 1.0) & cervical) & inner
        hu[oes_lumen] = HU["air"]
        tr_out = bc(_ellipse(xu, yu, 0.0, tr_y, 10.0, 9.5) & cervical) & inner
        tr_in = bc(_ellipse(xu, yu, 0.0, tr_y, 8.0, 7.5) & cervical) & inner
        thy = np.zeros(shape, bool)
        for s in (1.0, -1.0):
            thy |= bc(_ellipse(xu, yu, s * 15.0, tr_y + 1.0, 7.5, 10.0) & cervical & (f("thyroid") > 0.5))
        thy &= inner & ~tr_out & ~oes
        hu[thy] = HU["thyroid"]
        hu[tr_out] = HU["cartilage"]
        hu[tr_in] = HU["air"]
        structures["trachea"] = tr_out
        structures["oesophagus"] = oes
        art = HU["contrast_artery"] if vessels_contrast else blood
        vein = HU["contrast_vein"] if vessels_contrast else blood
        for name, s in (("left", 1.0), ("right", -1.0)):
            car = bc(_ellipse(xu, yu, s * 21.0, tr_y + 6.0, 3.5, 3.5) & cervical) & inner
            jug = bc(_ellipse(xu, yu, s * 29.0, tr_y + 8.0, 6.5, 5.0) & cervical) & inner
            hu[car] = art
            hu[jug] = vein
            structures[f"carotid_{name}"] = car
            structures[f"jugular_{name}"] = jug
    return structures
