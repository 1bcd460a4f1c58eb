"""Cervical pedicles (C2-C7): the bridge of bone between the canal and the transverse foramen.

A cervical pedicle is short and turns 35-45 deg medially; it joins the body to the
lateral mass, with the vertebral canal medial to it and the transverse foramen (the
vertebral artery's) lateral to it.  The band beside the canal that
:func:`~needleplan.segmentation._parts.split_parts` takes for a pedicle lies behind this
isthmus, and coronal cuts of so oblique a tube mix body, pedicle and lateral mass.

1. :func:`cervical_pedicle_start`: in each axial slice of the vertebra's local grid
   (``x`` left, ``y`` anterior, ``z`` superior), the shortest chord of bone from the canal
   to the transverse foramen; the median over the middle slices gives a first centre, the
   foramen's centre, and a first axis across the direction to the foramen.
2. :func:`narrowest_ray`: on lines through the foramen's centre, the shortest run of bone
   to the canal crosses the pedicle at its isthmus: its length is the width, its midpoint
   the centre (sub-voxel, from the interpolated label).
3. :func:`tube_fit`: the axis and height of an elliptic tube, narrowest at the isthmus,
   fitted to the pedicle's walls around it (the sections perpendicular to the axis are
   clean over only ~3 mm of so short a pedicle: beyond, they take in the lateral mass,
   the transverse process and the body, and their centroids tilted the axis 3-6 deg).
   C2's pedicle rises 20-25 deg toward the front under its superior facet: its tube is
   fitted in front of the isthmus and refined from the bridge's axial line.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import least_squares

from needleplan.segmentation._canal import CanalSection
from needleplan.segmentation._frame import LocalGrid, unit

__all__ = ["cervical_pedicle_start", "narrowest_ray", "tube_fit", "CERVICAL_WITH_FORAMINA"]

#: VerSe labels whose pedicles are sought between the canal and the transverse foramen (C2-C7;
#: C2's rises ~20-25 deg under its superior facet: only the tube fit finds its axis).
CERVICAL_WITH_FORAMINA = frozenset(range(2, 8))
#: Plausible area of a transverse foramen in an axial slice (mm^2).
FORAMEN_AREA_MM2 = (3.0, 80.0)
#: The chord must be bone over at least this fraction of its length.
BONE_FRACTION = 0.8
#: Longest chord taken for a pedicle's isthmus (mm).
MAX_CHORD_MM = 14.0
#: Fewest wall points for the tube fit of :func:`tube_fit`.
TUBE_MIN_POINTS = 60


def _foramen(holes_lab: np.ndarray, n: int, x: np.ndarray, canal_k: int, side: str, edge_x: float,
             h: float) -> np.ndarray | None:
    """The hole lateral of the canal edge on ``side`` that is nearest to it, or None."""
    best, best_d = None, np.inf
    for k in range(1, n + 1):
        if k == canal_k:
            continue
        comp = holes_lab == k
        area = comp.sum() * h * h
        if not FORAMEN_AREA_MM2[0] <= area <= FORAMEN_AREA_MM2[1]:
            continue
        xc = x[np.nonzero(comp)[0]].mean()
        d = (xc - edge_x) if side == "left" else (edge_x - xc)
        if 0.0 < d < best_d:
            best, best_d = comp, d
    return best


def cervical_pedicle_start(side: str, mask_local: np.ndarray, grid: LocalGrid,
                           sec: CanalSection) -> tuple[np.ndarray, np.ndarray, float, np.ndarray] | None:
    """Isthmus centre and axis (LPS) of one cervical pedicle from the canal-foramen bridge.

    Parameters
    ----------
    side : {'left', 'right'}
    mask_local : (X, Y, Z) ndarray of bool
        The vertebra on its local grid.
    grid : LocalGrid
    sec : CanalSection
        The vertebral foramen on the same grid.

    Returns
    -------
    (centre_lps, axis_lps, chord_mm, foramen_lps) or None
        None when no transverse foramen closed by the label lies on that side (then the
        general search applies); ``chord_mm`` is the median canal-to-foramen chord and
        ``foramen_lps`` the transverse foramen's centre at the isthmus height.
    """
    h, lo = grid.step_mm, grid.lo_mm
    x, y, z = grid.axes_mm()
    cols = np.nonzero(sec.mask2d.any(axis=1))[0]
    if len(cols) == 0:
        return None
    edge_x = x[cols.max()] if side == "left" else x[cols.min()]
    cx = sec.center_xy_mm[0]
    z_lo, z_hi = sec.z_range_mm
    ks = np.nonzero((z >= z_lo - 4.0) & (z <= z_hi + 4.0))[0]
    lateral = (x > cx) if side == "left" else (x < cx)
    rows = []
    for kz in ks:
        b = mask_local[:, :, kz]
        if not b.any():
            continue
        holes = ndi.binary_fill_holes(b) & ~b
        lab, n = ndi.label(holes)
        if n < 2:
            continue
        over = np.bincount(lab[sec.mask2d], minlength=n + 1)
        over[0] = 0
        canal_k = int(np.argmax(over))
        canal = lab == canal_k if over[canal_k] else sec.mask2d
        fora = _foramen(lab, n, x, canal_k if over[canal_k] else -1, side, edge_x, h)
        if fora is None:
            continue
        d_f, i_f = ndi.distance_transform_edt(~fora, sampling=h, return_indices=True)
        d_c, i_c = ndi.distance_transform_edt(~canal, sampling=h, return_indices=True)
        s = np.where(b & lateral[:, None], d_f + d_c, np.inf)
        if not np.isfinite(s).any():
            continue
        p = np.unravel_index(int(np.argmin(s)), s.shape)
        pf = np.array([x[i_f[0][p]], y[i_f[1][p]]])
        pc = np.array([x[i_c[0][p]], y[i_c[1][p]]])
        chord = float(np.linalg.norm(pf - pc))
        if not 1.5 <= chord <= MAX_CHORD_MM:
            continue
        t = np.linspace(0.0, 1.0, max(int(chord / (0.5 * h)), 4))[1:-1]
        pts = pc[None, :] + t[:, None] * (pf - pc)[None, :]
        ii = np.clip(np.rint((pts - lo[:2]) / h).astype(int), 0, np.array(b.shape) - 1)
        if b[ii[:, 0], ii[:, 1]].mean() < BONE_FRACTION:
            continue
        # the transverse foramen lies straight lateral of the isthmus, across the pedicle's
        # axis: the direction to its centroid is sub-pixel (the chord's ends are not)
        mxy = 0.5 * (pf + pc)
        fi = np.argwhere(fora)
        u_dir = unit(np.array([x[fi[:, 0]].mean(), y[fi[:, 1]].mean()]) - mxy)
        rows.append((z[kz], chord, *mxy, *u_dir, x[fi[:, 0]].mean(), y[fi[:, 1]].mean()))
    if len(rows) < 3:
        return None
    r = np.array(rows)
    # the slices through the middle of the bridge's height (its top and bottom slices cut
    # the pedicle's rounded edges and whatever joins it there)
    zc = 0.5 * (r[:, 0].min() + r[:, 0].max())
    half = 0.25 * (r[:, 0].max() - r[:, 0].min()) + 0.5 * h
    mid = r[np.abs(r[:, 0] - zc) <= half]
    if len(mid) == 0:
        mid = r
    d = unit(np.median(mid[:, 4:6], axis=0))
    axis_xy = np.array([-d[1], d[0]])  # perpendicular to the chord ...
    if axis_xy[1] < 0:
        axis_xy = -axis_xy  # ... pointing anterior
    centre_local = np.array([np.median(mid[:, 2]), np.median(mid[:, 3]), zc])
    axis_local = unit(np.array([axis_xy[0], axis_xy[1], 0.0]))
    fora_local = np.array([np.median(mid[:, 6]), np.median(mid[:, 7]), zc])
    return (grid.center_lps + grid.rot @ centre_local, unit(grid.rot @ axis_local), float(np.median(mid[:, 1])),
            grid.center_lps + grid.rot @ fora_local)



def _run_beyond_hole(v: np.ndarray, s: np.ndarray) -> tuple[float, float] | None:
    """Start and end (mm along the ray) of the first run of bone (``v >= 0.5``) on a ray
    that starts in a hole, ends interpolated; None when there is none or it does not end."""
    inside = v >= 0.5
    i = int(np.argmax(inside))
    if not inside[i] or i == 0:
        return None
    j = i
    while j < len(s) - 1 and inside[j + 1]:
        j += 1
    if j == len(s) - 1:
        return None
    ds = s[1] - s[0]
    fa = (v[i] - 0.5) / max(v[i] - v[i - 1], 1e-6)
    fb = (v[j] - 0.5) / max(v[j] - v[j + 1], 1e-6)
    return float(s[i] - ds * fa), float(s[j] + ds * fb)


def narrowest_ray(sampler, grid: LocalGrid, foramen_lps, toward_lps, *, z_offsets=(-1.0, 0.0, 1.0),
                  half_angle_deg: float = 30.0):
    """The shortest crossing of the pedicle on lines through the transverse foramen's centre.

    Rays leave the foramen's centre in the local axial plane, turned by up to
    ``half_angle_deg`` from ``toward_lps`` (the direction to the canal-foramen bridge); on
    each the interpolated label is sampled every 0.05 mm and the run of bone beyond the
    foramen's edge measured.  The shortest run crosses the pedicle at its isthmus: its
    length is the isthmus width and its midpoint the isthmus centre (both sub-voxel).  Its
    direction is poorly defined (the run grows only with the cosine of the turn), so the
    axis is left to the sections perpendicular to it.

    Returns
    -------
    (width_mm, centre_lps, across_lps) or None
        ``across_lps`` is the unit direction of the shortest run (from the canal toward the
        foramen).
    """
    up = grid.rot[:, 2]
    t0 = np.asarray(toward_lps, float)
    d0 = unit(t0 - (t0 @ up) * up)
    e0 = np.cross(up, d0)
    s = np.arange(0.0, 20.0, 0.05)
    angles = np.radians(np.arange(-half_angle_deg, half_angle_deg + 1e-9, 0.5))
    found = []
    for dz in z_offsets:
        f = np.asarray(foramen_lps, float) + dz * up
        runs = []
        for a in angles:
            d = np.cos(a) * d0 + np.sin(a) * e0
            runs.append(_run_beyond_hole(sampler(f[None, :] + s[:, None] * d[None, :]), s))
        lens = np.array([np.inf if r is None else r[1] - r[0] for r in runs])
        if not np.isfinite(lens).any():
            continue
        k = int(np.argmin(lens))
        d = np.cos(angles[k]) * d0 + np.sin(angles[k]) * e0
        found.append((lens[k], f + 0.5 * (runs[k][0] + runs[k][1]) * d, d))
    if not found:
        return None
    width = float(np.median([r[0] for r in found]))
    centre = np.mean([r[1] for r in found], axis=0)
    across = unit(-np.mean([r[2] for r in found], axis=0))
    return width, centre, across



def _wall_points(sampler, c, d, u, w, s_values, *, n_angles=36, r_max=7.0, gate=1.35):
    """Points (LPS) where rays from the line c + s d, perpendicular to it, first leave the
    interpolated label (its 0.5 level).  A ray that leaves farther than ``gate`` x the
    isthmus section's radius in its direction (+0.3 mm) ran into something joined to the
    pedicle and is dropped."""
    r = np.arange(0.0, r_max + 1e-9, 0.1)
    th = np.linspace(0.0, 2 * np.pi, n_angles, endpoint=False)
    dirs = np.cos(th)[:, None] * u[None, :] + np.sin(th)[:, None] * w[None, :]
    s_values = np.concatenate([[0.0], np.asarray(s_values, float)])
    centres = c[None, :] + s_values[:, None] * d[None, :]
    v = sampler(centres[:, None, None, :] + r[None, None, :, None] * dirs[None, :, None, :])
    below = v < 0.5
    k = np.argmax(below, axis=2)  # first sample outside, per section and ray
    kk = np.maximum(k, 1)
    va = np.take_along_axis(v, (kk - 1)[..., None], axis=2)[..., 0]
    vb = np.take_along_axis(v, kk[..., None], axis=2)[..., 0]
    f = (va - 0.5) / np.maximum(va - vb, 1e-6)
    rr = np.where(below.any(axis=2) & (k > 0), r[kk - 1] + f * (r[1] - r[0]), np.inf)
    inside = v[:, 0, 0] >= 0.5  # the section's centre is in the label
    if not inside[0]:
        return np.zeros((0, 3))
    ref = ndi.median_filter(np.where(np.isfinite(rr[0]), rr[0], r_max), size=5, mode="wrap")
    ok = inside[1:, None] & np.isfinite(rr[1:]) & (rr[1:] <= gate * ref[None, :] + 0.3)
    pts = centres[1:, None, :] + rr[1:, :, None] * dirs[None, :, :]
    return pts[ok]


def tube_fit(sampler, centre_lps, axis_lps, lateral_lps, *, width_mm: float,
             s_range_mm: tuple[float, float] = (-4.0, 6.0), iterations: int = 1):
    """Axis and height of a pedicle from an elliptic tube fitted to its walls around the isthmus.

    The pedicle is modelled as a tube of elliptic cross-section (one diameter across,
    toward ``lateral_lps``, the other along the pedicle's height) that is narrowest at its
    isthmus and flares symmetrically both ways (radii x ``1 + k s^2``).  Rays perpendicular
    to the first line (``centre_lps``, ``axis_lps``) find the label's walls every 0.5 mm
    along ``s_range_mm``; walls joined by the lateral mass, the transverse process or the
    body are dropped by the gate of :func:`_wall_points` and down-weighted by the robust
    (soft-L1) least squares.  All four walls take part, so the axis does not rest on the
    direction of one short chord or on the centroids of a few clean sections.

    Parameters
    ----------
    sampler : callable
        Interpolated vertebra label (0..1) at LPS points.
    centre_lps, axis_lps : array_like
        First isthmus centre and axis (anterior).
    lateral_lps : array_like
        Direction toward the pedicle's lateral side.
    width_mm : float
        First isthmus width (starting radius).
    s_range_mm : (float, float)
        Range of the wall rays along the axis around the centre.
    iterations : int
        Fits, each from the previous one's axis (the rays are cast perpendicular to it).

    Returns
    -------
    (centre_lps, axis_lps, width_mm, height_mm) or None
        The fitted isthmus centre, unit axis (anterior) and diameters; None with too few
        wall points.
    """
    c0 = np.asarray(centre_lps, float)
    d0 = unit(axis_lps)
    lat = np.asarray(lateral_lps, float)
    fit = None
    for _ in range(iterations):
        u0 = unit(lat - (lat @ d0) * d0)
        w0 = np.cross(d0, u0)
        pts = _wall_points(sampler, c0, d0, u0, w0, np.arange(s_range_mm[0], s_range_mm[1] + 1e-9, 0.5))
        if len(pts) < TUBE_MIN_POINTS:
            break
        fit = _fit_tube(pts, c0, d0, u0, w0, width_mm)
        moved = float(np.degrees(np.arccos(np.clip(fit[1] @ d0, -1.0, 1.0))))
        d0 = fit[1]
        if moved < 0.2:
            break
    return fit


def _fit_tube(pts, c0, d0, u0, w0, width_mm):
    """Robust least-squares elliptic tube (narrowest at its centre) through wall points."""

    def model(x):
        # x: axis turn toward u0 and w0, centre shift along u0, w0, d0, radii, flare
        d = unit(d0 + x[0] * u0 + x[1] * w0)
        c = c0 + x[2] * u0 + x[3] * w0 + x[4] * d0
        uu = unit(u0 - (u0 @ d) * d)
        q = pts - c
        sv, a, b = q @ d, q @ uu, q @ np.cross(d, uu)
        sc = 1.0 + x[7] * np.minimum(sv * sv, 100.0)
        rho = np.hypot(a / (x[5] * sc), b / (x[6] * sc))
        return (rho - 1.0) * np.sqrt(x[5] * x[6]) * sc, d, c

    x0 = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.5 * width_mm, 0.65 * width_mm, 0.005])
    lo = [-0.7, -0.7, -3.0, -3.0, -3.0, 1.0, 1.0, 0.0]
    hi = [0.7, 0.7, 3.0, 3.0, 3.0, 8.0, 8.0, 0.05]
    x0 = np.clip(x0, lo, hi)
    res = least_squares(lambda x: model(x)[0], x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.3)
    _, d, c = model(res.x)
    return c, unit(d if d @ d0 > 0 else -d), 2.0 * res.x[5], 2.0 * res.x[6]
