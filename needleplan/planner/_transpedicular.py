"""Transpedicular (and parapedicular) candidate search on the cached distance maps.

Candidate lines run from a grid of *through points* (the pedicle isthmus cross-section,
or a strip lateral to the pedicle for the parapedicular route) to a grid of *targets* in
the ventral body at mid height between the endplates.  Every line is sampled at 0.5 mm
from the tip back past the pedicle's posterior end; the needle radius is subtracted from
the sampled distances.  Hard limits reject (needle surface outside the cortex, closer
than the margin to the canal, tip closer than 3 mm to the anterior cortex); a score
ranks the rest: clearance first (capped: beyond the cap more clearance buys nothing),
then target quality (depth fraction, distance to the midline), then angle comfort.
The best few lines get a cheap check of the path behind the bone entry (bone in the
way, air) before the full :func:`~needleplan.planner._evaluate.evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from needleplan.planner._angles import unit
from needleplan.planner._evaluate import (AIR_HU, BONE_HU, MAX_CC_DEG, _runs, depth_fraction, graded_start_mm,
                                          vertebra_frame)
from needleplan.planner._levels import medial_angle_window
from needleplan.planner._maps import sample_volume, vertebra_maps
from needleplan.planner.model import needle_diameter_mm
from needleplan.segmentation.model import PART_BODY

__all__ = ["Candidate", "search_pedicle", "body_halfwidth_mm"]

_CORTEX_CAP_MM = 1.5
_CORTEX_W = 5.0   # score per mm of bone around the needle (up to the cap): clearance first
_CANAL_CAP_MM = 2.0
_FWD_MM = 8.0
_STEP = 0.75   # mm between samples in the search (the full check uses 0.5 mm)
_SAFETY_MM = 0.0   # extra cortex clearance the coarser search asks for


@dataclass
class Candidate:
    """The best line found: a point on the hub side and the target, with its figures."""

    through_lps: np.ndarray
    target_lps: np.ndarray
    feasible: bool
    cortex_mm: float
    canal_mm: float
    anterior_mm: float
    midline_mm: float
    depth_fraction: float
    offset_mm: float
    score: float
    reason: str = ""


def body_halfwidth_mm(anatomy, label: int) -> tuple[float, float]:
    """Extent of the body to the patient's (left, right) of its midsagittal plane, mm."""
    maps = vertebra_maps(anatomy, label)
    va = anatomy.vertebra(label)
    key = ("halfwidth", _va_key(va))
    if key not in maps.memo:
        maps.memo[key] = _halfwidth(maps, va)
    return maps.memo[key]


def _va_key(va) -> tuple:
    """The landmarks the targets depend on (an edited vertebra gets new targets)."""
    def r(v):
        return None if v is None else tuple(np.round(np.asarray(v, float).ravel(), 4))

    planes = [(r(p.point_lps), r(p.normal_lps)) if p is not None else None
              for p in (va.superior_endplate, va.inferior_endplate)]
    return (int(va.label), r(va.body_center_lps), r(va.ap_axis_lps), r(va.left_lps), r([va.body_depth_mm]),
            r(va.posterior_wall_lps), tuple(planes))


def _halfwidth(maps, va) -> tuple[float, float]:
    idx = np.argwhere(maps.parts == PART_BODY)
    if len(idx) == 0:
        return 15.0, 15.0
    box_to_lps = np.linalg.inv(maps.lps_to_box)
    pts = idx @ box_to_lps[:3, :3].T + box_to_lps[:3, 3]
    _, left, _ = vertebra_frame(va)
    off = (pts - va.body_center_lps) @ left
    return float(np.percentile(off, 99)), float(-np.percentile(off, 1))


def _mid_height(va, pts: np.ndarray, sup: np.ndarray) -> np.ndarray:
    """Move points along ``sup`` to half way between the endplate planes."""
    se, ie = va.superior_endplate, va.inferior_endplate
    if se is None or ie is None:
        return pts
    ds = se.signed_distance_mm(pts) / max(abs(float(np.asarray(se.normal_lps) @ sup)), 0.3)
    di = ie.signed_distance_mm(pts) / max(abs(float(np.asarray(ie.normal_lps) @ sup)), 0.3)
    return pts - ((ds + di) / 2)[:, None] * sup[None, :]


def _targets(va, anatomy, side: str, mode: str) -> np.ndarray:
    maps = vertebra_maps(anatomy, va.label)
    key = ("targets", _va_key(va), side, mode)
    if key not in maps.memo:
        maps.memo[key] = _make_targets(va, anatomy, side, mode)
    return maps.memo[key].copy()


def _make_targets(va, anatomy, side: str, mode: str) -> np.ndarray:
    ap, left, sup = vertebra_frame(va)
    sign = 1.0 if side == "left" else -1.0
    hw_left, hw_right = body_halfwidth_mm(anatomy, va.label)
    hw = hw_left if side == "left" else hw_right
    fracs = np.array([0.67, 0.72, 0.77, 0.82])
    if mode == "bipedicular":
        offs = sign * np.arange(3.0, max(4.0, 0.65 * hw) + 1e-6, 1.5)
    else:
        offs = sign * np.concatenate([[-2.0, -1.0], np.arange(0.0, max(2.0, min(16.0, 0.75 * hw)) + 1e-6, 1.0)])
    f_center = float(depth_fraction(va, np.asarray(va.body_center_lps)[None])[0])
    depth = float(va.body_depth_mm) if np.isfinite(va.body_depth_mm) else 30.0
    ff, oo = np.meshgrid(fracs, offs, indexing="ij")
    pts = (np.asarray(va.body_center_lps, float)[None, :] + ((ff.ravel() - f_center) * depth)[:, None] * ap
           + oo.ravel()[:, None] * left)
    return _centre_in_height(anatomy, va, _mid_height(va, pts, sup), sup)


def _centre_in_height(anatomy, va, pts: np.ndarray, sup: np.ndarray, reach_mm: float = 25.0) -> np.ndarray:
    """Move each point along ``sup`` to half way between the bone surfaces above and below it."""
    maps = vertebra_maps(anatomy, va.label)
    steps = np.arange(0.0, reach_mm + 1e-6, 0.5)
    out = pts.copy()
    inside = maps.bone_sd(anatomy, pts) > 0
    ups = maps.bone_sd(anatomy, pts[:, None, :] + steps[None, :, None] * sup)
    downs = maps.bone_sd(anatomy, pts[:, None, :] - steps[None, :, None] * sup)
    up = np.where((ups <= 0).any(axis=1), np.argmax(ups <= 0, axis=1) * 0.5, reach_mm)
    down = np.where((downs <= 0).any(axis=1), np.argmax(downs <= 0, axis=1) * 0.5, reach_mm)
    shift = np.where(inside, (up - down) / 2, 0.0)
    return out + shift[:, None] * sup


def _through_points(va, side: str, *, para: bool, radius: float, coarse: bool = False
                    ) -> tuple[np.ndarray, np.ndarray]:
    ped = va.pedicles[side]
    c = np.asarray(ped.isthmus_center_lps, float)
    a = unit(ped.axis_lps)
    _, left, sup = vertebra_frame(va)
    sign = 1.0 if side == "left" else -1.0
    lat = unit(sign * left - (sign * left @ a) * a)     # lateral, perpendicular to the pedicle axis
    e2 = unit(sup - (sup @ a) * a)
    if para:   # a strip just lateral to the pedicle's lateral wall
        base = c + lat * (ped.width_mm / 2 + radius + 0.5)
        us = np.arange(0.0, 6.01, 2.0 if coarse else 1.0)
        vs = np.array([-2.0, 0.0, 2.0])
    elif coarse:   # the centre and a cross around it: enough to rank the targets
        base = c
        uu = np.array([0.0, -1.2, 1.2, 0.0, 0.0])
        vv = np.array([0.0, 0.0, 0.0, -1.2, 1.2])
    else:
        base = c
        us = vs = np.array([-1.5, -0.75, 0.0, 0.75, 1.5])
    if para or not coarse:
        uu, vv = np.meshgrid(us, vs, indexing="ij")
    q = base[None, :] + uu.ravel()[:, None] * lat + vv.ravel()[:, None] * e2
    off = np.hypot(uu.ravel(), vv.ravel()) if not para else uu.ravel()
    return q, off


def search_pedicle(volume, anatomy, label: int, side: str, *, mode: str = "unipedicular",
                   gauge: int = 11, canal_margin_mm: float = 2.0, para: bool = False,
                   top: int = 60) -> list[Candidate]:
    """Rank candidate lines for one pedicle (or the parapedicular corridor beside it).

    Returns the best candidates (feasible first, best score first); empty when the
    pedicle is missing from the anatomy.
    """
    va = anatomy.vertebra(label)
    if side not in va.pedicles:
        return []
    maps = vertebra_maps(anatomy, label)
    r = needle_diameter_mm(gauge) / 2
    ped = va.pedicles[side]
    c = np.asarray(ped.isthmus_center_lps, float)
    a = unit(ped.axis_lps)
    _, left, sup = vertebra_frame(va)
    s_min = graded_start_mm(maps, side)
    targets = _targets(va, anatomy, side, mode)
    hw = body_halfwidth_mm(anatomy, label)[0 if side == "left" else 1] if mode == "bipedicular" else 0.0
    ctx = dict(va=va, maps=maps, r=r, c=c, a=a, left=left, sup=sup, s_min=s_min, para=para, mode=mode,
               hw=hw, margin=canal_margin_mm, side_sign=1.0 if side == "left" else -1.0,
               medial_window=medial_angle_window(va.name, "parapedicular" if para else "transpedicular"))
    # stage 1: a coarse fan of through points to every target; stage 2: the full fan to the best targets
    q, off = _through_points(va, side, para=para, radius=r, coarse=True)
    res1 = _score_lines(ctx, np.repeat(targets, len(q), axis=0), np.tile(q, (len(targets), 1)),
                        np.tile(off, len(targets)), step=1.0)
    best_t: list = []
    # the best-ranked targets, and those with better quality that only just fail (finer fan may fit)
    promise = res1["quality"] - 3.0 * res1["violation"]
    for ranking in (np.argsort(-res1["key"]), np.argsort(-promise)):
        n0 = len(best_t)
        for i in ranking:
            t = tuple(np.round(res1["tt"][i], 3))
            if t not in best_t:
                best_t.append(t)
            if len(best_t) >= n0 + 5:
                break
    q, off = _through_points(va, side, para=para, radius=r, coarse=False)
    bt = np.array(best_t)
    res2 = _score_lines(ctx, np.repeat(bt, len(q), axis=0), np.tile(q, (len(bt), 1)), np.tile(off, len(bt)),
                        step=_STEP)
    res = {k: np.concatenate([res2[k], res1[k]]) for k in res1}
    tt, qq, oo, d, key, feasible = res["tt"], res["qq"], res["oo"], res["d"], res["key"], res["feasible"]
    cortex, canal_c, anterior, mid, frac = res["cortex"], res["canal"], res["anterior"], res["mid"], res["frac"]
    n2 = len(res2["key"])
    order = np.concatenate([np.argsort(-res2["key"], kind="stable"), n2 + np.argsort(-res1["key"], kind="stable")])
    order = _prescreen(volume, anatomy, maps, qq, d, order, feasible, top=top)
    out = []
    for i in order[:top]:
        out.append(Candidate(through_lps=qq[i], target_lps=tt[i], feasible=bool(feasible[i]),
                             cortex_mm=float(cortex[i]), canal_mm=float(canal_c[i]),
                             anterior_mm=float(anterior[i]), midline_mm=float(mid[i]),
                             depth_fraction=float(frac[i]), offset_mm=float(oo[i]), score=float(key[i])))
    return out


def _score_lines(ctx: dict, tt: np.ndarray, qq: np.ndarray, oo: np.ndarray, *, step: float) -> dict:
    """Sample lines target -> through point (and beyond) and score them; arrays per line."""
    va, maps, r, c, a = ctx["va"], ctx["maps"], ctx["r"], ctx["c"], ctx["a"]
    s_min, margin = ctx["s_min"], ctx["margin"]
    dvec = tt - qq
    dist_tq = np.linalg.norm(dvec, axis=1)
    d = dvec / dist_tq[:, None]
    back_len = dist_tq + max(0.0, -s_min) + 4.0
    n_back = int(np.ceil(back_len.max() / step)) + 1
    n_fwd = int(_FWD_MM / step)
    s = np.arange(-n_fwd, n_back) * step
    pts = tt[:, None, :] - s[None, :, None] * d[:, None, :]
    valid = (s[None, :] >= 0) & (s[None, :] <= back_len[:, None])
    three = maps.sample_all(pts)
    bone, canal, other = three[..., 0], three[..., 1], three[..., 2]
    if ctx["para"]:
        graded = valid & (depth_fraction(va, pts) >= 0.05)
    else:
        graded = valid & (((pts - c) @ a) >= s_min)
    big = np.float32(1e3)
    cortex = np.where(graded, bone, big).min(axis=1) - r
    canal_c = np.where(valid, canal, big).min(axis=1) - r
    other_c = np.where(valid, other, big).min(axis=1) - r
    fwd = bone[:, :n_fwd][:, ::-1]            # from the tip forward
    anterior = np.where((fwd > 0).all(axis=1), _FWD_MM, np.argmax(fwd <= 0, axis=1) * step)
    frac = depth_fraction(va, tt)
    mid = np.abs((tt - va.body_center_lps) @ ctx["left"])
    cc = np.degrees(np.arcsin(np.clip(np.abs(d @ ctx["sup"]), 0, 1)))
    safety = _SAFETY_MM
    # patient-frame angles (see _angles): no diverging needle, no extreme craniocaudal tilt
    ap_len = np.maximum(np.abs(d[:, 1]), 1e-6)
    medial_deg = np.degrees(np.arctan2(-ctx["side_sign"] * d[:, 0], ap_len))
    cc_deg = np.degrees(np.arctan2(-d[:, 2], ap_len))
    lo, hi = ctx["medial_window"]
    comfortable = (medial_deg >= lo) & (medial_deg <= hi) & (np.abs(cc_deg) <= MAX_CC_DEG)
    feasible = ((cortex >= safety) & (canal_c >= margin + safety) & (anterior >= 3.0) & (other_c >= 0.0)
                & comfortable)
    quality = -6.0 * np.abs(frac - 0.72) - 8.0 * np.maximum(0.0, 0.67 - frac)
    if ctx["mode"] == "bipedicular":
        quality -= 0.3 * np.abs(mid - 0.35 * ctx["hw"])
    else:
        quality -= 0.6 * mid
    score = (_CORTEX_W * np.minimum(cortex, _CORTEX_CAP_MM) + 1.0 * np.minimum(canal_c - margin, _CANAL_CAP_MM)
             + quality - 1.2 * oo - 0.03 * np.maximum(0.0, cc - 10.0))
    # infeasible lines are ranked by how badly they fail (for the "best attempt")
    violation = (np.maximum(0, -cortex) * 3 + np.maximum(0, margin - canal_c) * 3
                 + np.maximum(0, 3.0 - anterior) + np.maximum(0, -other_c)
                 + ~comfortable * (2.0 + 0.3 * (np.maximum(0, lo - medial_deg) + np.maximum(0, medial_deg - hi)
                                                + np.maximum(0, np.abs(cc_deg) - MAX_CC_DEG))))
    key = np.where(feasible, score, -1e3 - 10 * violation + 0.01 * score)
    return {"tt": tt, "qq": qq, "oo": oo, "d": d, "key": key, "feasible": feasible, "cortex": cortex,
            "canal": canal_c, "anterior": anterior, "mid": mid, "frac": frac, "quality": quality,
            "violation": violation}


def _prescreen(volume, anatomy, maps, qq, d, order, feasible, *, top: int, want: int = 8) -> np.ndarray:
    """Move lines whose path behind the bone entry crosses bone or inner air to the back.

    Checks feasible lines in rank order, in chunks, until ``want`` clean ones are found.
    """
    cand = order[feasible[order]] if feasible.any() else order[:top]
    s = np.arange(0.0, 160.0, 1.0)
    clean_idx, dirty_idx = [], []
    for k in range(0, min(len(cand), 4 * top), 16):
        head = cand[k:k + 16]
        pts = qq[head][:, None, :] - s[None, :, None] * d[head][:, None, :]
        bone = maps.bone_sd(anatomy, pts)
        hu = sample_volume(volume, pts)
        for n, idx in enumerate(head):
            (clean_idx if _clean(bone[n], hu[n]) else dirty_idx).append(idx)
        if len(clean_idx) >= want:
            break
    seen = np.array(clean_idx + dirty_idx, dtype=int)
    rest = order[~np.isin(order, seen)]
    return np.concatenate([np.array(clean_idx, dtype=int), rest[feasible[rest]], np.array(dirty_idx, dtype=int),
                           rest[~feasible[rest]]])


def _clean(bone: np.ndarray, hu: np.ndarray, step: float = 1.0) -> bool:
    outside = np.flatnonzero(bone <= 0)
    if len(outside) == 0:
        return True
    j = outside[0]
    rest_hu, rest_bone = hu[j:], bone[j:]
    air = rest_hu < AIR_HU
    runs = [(a, b) for a, b in _runs(air) if (b - a) * step >= 4.0 or b == len(air)]
    end = runs[0][0] if runs else len(air)
    bony = ((rest_hu > BONE_HU) | (rest_bone > 0))[:end]
    return not any((b - a) * step >= 1.0 and a * step > 2.0 for a, b in _runs(bony))
