"""Pedicle isthmus and axis by coronal cuts beside the canal (coarse voxels, odd labels).

On 3 mm voxels a pedicle is three voxels wide and the label blurs it into the body, the
facets and the transverse process, so the general search of
:func:`~needleplan.segmentation._landmarks.pedicle_landmarks` (the narrowest section of
the label) finds no clean narrowest part; thoracic labels that hold a rib head fail it
too.  Here the (smoothed) label on the vertebra's 1 mm local grid (``x`` left, ``y``
anterior, ``z`` superior) is cut by coronal planes (constant ``y``) beside the canal,
from its posterior third to the body: in each cut the component next to the canal at its
height is the pedicle.  The smallest cut is the isthmus, the centroids of the cuts around
it give the axis and the height; the width is the narrowest transverse run along the axis
in the axial slices through the middle of the pedicle (rows behind it run into the
transverse process), taken between the CT's half-maximum bone edges inside the label when
the CT is given (a 3 mm label is about a voxel too generous).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from needleplan.segmentation._canal import CanalSection
from needleplan.segmentation._frame import LocalGrid, unit
from needleplan.segmentation.model import PedicleLandmarks

__all__ = ["coarse_pedicle", "bone_level"]

#: The search starts this fraction of the canal depth in front of its back.
BACK_FRACTION = 0.3
#: Farthest lateral reach of a pedicle beyond the canal's edge (mm).
LATERAL_MM = 16.0
#: Cuts up to this x the smallest area take part in the axis fit.
STRETCH = 1.5


_DISK = np.add.outer(np.arange(-2, 3) ** 2, np.arange(-2, 3) ** 2) <= 5


def _moments(comp: np.ndarray, a: np.ndarray, b: np.ndarray):
    """Area, centroid and the median extents along ``a`` and ``b`` of a binary cut.

    The extents are medians over the rows/columns through the middle half of the cut (a
    pedicle's cut is an oval or a rounded rectangle; second moments would read a rectangle
    15 % wide).
    """
    n = comp.sum()
    if n < 3:
        return None
    ia, ib = np.nonzero(comp)
    ma, mb = a[ia].mean(), b[ib].mean()
    h = abs(a[1] - a[0])
    cb = np.abs(b - mb) <= 0.25 * (np.ptp(b[ib]) + h)
    ca = np.abs(a - ma) <= 0.25 * (np.ptp(a[ia]) + h)
    wa = comp[:, cb].sum(axis=0)
    wb = comp[ca, :].sum(axis=1)
    wa, wb = wa[wa > 0], wb[wb > 0]
    if not len(wa) or not len(wb):
        return None
    return float(n), ma, mb, float(np.median(wa)) * h, float(np.median(wb)) * h


def _without_appendage(comp: np.ndarray, xs: np.ndarray, side: str) -> np.ndarray | None:
    """The pedicle's part of a cut that a transverse process joins laterally (L5's springs
    from the pedicle and the body): the rows above or below the process end at the
    pedicle's lateral wall; everything lateral to it is cut off.  None when no row does."""
    ends = []
    for row in comp.T:
        idx = np.nonzero(row)[0]
        if len(idx) and 0 < idx[0] and idx[-1] < len(row) - 1:
            ends.append(xs[idx[-1]] if side == "left" else xs[idx[0]])
    if len(ends) < 3:
        return None
    if side == "left":
        return comp & (xs <= np.percentile(ends, 75))[:, None]
    return comp & (xs >= np.percentile(ends, 25))[:, None]


#: A run of rows at a cut's top or bottom narrower than half its widest row and longer than
#: this (mm) is a thin process hanging off the pedicle, not its rounded end (an oval's rows
#: below half its width span 7 % of its height at each end).
TAIL_MM = 3.0


def _without_tail(comp: np.ndarray, h: float, zi0: int) -> np.ndarray:
    """A cut with a thin plate above or below the pedicle cut off (in a kyphotic thoracic
    spine a coronal plane runs down the inferior articular process to a rib head: T5's cut
    read 27 mm tall and 3 mm wide); the cut itself when it has none.

    The pedicle is the run of rows at least half as wide as the widest row near it, the
    one nearest row ``zi0`` (the canal's middle); rows beyond it are dropped when they run
    on for more than :data:`TAIL_MM`.
    """
    rows = comp.sum(axis=0)
    zs = np.nonzero(rows)[0]
    if len(zs) < 3:
        return comp
    wide = rows >= 0.5 * rows.max()
    lab, n = ndi.label(wide)
    if n > 1:
        # a neck splits the cut: keep the wide run nearest the canal's middle
        ids = np.arange(1, n + 1)
        dist = [np.abs(np.nonzero(lab == i)[0] - zi0).min() for i in ids]
        wide = lab == ids[int(np.argmin(dist))]
    wz = np.nonzero(wide)[0]
    a, b = wz.min(), wz.max()
    out = comp
    tail = int(np.ceil(1.0 / h))  # the oval's own narrow end
    if (a - zs.min()) * h > TAIL_MM:
        out = out.copy()
        out[:, :max(a - tail, 0)] = False
    if (zs.max() - b) * h > TAIL_MM:
        out = out.copy() if out is comp else out
        out[:, b + tail + 1:] = False
    return out


def _run_at(profile: np.ndarray, xs: np.ndarray, x0: float, *, ends: bool = False):
    """Length (mm) of the run of ``profile >= 0.5`` through ``x0``, ends interpolated."""
    inside = profile >= 0.5
    i0 = int(np.argmin(np.abs(xs - x0)))
    if not inside[i0]:
        cand = np.nonzero(inside)[0]
        if not len(cand) or abs(xs[cand] - x0).min() > 2.0:
            return None
        i0 = int(cand[np.argmin(np.abs(xs[cand] - x0))])
    a = b = i0
    while a > 0 and inside[a - 1]:
        a -= 1
    while b < len(inside) - 1 and inside[b + 1]:
        b += 1
    if a == 0 or b == len(inside) - 1:
        return None  # runs out of the search box: not a pedicle row
    h = abs(xs[1] - xs[0])
    fa = (profile[a] - 0.5) / max(profile[a] - profile[a - 1], 1e-6)
    fb = (profile[b] - 0.5) / max(profile[b] - profile[b + 1], 1e-6)
    if ends:
        return float(xs[a] - fa * h * np.sign(xs[1] - xs[0])), float(xs[b] + fb * h * np.sign(xs[1] - xs[0]))
    return float((b - a + fa + fb) * h)


def bone_level(hu_crop: np.ndarray, mask: np.ndarray, others: np.ndarray | None = None) -> float | None:
    """HU half way between the vertebra's dense bone (90th percentile inside its label) and
    the soft tissue around it; None without bone contrast."""
    if not mask.any():
        return None
    hu = hu_crop.astype(np.float32)
    shell = ndi.binary_dilation(mask, iterations=3) & ~ndi.binary_dilation(mask, iterations=1)
    if others is not None:
        shell &= ~others
    soft = hu[shell & (hu < 200.0) & (hu > -200.0)]
    lo = float(np.median(soft)) if soft.size > 20 else 30.0
    hi = float(np.percentile(hu[mask], 90))
    return None if hi - lo < 150.0 else lo + 0.5 * (hi - lo)


def _bone_extent(bone_row: np.ndarray, xs: np.ndarray, a: float, b: float) -> float | None:
    """Outer extent (mm) of the bone (``bone_row >= 0``, HU minus the half level) inside
    the label run [a, b], ends interpolated; None when there is no bone in it."""
    inside = (xs >= a - 1.0) & (xs <= b + 1.0) & (bone_row >= 0)
    idx = np.nonzero(inside)[0]
    if len(idx) < 2 or idx[0] == 0 or idx[-1] == len(xs) - 1:
        return None
    i, j = idx[0], idx[-1]
    fa = bone_row[i] / max(bone_row[i] - bone_row[i - 1], 1e-6)
    fb = bone_row[j] / max(bone_row[j] - bone_row[j + 1], 1e-6)
    h = abs(xs[1] - xs[0])
    return float((j - i + min(fa, 1.0) + min(fb, 1.0)) * h)


def _axial_width(field, xi, xs, y, z, px, yk, zk, height, bone=None) -> float | None:
    """Isthmus width as measured on axial images: in each slice through the middle half of
    the pedicle's height, the narrowest transverse run along the axis within 5 mm of the
    isthmus cut (rows behind it reach into the transverse process, rows in front into the
    body); the median over the slices."""
    zs = np.nonzero(np.abs(z - zk) <= 0.25 * height)[0]
    js = np.nonzero(np.abs(y - yk) <= 5.0)[0]
    widths, bone_w = [], []
    for kz in zs:
        runs = [(r, j) for j in js if (r := _run_at(field[xi, j, kz], xs, float(np.polyval(px, y[j])))) is not None]
        if runs:
            r, j = min(runs)
            widths.append(r)
            if bone is not None:
                a, b = _run_at(field[xi, j, kz], xs, float(np.polyval(px, y[j])), ends=True)
                e = _bone_extent(bone[xi, j, kz], xs, a, b)
                if e is not None:
                    bone_w.append(e)
    if not widths:
        return None
    w = float(np.median(widths))
    if len(bone_w) >= max(2, len(widths) // 2):
        w = float(np.median(bone_w))
    return w


def coarse_pedicle(side: str, bone_local: np.ndarray, grid: LocalGrid, sec: CanalSection, *,
                   bone: np.ndarray | None = None, trim_lateral: bool = False,
                   trim_tails: bool = False) -> PedicleLandmarks | None:
    """One pedicle from coronal cuts of a mask field; None when it is not there.

    Parameters
    ----------
    side : {'left', 'right'}
    bone_local : ndarray
        Vertebra mask field (0..1, edge at 0.5) on ``grid`` (the smoothed label).
    grid : LocalGrid
    sec : CanalSection
        The vertebral foramen on the same grid.
    bone : ndarray, optional
        CT HU minus the bone half level (:func:`bone_level`) on ``grid``: when given, the
        width is taken between its edges inside the label's run.
    trim_lateral : bool
        Cut off what joins a cut laterally beyond the search box (a transverse process
        springing from the pedicle, as L5's does) at the pedicle's lateral wall, read in
        the cut's rows above and below it.
    trim_tails : bool
        Cut off a thin plate hanging above or below the pedicle in a cut (an articular
        process or a rib head in a fine-voxel thoracic label; :func:`_without_tail`).
    """
    h, lo = grid.step_mm, grid.lo_mm
    x, y, z = grid.axes_mm()
    cols = np.nonzero(sec.mask2d.any(axis=1))[0]
    if len(cols) == 0:
        return None
    cx = sec.center_xy_mm[0]
    if side == "left":
        edge = lo[0] + h * cols.max()
        xin = (x <= edge + LATERAL_MM) & (x > cx + 3.0)
    else:
        edge = lo[0] + h * cols.min()
        xin = (x >= edge - LATERAL_MM) & (x < cx - 3.0)
    y0 = sec.back_y_mm + BACK_FRACTION * (sec.front_y_mm - sec.back_y_mm)
    rows = np.nonzero((y >= y0) & (y <= sec.front_y_mm + 1.0))[0]
    zc = 0.5 * (sec.z_range_mm[0] + sec.z_range_mm[1])
    xi = np.nonzero(xin)[0]
    if len(xi) < 3 or len(rows) < 3:
        return None
    xs = x[xi]
    # the pedicle at the canal's height, next to the canal edge
    seed_z = np.abs(z - zc) <= 8.0
    cuts = []
    for j in rows:
        f2 = bone_local[xi, j, :]
        # close the cortical shell across its darker cancellous core (on 3 mm voxels the
        # medial and lateral cortices can fall apart at the half-maximum level)
        inside = ndi.binary_closing(np.pad(f2 >= 0.5, 3), structure=_DISK)[3:-3, 3:-3]
        lab, n = ndi.label(inside)
        if n == 0:
            continue
        dist_edge = np.abs(xs - edge)[:, None] + np.zeros((1, len(z)))
        score = np.where(inside & seed_z[None, :], dist_edge, np.inf)
        if not np.isfinite(score).any():
            continue
        k = lab[np.unravel_index(np.argmin(score), score.shape)]
        comp = ndi.binary_fill_holes(lab == k)
        if comp[0, :].any() and comp[-1, :].any():
            continue  # spans the whole box: not a pedicle cut
        if trim_lateral and comp[-1 if side == "left" else 0, :].any():
            # runs out of the box laterally: a transverse process joins the pedicle in
            # this cut (L5's springs from the pedicle and the body): cut it off
            comp = _without_appendage(comp, xs, side)
            if comp is None:
                continue
        if trim_tails:
            comp = _without_tail(comp, h, int(np.argmin(np.abs(z - zc))))
        m = _moments(comp, xs, z)
        if m is None:
            continue
        area, mx, mz, wx, hz = m
        cuts.append((y[j], area * h * h, mx, mz, wx, hz))
    if len(cuts) < 3:
        return None
    c = np.array(cuts)
    # a lone small cut at either end (a facet's tip) is no isthmus when trimming
    areas = ndi.median_filter(c[:, 1], size=3, mode="mirror" if trim_lateral else "nearest")
    k = int(np.argmin(areas))
    ok = c[:, 1] <= STRETCH * areas[k]
    a = b = k
    while a > 0 and ok[a - 1] and c[k, 0] - c[a - 1, 0] <= 6.0:
        a -= 1
    while b < len(c) - 1 and ok[b + 1] and c[b + 1, 0] - c[k, 0] <= 6.0:
        b += 1
    if b - a < 2:
        a, b = max(0, k - 2), min(len(c) - 1, k + 2)
    sel = c[a:b + 1]
    yy = sel[:, 0]
    if np.ptp(yy) < 2.0:
        return None
    px = np.polyfit(yy, sel[:, 2], 1)
    pz = np.polyfit(yy, sel[:, 3], 1)
    d_local = unit(np.array([px[0], 1.0, pz[0]]))
    yk = c[k, 0]
    center_local = np.array([np.polyval(px, yk), yk, np.polyval(pz, yk)])
    # perpendicular to the axis, the coronal extents shrink by the cosines of its tilts
    cos_medial = abs(d_local[1]) / np.hypot(d_local[0], d_local[1])
    width = float(c[k, 4]) * cos_medial
    w_axial = _axial_width(bone_local, xi, xs, y, z, px, yk, float(c[k, 3]), float(c[k, 5]), bone=bone)
    if w_axial is not None:
        width = w_axial * cos_medial
    height = float(c[k, 5]) * abs(d_local[1]) / np.hypot(d_local[2], d_local[1])
    if width < 2.0 or height < 3.0:
        return None
    center = grid.center_lps + grid.rot @ center_local
    axis = unit(grid.rot @ d_local)
    return PedicleLandmarks(side=side, isthmus_center_lps=center, axis_lps=axis, width_mm=width, height_mm=height)
