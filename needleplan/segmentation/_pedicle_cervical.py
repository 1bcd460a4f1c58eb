"""Cervical pedicles (C3-C7): the bridge of bone between the canal and the transverse foramen.

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
3. The axis: sections perpendicular to it, refined from that line by
   :func:`~needleplan.segmentation._landmarks.pedicle_landmarks` (see
   ``_anatomy._cervical_pedicle``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from needleplan.segmentation._canal import CanalSection
from needleplan.segmentation._frame import LocalGrid, unit

__all__ = ["cervical_pedicle_start", "narrowest_ray", "CERVICAL_WITH_FORAMINA"]

#: VerSe labels whose pedicles are sought between the canal and the transverse foramen (C3-C7;
#: C2's pedicle rises ~20 deg under its superior facet, a shape this guess does not fit).
CERVICAL_WITH_FORAMINA = frozenset(range(3, 8))
#: Plausible area of a transverse foramen in an axial slice (mm^2).
FORAMEN_AREA_MM2 = (3.0, 80.0)
#: The chord must be bone over at least this fraction of its length.
BONE_FRACTION = 0.8
#: Longest chord taken for a pedicle's isthmus (mm).
MAX_CHORD_MM = 14.0


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
