"""Pedicle isthmus and axis, endplate planes and body AP landmarks of one vertebra.

The pedicle axis is the line through the centroids of the pedicle's cross-sections; the
isthmus is the cross-section perpendicular to that axis with the smallest transverse
width.  Cross-sections are sampled at 0.25 mm from the vertebra mask interpolated
trilinearly on the CT grid, so widths are not quantised to the voxel size.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from needleplan.segmentation._frame import LocalGrid, perpendicular_part, true_run, unit
from needleplan.segmentation.model import PedicleLandmarks, Plane

__all__ = ["pedicle_landmarks", "endplate_planes", "ap_walls"]

_STEP = 0.3      # cross-section sampling step (mm)
_HALF = 12.5     # half size of the sampled cross-section window (mm)
_T_STEP = 1.0    # spacing of cross-sections along the axis while searching (mm)
_T_FINE = 0.5    # spacing near the isthmus (mm)
DRIFT_AREA = 1.03  # a refined axis whose isthmus grows more than this is drift
_PERP_STRETCH = 1.45  # sections up to this x the smallest area refine the axis
_AP_STRETCH = 1.3  # cuts up to this x the smallest area carry the first axis fit


def _fit_line(points: np.ndarray, weights=None) -> tuple[np.ndarray, np.ndarray]:
    w = np.ones(len(points)) if weights is None else np.asarray(weights, float)
    c = (points * w[:, None]).sum(0) / w.sum()
    d = points - c
    cov = (d * w[:, None]).T @ d
    vals, vecs = np.linalg.eigh(cov)
    return c, vecs[:, -1]


class _Sampler:
    """Trilinear sampling of a CT-grid float mask (or crop of it) at LPS points."""

    def __init__(self, array: np.ndarray, ijk_to_lps: np.ndarray, offset_ijk, full_shape=None):
        self.array = array
        self.offset = np.asarray(offset_ijk, float)
        self.full_shape = None if full_shape is None else np.asarray(full_shape, float)
        inv = np.linalg.inv(ijk_to_lps)
        self.a3, self.t3 = inv[:3, :3], inv[:3, 3] - np.asarray(offset_ijk, float)
        # rim (in section pixels) that covers the interpolation ramp across a boundary
        vox = float(np.linalg.norm(np.asarray(ijk_to_lps)[:3, :3], axis=0).max())
        self.rim_px = int(np.ceil(0.6 * vox / _STEP)) + 1

    def __call__(self, lps: np.ndarray, *, with_unknown: bool = False):
        shp = lps.shape[:-1]
        ijk = lps.reshape(-1, 3) @ self.a3.T + self.t3
        v = ndi.map_coordinates(self.array, ijk.T, order=1, mode="constant", cval=0.0, prefilter=False)
        if not with_unknown:
            return v.reshape(shp)
        if self.full_shape is None:
            return v.reshape(shp), np.zeros(shp, dtype=bool)
        full = ijk + self.offset  # outside the scanned volume nothing is known
        unk = np.any((full < -0.5) | (full > self.full_shape - 0.5), axis=1)
        return v.reshape(shp), unk.reshape(shp)


def _section(sampler: _Sampler, p, axis, u, w):
    """Measure the bone cross-section through ``p`` perpendicular to ``axis``.

    Returns (width_mm, height_mm, area_mm2, centroid_lps, touches_border) or None.
    """
    s = np.arange(-_HALF, _HALF + 1e-9, _STEP)
    su, sw = np.meshgrid(s, s, indexing="ij")
    pts = p + su[..., None] * u + sw[..., None] * w
    val, unknown = sampler(pts, with_unknown=True)
    inside = val >= 0.5
    if not inside.any():
        return None
    lab, n = ndi.label(inside)
    c = len(s) // 2
    if lab[c, c] == 0:
        d = np.hypot(su, sw)
        d[~inside] = np.inf
        k = np.unravel_index(np.argmin(d), d.shape)
        if d[k] > 3.0:
            return None
        comp = lab == lab[k]
    else:
        comp = lab == lab[c, c]
    iu, iw = np.nonzero(comp)
    # partial-volume weights: the interpolated values over the component and a rim of about
    # one voxel (the ramp across the boundary is symmetric, so they integrate to the area)
    rim = ndi.binary_dilation(comp, iterations=sampler.rim_px) & ~inside
    wgt = np.where(comp | rim, np.clip(val, 0.0, 1.0), 0.0)
    area = wgt.sum() * _STEP * _STEP
    mu, mw = (su * wgt).sum() / wgt.sum(), (sw * wgt).sum() / wgt.sum()
    cen = p + mu * u + mw * w
    # equivalent-ellipse diameters from the second moments (sub-voxel, robust to the
    # staircase of a voxel mask): an ellipse of diameter d has variance d^2 / 16
    width = 4.0 * np.sqrt(((su - mu) ** 2 * wgt).sum() / wgt.sum())
    height = 4.0 * np.sqrt(((sw - mw) ** 2 * wgt).sum() / wgt.sum())
    border = iu.min() == 0 or iw.min() == 0 or iu.max() == len(s) - 1 or iw.max() == len(s) - 1
    # a section cut by the edge of the scan is incomplete: treat it like one cut by the window
    border = bool(border or (unknown.any() and (rim & unknown).any()))
    return width, height, area, cen, border


def _scan(sampler, origin, axis, left_lps, t_range, step=_T_STEP):
    u = perpendicular_part(left_lps, axis)
    w = np.cross(u, axis)
    rows = []
    for t in np.arange(t_range[0], t_range[1] + 1e-9, step):
        r = _section(sampler, origin + t * axis, axis, u, w)
        if r is not None:
            rows.append((t, *r))
    return rows, u, w


def _clean_stretch(areas: np.ndarray, k: int, factor: float) -> tuple[int, int]:
    return true_run(areas <= factor * areas[k], k)


def _edge_out(prof: np.ndarray, s: np.ndarray, half: float, start: int, step: int) -> float | None:
    """Position where the profile falls below ``half`` walking from ``start`` by ``step``."""
    k = start
    while 0 <= k + step < len(prof) and prof[k + step] >= half:
        k += step
    if not 0 <= k + step < len(prof):
        return None
    a, b = prof[k], prof[k + step]
    f = (a - half) / max(a - b, 1e-6)
    return float(s[k] + f * (s[k + step] - s[k]))


def _hu_diameter(hu: _Sampler, c, axis, d, e, extent_mm: float, other_mm: float) -> float | None:
    """Outer cortical diameter along ``d`` at the half-maximum of the averaged HU profile.

    The profile is averaged over lines shifted along ``e`` (within a quarter of the other
    diameter) and along the axis (+-1 mm).  The half level lies between the bone's peak
    and the soft tissue outside, separately on each side.  None when there is no clear
    bone contrast.
    """
    s = np.arange(-(0.5 * extent_mm + 5.0), 0.5 * extent_mm + 5.0 + 1e-9, 0.1)
    offs = [(a, b) for a in (-1.0, 0.0, 1.0) for b in np.linspace(-0.25 * other_mm, 0.25 * other_mm, 5)]
    pts = np.array([[c + a * axis + b * e + t * d for t in s] for a, b in offs])
    prof = hu(pts).mean(axis=0)
    out_l = s < -(0.5 * extent_mm + 2.0)
    out_r = s > 0.5 * extent_mm + 2.0
    inner = np.abs(s) <= 0.5 * extent_mm
    if not out_l.any() or not out_r.any() or not inner.any():
        return None
    peak_l = prof[(s <= 0) & (s >= -0.5 * extent_mm - 1.0)].max()
    peak_r = prof[(s >= 0) & (s <= 0.5 * extent_mm + 1.0)].max()
    bg_l, bg_r = np.median(prof[out_l]), np.median(prof[out_r])
    if min(peak_l - bg_l, peak_r - bg_r) < 150.0:
        return None
    a = _edge_out(prof, s, 0.5 * (peak_l + bg_l), int(np.argmax(np.where(s <= 0, prof, -np.inf))), -1)
    b = _edge_out(prof, s, 0.5 * (peak_r + bg_r), int(np.argmax(np.where(s >= 0, prof, -np.inf))), +1)
    if a is None or b is None:
        return None
    return b - a


def pedicle_landmarks(side: str, ped_local: np.ndarray, grid: LocalGrid, sampler: _Sampler,
                      left_lps: np.ndarray, anterior_lps: np.ndarray,
                      hu: _Sampler | None = None, start=None,
                      reach_mm: float | None = None,
                      perp_stretch: float = _PERP_STRETCH) -> PedicleLandmarks | None:
    """Isthmus centre, axis and size of one pedicle; None when it cannot be measured.

    1. Cut the pedicle with planes perpendicular to the body's AP axis every 0.5 mm; in
       each, the bone component at the current centre line is measured.
    2. Around the smallest cut, the clean stretch (area below 1.6 x the smallest; cuts
       that reach into body or arch are larger) gives centroids through which a line is
       fitted: the pedicle axis.  Parallel cuts of a tube have their centroids on its axis
       whatever its obliquity, so this does not depend on a first guess of the axis.
    3. Perpendicular to that axis the narrowest cross-section is the isthmus.

    ``start`` = (point_lps, axis_lps) skips step 2 (a line found otherwise, e.g. the
    cervical canal-foramen bridge); the isthmus is then sought within ``reach_mm`` of the
    point along the axis (default: half the pedicle mask's AP extent).  ``perp_stretch``:
    sections up to this x the smallest area carry the axis fit of step 3 (on fine voxels
    1.25 keeps out a process joining the pedicle's end: T11-T12 tilts read 3 deg steep
    with 1.45; on coarse voxels and the short cervical pedicles 1.45 is needed).
    """
    idx = np.argwhere(ped_local)
    if len(idx) < 8:
        return None
    local = grid.lo_mm + grid.step_mm * idx
    ant = unit(anterior_lps)
    c0 = grid.center_lps + grid.rot @ local.mean(0)
    ys = np.arange(-10.0, 10.0 + 1e-9, _T_STEP)
    y_reg = (local[:, 1].min() - local[:, 1].mean(), local[:, 1].max() - local[:, 1].mean())
    line_p, line_d = c0, ant
    fit = None
    if start is not None:
        c0 = np.asarray(start[0], float)
        fit = (c0, unit(start[1]))
        if reach_mm is not None:
            y_reg = (-reach_mm, reach_mm)
    for _ in range(0 if start is not None else 2):
        cuts = []
        u = perpendicular_part(left_lps, ant)
        w = np.cross(u, ant)
        for t in ys:
            # point of the current line in the cut plane at AP offset t from c0
            p = line_p + line_d * (((c0 + t * ant) - line_p) @ ant) / max(line_d @ ant, 0.3)
            r = _section(sampler, p, ant, u, w)
            if r is not None and not r[4]:
                cuts.append((t, r[2], r[3]))
        if len(cuts) < 4:
            break
        areas = np.array([c[1] for c in cuts])
        tc = np.array([c[0] for c in cuts])
        # the smallest cut within the pedicle region (cuts beyond it can hit process tips)
        inreg = (tc >= y_reg[0] - 1.0) & (tc <= y_reg[1] + 1.0)
        if not inreg.any():
            break
        sm = np.where(inreg, ndi.median_filter(areas, size=3, mode="nearest"), np.inf)
        k = int(np.argmin(sm))
        lo, hi = _clean_stretch(areas, k, _AP_STRETCH)
        if hi - lo + 1 < 4:
            lo, hi = max(0, k - 2), min(len(cuts) - 1, k + 2)
        cen = np.array([c[2] for c in cuts[lo:hi + 1]])
        tt = (cen - c0) @ ant
        # least squares line x(t) through the centroids (t = AP position of the cut)
        A = np.column_stack([tt, np.ones_like(tt)])
        coef, *_ = np.linalg.lstsq(A, cen, rcond=None)
        d = unit(coef[0])
        if d @ ant < 0.5:
            break
        line_p, line_d = coef[1], d
        fit = (line_p, line_d)
    if fit is None:
        return None
    line_p, axis = fit
    # refine with sections perpendicular to the axis (oblique cuts of a flaring tube
    # have their centroids slightly off the axis); the narrowest part anchors the range
    t0 = float((c0 - line_p) @ axis)
    rows = []
    kept = None  # (smallest area, line point, axis, t0) of the best axis so far
    for _ in range(5):
        rows, _u, _w = _scan(sampler, line_p, axis, left_lps, (t0 + ys[0], t0 + ys[-1]))
        rows = [r for r in rows if not r[5]]
        if len(rows) < 3:
            break
        tt = np.array([r[0] for r in rows])
        areas = np.array([r[3] for r in rows])
        inreg = np.abs(tt - t0) <= 0.5 * (y_reg[1] - y_reg[0]) + 1.0
        if not inreg.any():
            break
        k = int(np.argmin(np.where(inreg, ndi.median_filter(areas, size=3, mode="nearest"), np.inf)))
        # the true axis has the smallest perpendicular isthmus: a step that makes it
        # larger is drift (real pedicles are no perfect tubes), so keep the better axis
        if kept is not None and areas[k] > DRIFT_AREA * kept[0]:
            break
        kept = (areas[k], line_p, axis, float(tt[k]))
        lo, hi = _clean_stretch(areas, k, perp_stretch)
        if hi - lo + 1 < 5:
            break
        cen = np.array([r[4] for r in rows[lo:hi + 1]])
        c, d = _fit_line(cen)
        d = unit(d if d @ ant > 0 else -d)
        if d @ ant < 0.5:
            break
        moved = np.degrees(np.arccos(np.clip(d @ axis, -1.0, 1.0)))
        t0 = float((np.asarray(rows[k][4]) - c) @ d)
        line_p, axis = c, d
        if moved < 0.1:
            break
    if kept is None:
        return None
    _, line_p, axis, t0 = kept
    rows, _u, _w = _scan(sampler, line_p, axis, left_lps, (t0 - 5.0, t0 + 5.0), _T_FINE)
    rows = [r for r in rows if not r[5]]
    if len(rows) < 3:
        return None
    tt = np.array([r[0] for r in rows])
    areas = np.array([r[3] for r in rows])
    ka = int(np.argmin(ndi.median_filter(areas, size=3, mode="nearest")))
    # the isthmus is the smallest cross-section: parabola through the areas around it
    near = np.abs(tt - tt[ka]) <= 3.0
    t_star = tt[ka]
    if near.sum() >= 5:
        a2, a1, _ = np.polyfit(tt[near], areas[near], 2)
        if a2 > 0 and abs(-a1 / (2 * a2) - tt[ka]) <= 3.0:
            t_star = -a1 / (2 * a2)
    u = perpendicular_part(left_lps, axis)
    r = _section(sampler, line_p + t_star * axis, axis, u, np.cross(u, axis))
    if r is None or r[4]:
        r = rows[ka][1:]
    width, height, _area, cen_b, _ = r
    if hu is not None:
        # two independent estimates of the outer diameter, averaged: the label mask's
        # (quantised to its voxels, +-half a voxel) and the CT's half-maximum bone edges
        # (biased by blur and cortex thickness); each alone errs by up to ~0.5 mm at 1 mm
        u = perpendicular_part(left_lps, axis)
        w = np.cross(u, axis)
        tol = max(1.5, 0.75 * float(np.linalg.norm(np.linalg.inv(hu.a3), axis=0).max()))
        wh = _hu_diameter(hu, np.asarray(cen_b), axis, u, w, width, height)
        hh = _hu_diameter(hu, np.asarray(cen_b), axis, w, u, height, width)
        if wh is not None and abs(wh - width) <= tol:
            width = 0.5 * (width + wh)
        if hh is not None and abs(hh - height) <= tol:
            height = 0.5 * (height + hh)
    return PedicleLandmarks(side=side, isthmus_center_lps=np.asarray(cen_b, float), axis_lps=axis,
                            width_mm=float(width), height_mm=float(height))


def endplate_planes(body_local: np.ndarray, grid: LocalGrid) -> tuple[Plane | None, Plane | None]:
    """Least-squares planes through the top and bottom surface of the body's central part."""
    if not body_local.any():
        return None, None
    foot = body_local.any(axis=2)
    foot_c = ndi.binary_erosion(foot, iterations=max(1, int(round(4.0 / grid.step_mm))))
    if foot_c.sum() < 10:
        foot_c = foot
    zidx = np.arange(body_local.shape[2])
    anyz = body_local.any(axis=2)
    top = np.where(body_local, zidx[None, None, :], -1).max(axis=2)
    bot = np.where(body_local, zidx[None, None, :], 10 ** 6).min(axis=2)
    ix, iy = np.nonzero(foot_c & anyz)
    h, lo = grid.step_mm, grid.lo_mm
    planes = []
    for zz, off in ((top[ix, iy], 0.5), (bot[ix, iy], -0.5)):
        pts = np.column_stack([lo[0] + h * ix, lo[1] + h * iy, lo[2] + h * (zz + off)])
        # robust: drop the 10 % farthest from a first fit (osteophyte rims, notches)
        for _ in range(2):
            A = np.column_stack([pts[:, 0], pts[:, 1], np.ones(len(pts))])
            coef, *_ = np.linalg.lstsq(A, pts[:, 2], rcond=None)
            res = np.abs(A @ coef - pts[:, 2])
            if len(pts) > 20:
                pts = pts[res <= np.quantile(res, 0.9)]
        A = np.column_stack([pts[:, 0], pts[:, 1], np.ones(len(pts))])
        coef, *_ = np.linalg.lstsq(A, pts[:, 2], rcond=None)
        n_local = unit(np.array([-coef[0], -coef[1], 1.0]))
        p_local = np.array([pts[:, 0].mean(), pts[:, 1].mean(), coef[0] * pts[:, 0].mean() + coef[1] * pts[:, 1].mean() + coef[2]])
        planes.append(Plane(grid.center_lps + grid.rot @ p_local, unit(grid.rot @ n_local)))
    return planes[0], planes[1]


def ap_walls(body_f: np.ndarray, grid: LocalGrid, center_local_mm: np.ndarray) -> tuple[float, float] | None:
    """Local y (mm) of the posterior and anterior body wall along the AP line through the centre."""
    h, lo = grid.step_mm, grid.lo_mm
    ys = np.arange(lo[1], lo[1] + h * grid.shape[1], 0.25)
    pts = np.column_stack([np.full_like(ys, center_local_mm[0]), ys, np.full_like(ys, center_local_mm[2])])
    v = ndi.map_coordinates(body_f, ((pts - lo) / h).T, order=1, mode="constant", prefilter=False)
    inside = v >= 0.5
    k0 = int(np.argmin(np.abs(ys - center_local_mm[1])))
    if not inside[k0]:
        cand = np.nonzero(inside)[0]
        if len(cand) == 0:
            return None
        k0 = cand[np.argmin(np.abs(cand - k0))]
    a, b = true_run(inside, k0)
    return float(ys[a] - 0.125), float(ys[b] + 0.125)
