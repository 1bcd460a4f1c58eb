"""Fallback pedicle landmarks when the segmentation found none (e.g. coarse 3 mm scans).

The pedicle is taken as the bone of the vertebra beside the canal in the slab just behind
the posterior wall of the body, at mid height: its centroid is the isthmus centre, the
line through the centroids of its posterior and anterior halves is the axis, and its
extent across/along the spine at the centre gives width and height.  No estimate is made
without a canal beside the vertebra or when the column is not pedicle-sized; the result
is marked as an estimate in the level's reasons.
"""

from __future__ import annotations

import copy
import threading
import weakref

import numpy as np
from needleplan.planner._angles import unit
from needleplan.planner._evaluate import vertebra_frame
from needleplan.planner._maps import _objects
from needleplan.segmentation.model import PedicleLandmarks

__all__ = ["with_estimated_pedicles"]

_CACHE: dict = {}
_LOCK = threading.Lock()


def _estimate(anatomy, va) -> dict[str, PedicleLandmarks]:
    aff = np.asarray(anatomy.ijk_to_lps, float)
    objs = _objects(anatomy)
    if va.label > len(objs) or objs[va.label - 1] is None:
        return {}
    bb = objs[va.label - 1]
    off = np.array([s.start for s in bb])
    m = anatomy.labels[bb] == va.label
    canal = np.asarray(anatomy.canal[bb], bool)
    ap, left, sup = vertebra_frame(va)
    c = np.asarray(va.body_center_lps, float)
    depth = float(va.body_depth_mm) if np.isfinite(va.body_depth_mm) else 30.0
    pw = va.posterior_wall_lps if va.posterior_wall_lps is not None else c - ap * depth / 2
    a_pw = float((np.asarray(pw) - c) @ ap)

    def frame(mask):
        idx = np.argwhere(mask) + off
        p = idx @ aff[:3, :3].T + aff[:3, 3] - c
        return p, p @ ap, p @ left, p @ sup

    sp = float(np.linalg.norm(aff[:3, :3], axis=0).min())
    _, ca, cl, ch = frame(canal)
    near = np.abs(ch) < 10.0
    if near.sum() * sp ** 3 < 200.0:      # no canal beside this vertebra: nothing to anchor on
        return {}
    half_canal = float(np.percentile(np.abs(cl[near]), 90))
    p, a, lft, h = frame(m)
    out = {}
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        ped = _isthmus(a, sgn * lft, h, a_pw=a_pw, half_canal=half_canal, sp=sp)
        if ped is None:
            continue
        a_i, lat_i, h_i, width, height, slope_lat, slope_h = ped
        centre = c + a_i * ap + sgn * lat_i * left + h_i * sup
        axis = unit(ap + sgn * slope_lat * left + slope_h * sup)
        out[side] = PedicleLandmarks(side, centre, axis, width, height)
    return out


def _runs_1d(occ: np.ndarray, start: int, gap: int = 1) -> tuple[int, int] | None:
    """First run of True at or after ``start`` (gaps of up to ``gap`` bins bridged): (first, last)."""
    idx = np.flatnonzero(occ[start:])
    if len(idx) == 0:
        return None
    first = last = start + int(idx[0])
    for k in idx[1:]:
        k = start + int(k)
        if k - last > gap + 1:
            break
        last = k
    return first, last


def _isthmus(a, lat, h, *, a_pw: float, half_canal: float, sp: float):
    """The narrowest bony column lateral to the canal behind the posterior wall.

    Works on 1 mm bins of (depth along the AP axis, distance from the midline) at mid
    height: per depth bin, the run of bone starting at the first bone lateral to the canal
    is the pedicle's cross-section there; the isthmus is the depth with the narrowest run
    (the transverse process and the rib head widen it behind and in front).  Returns
    ``(a, lat, h, width, height, dlat/da, dh/da)`` or None when nothing pedicle-like is there.
    """
    b = max(1.0, sp)
    lat0 = 0.5 * half_canal
    a_lo, a_hi = a_pw - 16.0, a_pw + 2.0
    sel = (a >= a_lo) & (a < a_hi) & (lat >= lat0) & (lat < half_canal + 22.0) & (np.abs(h) <= 14.0)
    if sel.sum() < 10:
        return None
    aa, ll, hh = a[sel], lat[sel], h[sel]
    # the pedicle's root just behind the posterior wall is the only bone there beside the
    # canal (the articular processes lie further back): its median height anchors the band
    root = (aa >= a_pw - 5.0) & (aa <= a_pw) & (ll >= half_canal - 1.0) & (ll <= half_canal + 10.0)
    mid_h = float(np.median(hh[root])) if root.sum() >= 5 else float(np.median(hh))
    band = np.abs(hh - mid_h) <= max(2.5, sp)
    na, nl = int(np.ceil((a_hi - a_lo) / b)), int(np.ceil((half_canal + 22.0 - lat0) / b))
    ia = np.clip(((aa - a_lo) / b).astype(int), 0, na - 1)
    il = np.clip(((ll - lat0) / b).astype(int), 0, nl - 1)
    occ = np.zeros((na, nl), bool)
    occ[ia[band], il[band]] = True
    gap = max(1, int(np.ceil(sp / b)))
    rows = {}
    for k in range(na):
        r = _runs_1d(occ[k], 0, gap)
        if r is not None and r[0] * b + lat0 <= half_canal + 6.0:    # touches the canal's side
            rows[k] = r
    if len(rows) < 3:
        return None
    ks = np.array(sorted(rows))
    widths = np.array([(rows[k][1] - rows[k][0] + 1) * b for k in ks])
    smooth = np.array([np.median(widths[max(0, i - 1): i + 2]) for i in range(len(ks))])
    ok = smooth >= 2.5
    if not ok.any():
        return None
    i_best = int(np.argmin(np.where(ok, smooth, np.inf)))
    k_i = int(ks[i_best])
    first, last = rows[k_i]
    width = float(smooth[i_best])
    lat_i = lat0 + (first + last + 1) / 2 * b
    a_i = a_lo + (k_i + 0.5) * b
    # height: bone around mid height in the isthmus column
    col = (np.abs(aa - a_i) <= max(1.0, sp)) & (ll >= lat_i - width / 2) & (ll <= lat_i + width / 2)
    if col.sum() < 3:
        return None
    hb = np.round((hh[col] - mid_h) / b).astype(int)
    occ_h = np.zeros(int(hb.max() - hb.min()) + 1, bool)
    occ_h[hb - hb.min()] = True
    zero = int(np.clip(-hb.min(), 0, len(occ_h) - 1))
    if not occ_h[zero]:
        return None
    lo_h = hi_h = zero
    while lo_h - 1 >= 0 and occ_h[lo_h - 1]:
        lo_h -= 1
    while hi_h + 1 < len(occ_h) and occ_h[hi_h + 1]:
        hi_h += 1
    height = (hi_h - lo_h + 1) * b
    h_i = mid_h + ((lo_h + hi_h) / 2 + int(hb.min())) * b
    # axis: how the run's centre moves across the neighbouring depth bins
    near_k = [k for k in ks if abs(k - k_i) <= 4]
    if len(near_k) >= 3:
        cen = np.array([lat0 + (rows[k][0] + rows[k][1] + 1) / 2 * b for k in near_k])
        slope_lat = float(np.polyfit(a_lo + (np.array(near_k) + 0.5) * b, cen, 1)[0])
    else:
        slope_lat = 0.0
    slope_lat = float(np.clip(slope_lat, -1.0, 0.3))   # converging forward (negative) up to 45 deg
    if not (2.5 <= width <= 16.0 and 4.0 <= height <= 24.0):
        return None
    return a_i, lat_i, h_i, width, height, slope_lat, 0.0


def with_estimated_pedicles(anatomy, label: int):
    """``(anatomy', estimated_sides)``: a shallow copy whose vertebra ``label`` has estimated
    pedicles where the segmentation gave none (the original when nothing is missing)."""
    va = anatomy.vertebra(label)
    if len(va.pedicles) == 2:
        return anatomy, []
    key = (id(anatomy), id(anatomy.labels), int(label))
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None and hit[0]() is anatomy:
        return hit[1], hit[2]
    est = _estimate(anatomy, va)
    new_sides = [s for s in est if s not in va.pedicles]
    if not new_sides:
        result = (anatomy, [])
    else:
        va2 = copy.copy(va)
        va2.pedicles = {**{s: est[s] for s in new_sides}, **va.pedicles}
        an2 = copy.copy(anatomy)
        an2.vertebrae = {**anatomy.vertebrae, int(label): va2}
        result = (an2, new_sides)
    with _LOCK:
        _CACHE[key] = (weakref.ref(anatomy), *result)
    return result
