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
        lat = sgn * lft
        sel = ((a <= a_pw + 1.0) & (a >= a_pw - 14.0) & (np.abs(h) <= 12.0) & (lat >= 0.6 * half_canal)
               & (lat <= half_canal + 16.0))
        if sel.sum() < 4:
            continue
        q, qa = p[sel], a[sel]
        mid = float(np.median(qa))
        post, ant = q[qa <= mid], q[qa > mid]
        if len(post) < 2 or len(ant) < 2:
            continue
        centre = q.mean(axis=0)
        axis = unit(ant.mean(axis=0) - post.mean(axis=0))
        if axis @ ap < 0.3:            # must point mostly anterior
            axis = ap
        ring = np.abs((q - centre) @ axis) <= max(1.5, sp)
        qq = q[ring] if ring.sum() >= 2 else q
        e1 = unit(left - (left @ axis) * axis)
        e2 = unit(sup - (sup @ axis) * axis)
        width = float(np.ptp((qq - centre) @ e1)) + sp
        height = float(np.ptp((qq - centre) @ e2)) + sp
        lateral = float(sgn * ((centre) @ left))
        if not (3.0 <= width <= 18.0 and 4.0 <= height <= 22.0 and lateral >= half_canal * 0.8):
            continue                        # not a pedicle-like column: no estimate
        out[side] = PedicleLandmarks(side, centre + c, axis, width, height)
    return out


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
