"""The vertebral body column: a spine centreline and the disc spaces along it.

Works on the LPS-aligned :class:`~needleplan.segmentation._bone.WorkGrid` (axis 2
superior).  The vertebral bodies are the thickest bone near the posterior midline of
the trunk: per axial slice the centre of the largest inscribed circle of the filled
bone (weighted toward the midline) gives a candidate, a robust running median turns the
candidates into a smooth centreline, and the mean HU over a small disc perpendicular to
the centreline gives an intensity profile whose low-density dips are the
intervertebral discs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.signal import find_peaks

from needleplan.segmentation._bone import WorkGrid, enclosure_radius

__all__ = ["Column", "find_column", "find_discs"]

#: Smallest inscribed radius (mm) of a vertebral body cross-section we accept.
MIN_BODY_RADIUS_MM = 4.0
#: Half thickness of a disc as a fraction of the local vertebral pitch.
DISC_HALF = 0.12
#: Longest plausible distance between neighbouring discs, in median body radii (the pitch
#: is about 2-3 radii); a longer gap has missed a disc.
MAX_GAP_RADII = 4.5


@dataclass
class Column:
    """Centreline of the vertebral bodies in work-grid coordinates.

    Attributes
    ----------
    z : (N,) ndarray of int
        Work-grid slice indices covered, ascending (caudal to cranial).
    xy : (N, 2) ndarray
        Body-centre position (work voxel indices, float) at each slice.
    radius_mm : (N,) ndarray
        Smoothed inscribed radius of the body cross-section at each slice.
    support : (N,) ndarray of bool
        Slices where the body was actually seen (not interpolated).
    """

    z: np.ndarray
    xy: np.ndarray
    radius_mm: np.ndarray
    support: np.ndarray

    def points_ijk(self) -> np.ndarray:
        return np.column_stack([self.xy, self.z.astype(float)])

    def tangents(self, spacing_mm) -> np.ndarray:
        """(N, 3) unit tangents in mm space, pointing superior."""
        p = self.points_ijk() * np.asarray(spacing_mm)
        if len(p) < 2:
            return np.tile([0.0, 0.0, 1.0], (len(p), 1))
        t = np.gradient(p, axis=0)
        t = ndi.gaussian_filter1d(t, 3.0, axis=0, mode="nearest")
        return t / np.linalg.norm(t, axis=1, keepdims=True)


def _slice_candidates(grid: WorkGrid, bone: np.ndarray, body: np.ndarray, *, top: int = 6,
                      ring=None):
    """Per axial slice up to ``top`` local maxima of the midline-weighted inscribed radius.

    Returns (nz, top, 2) positions (voxel indices, NaN when absent), (nz, top) scores and
    (nz, top) radii in mm.  On slices that show a whole neck an enclosed candidate that is
    the spinal canal is replaced by the body in front of it (:func:`_body_in_front`).
    """
    sx, sy, sz = grid.spacing_mm
    nx, ny, nz = bone.shape
    pos = np.full((nz, top, 2), np.nan)
    score = np.zeros((nz, top))
    rad = np.zeros((nz, top))
    xx = (np.arange(nx) * sx)[:, None]
    yy = (np.arange(ny) * sy)[None, :]
    foot = np.ones((max(3, int(round(8.0 / sx)) | 1), max(3, int(round(8.0 / sy)) | 1)), bool)
    for k in range(nz):
        sl = bone[:, :, k]
        if sl.sum() < 10:
            continue
        edt = ndi.distance_transform_edt(sl, sampling=(sx, sy))
        if ring is not None:
            edt = np.maximum(edt, ring[:, :, k])
        weight = np.ones_like(edt)
        bsl = body[:, :, k]
        area = bsl.sum() * sx * sy
        # trust the body outline only when it is a real trunk, not a crop filling the view
        touches = sum(int(e.any()) for e in (bsl[0], bsl[-1], bsl[:, 0], bsl[:, -1]))
        if area > 150.0 ** 2 * 0.4 and touches <= 2:
            ii, jj = np.nonzero(bsl)
            xmid = ii.mean() * sx
            ylo, yhi = jj.min() * sy, jj.max() * sy
            weight = np.clip(1.2 - np.abs(xx - xmid) / 60.0, 0.0, 1.0) * np.ones_like(yy)
            post = (yy - ylo) / max(yhi - ylo, 1.0)  # the spine lies in the posterior trunk
            weight *= np.clip((post - 0.3) / 0.25, 0.0, 1.0)
        sc = edt * weight
        peaks = (sc == ndi.maximum_filter(sc, footprint=foot)) & (sc >= 2.0)
        ii, jj = np.nonzero(peaks)
        if len(ii) == 0:
            continue
        order = np.argsort(-sc[ii, jj])[:top]
        n = len(order)
        ci, cj = ii[order].astype(float), jj[order].astype(float)
        cs, cr = sc[ii[order], jj[order]], edt[ii[order], jj[order]]
        neck = area < NECK_MAX_MM2 and touches <= 2  # a whole neck in view, not a crop
        for q in range(n if neck else 0):
            if sl[ii[order[q]], jj[order[q]]]:
                continue
            front = _body_in_front(sl, edt, grid.hu[:, :, k], int(ii[order[q]]), int(jj[order[q]]), cr[q],
                                   (sx, sy))
            if front is not None:  # a vertebral foramen: the body lies in front of it
                fi, fj = front
                ci[q], cj[q], cr[q] = fi, fj, edt[fi, fj]
                cs[q] = max(cs[q], sc[fi, fj])
        pos[k, :n] = np.column_stack([ci, cj])
        score[k, :n] = cs
        rad[k, :n] = cr
    return pos, score, rad


#: Largest axial cross-section of a neck (mm2; ~50 cm circumference): below it the slice is
#: taken as a neck, where a wide canal lies behind small bodies (see :func:`_body_in_front`).
NECK_MAX_MM2 = 200.0e2
#: How far in front of an enclosed space its anterior bony wall may lie, and how far in
#: front of that wall the centre of a vertebral body may lie (mm).
CANAL_WALL_MM, CANAL_BODY_MM = 25.0, 20.0
#: Highest median HU of a canal's contents (CSF, cord, epidural fat); marrow is denser.
CANAL_MAX_HU = 50.0
#: Smallest distance from an enclosed point to the anterior wall of a canal (mm).
CANAL_MIN_DEPTH_MM = 1.0


def _body_in_front(sl: np.ndarray, edt: np.ndarray, hu: np.ndarray, i: int, j: int, rad_mm: float,
                   spacing_mm):
    """The body in front of a bone-enclosed space, when that space is a vertebral foramen.

    The spinal canal is a ring of bone whose anterior wall is the back of a vertebral body;
    in the neck the canal is wider than the small bodies in front of it, so its enclosure
    radius beats theirs (used on slices that show a whole neck, smaller than
    :data:`NECK_MAX_MM2`; in the trunk the bodies are the larger).  From the enclosed point
    (``i``, ``j``) walk anteriorly (-j on the LPS-aligned grid) to the first bone, then
    take the thickest bone (or bony ring, ``edt``) within :data:`CANAL_BODY_MM` in front
    of that wall and within 3 mm of the point's sagittal line.  A body is there when that
    thickness is at least :data:`MIN_BODY_RADIUS_MM` and half the space's own radius; in
    front of a real body there is soft tissue.  The space itself must hold soft tissue or
    fluid (median HU within half its radius at most :data:`CANAL_MAX_HU`), not the marrow
    of a hollow body, and its anterior wall must lie at least :data:`CANAL_MIN_DEPTH_MM`
    away.  Returns the body's (i, j) or None.
    """
    sx, sy = spacing_mm
    ri, rj = max(1, int(0.5 * rad_mm / sx)), max(1, int(0.5 * rad_mm / sy))
    box = (slice(max(0, i - ri), i + ri + 1), slice(max(0, j - rj), j + rj + 1))
    inside = hu[box][~sl[box]]
    if inside.size == 0 or float(np.median(inside)) > CANAL_MAX_HU:
        return None
    reach = int(np.ceil(CANAL_WALL_MM / sy))
    hits = np.flatnonzero(sl[i, max(0, j - reach):j][::-1])
    if len(hits) == 0:
        return None
    wall = j - 1 - int(hits[0])
    if (j - wall) * sy < CANAL_MIN_DEPTH_MM:
        return None
    d = max(1, int(round(3.0 / sx)))
    i0, i1 = max(0, i - d), min(sl.shape[0], i + d + 1)
    j0 = max(0, wall - int(np.ceil(CANAL_BODY_MM / sy)))
    win = edt[i0:i1, j0:wall + 1]
    if win.size == 0:
        return None
    a, b = np.unravel_index(int(np.argmax(win)), win.shape)
    val = float(win[a, b])
    if val < max(MIN_BODY_RADIUS_MM, 0.5 * float(rad_mm)):
        return None
    return i0 + int(a), j0 + int(b)


def _track(pos, score, spacing_mm) -> np.ndarray:
    """Viterbi path through the per-slice candidates: high radius, small in-plane jumps.

    Returns (nz,) the chosen candidate index per slice (-1 where a slice has none).
    """
    sx, sy, sz = spacing_mm
    nz, top = score.shape
    reward = np.minimum(score, 25.0)
    cost = np.full((nz, top), -np.inf)
    back = np.zeros((nz, top), int)
    valid = np.isfinite(pos[..., 0])
    cost[0] = np.where(valid[0], reward[0], -np.inf)
    free = 0.7 * sz  # in-plane drift allowed per slice without penalty (mm)
    for k in range(1, nz):
        if not valid[k].any():
            cost[k] = cost[k - 1]
            back[k] = np.arange(top)
            pos[k] = pos[k - 1]
            continue
        prev_ok = np.isfinite(cost[k - 1])
        if not prev_ok.any():
            cost[k] = np.where(valid[k], reward[k], -np.inf)
            back[k] = 0
            continue
        d = np.hypot((pos[k][:, None, 0] - pos[k - 1][None, :, 0]) * sx,
                     (pos[k][:, None, 1] - pos[k - 1][None, :, 1]) * sy)
        pen = 1.0 * np.maximum(d - free, 0.0)
        tot = np.where(prev_ok[None, :] & np.isfinite(d), cost[k - 1][None, :] - pen, -np.inf)
        back[k] = np.argmax(tot, axis=1)
        cost[k] = np.where(valid[k], tot[np.arange(top), back[k]] + reward[k], -np.inf)
    path = np.full(nz, -1)
    path[-1] = int(np.argmax(cost[-1]))
    for k in range(nz - 1, 0, -1):
        path[k - 1] = back[k, path[k]]
    return path


def _recentre(cand: np.ndarray, feature: np.ndarray, spacing_mm) -> np.ndarray:
    """Move each slice's candidate to the centroid of its body cross-section.

    The body is the connected region around the candidate where ``feature`` (bodyness)
    is at least half its value at the candidate; slices where it is weak keep NaN.
    """
    out = np.full_like(cand, np.nan)
    for k in range(len(cand)):
        if not np.isfinite(cand[k, 0]):
            continue
        i, j = int(round(cand[k, 0])), int(round(cand[k, 1]))
        f = feature[:, :, k]
        v = f[i, j]
        if v < 3.0:
            continue
        lab, _ = ndi.label(f >= 0.5 * v)
        if lab[i, j] == 0:
            continue
        ii, jj = np.nonzero(lab == lab[i, j])
        out[k] = ii.mean(), jj.mean()
    return out


def find_column(grid: WorkGrid, bone: np.ndarray, body: np.ndarray,
                feature: np.ndarray | None = None, ring: np.ndarray | None = None) -> Column | None:
    """Locate the vertebral body column; None when there is none.

    ``feature`` (:func:`bodyness`) and ``ring`` (:func:`enclosure_radius`) are computed
    when not given.
    """
    sx, sy, sz = grid.spacing_mm
    # bridge the discs so that every slice of the column shows a body
    n = max(3, int(round(16.0 / sz)) | 1)
    column = ndi.binary_closing(bone, structure=np.ones((1, 1, n), bool), border_value=0) | bone
    if ring is None:
        ring = enclosure_radius(bone, grid.spacing_mm)
    if feature is None:
        feature = bodyness(grid, bone, ring)
    pos, score, rad = _slice_candidates(grid, column, body, ring=ring)
    nz = bone.shape[2]
    has = np.isfinite(pos[:, 0, 0])
    if has.sum() * sz < 15.0:
        return None
    path = _track(pos.copy(), score, grid.spacing_mm)
    cand = np.full((nz, 2), np.nan)
    r = np.zeros(nz)
    for k in range(nz):
        if has[k] and path[k] >= 0 and np.isfinite(pos[k, path[k], 0]):
            cand[k] = pos[k, path[k]]
            r[k] = rad[k, path[k]]
    win = max(3, int(round(30.0 / sz)) | 1)
    r_run = ndi.maximum_filter1d(r, size=max(3, int(round(12.0 / sz)) | 1), mode="constant")
    ok = np.isfinite(cand[:, 0]) & (r_run >= MIN_BODY_RADIUS_MM)
    idx = np.flatnonzero(ok)
    if len(idx) < 3 or len(idx) * sz < 15.0:
        return None
    # longest run of supported slices allowing gaps up to ~20 mm (discs, noise)
    gap = max(2, int(round(20.0 / sz)))
    runs, start = [], idx[0]
    for a, b in zip(idx[:-1], idx[1:]):
        if b - a > gap:
            runs.append((start, a))
            start = b
        del a
    runs.append((start, idx[-1]))
    lo, hi = max(runs, key=lambda rr: float(np.sum(r[rr[0]:rr[1] + 1])))
    if (hi - lo + 1) * sz < 15.0:
        return None
    z = np.arange(lo, hi + 1)
    sel = idx[(idx >= lo) & (idx <= hi)]
    cen = _recentre(cand, feature, grid.spacing_mm)
    good = np.isfinite(cen[:, 0])
    cand = np.where(good[:, None], cen, cand)
    xy = np.column_stack([np.interp(z, sel, cand[sel, c]) for c in range(2)])
    for c in range(2):
        xy[:, c] = ndi.median_filter(xy[:, c], size=max(3, int(round(10.0 / sz)) | 1), mode="nearest")
    xy = ndi.gaussian_filter1d(xy, max(1.0, 8.0 / sz), axis=0, mode="nearest")
    rr = ndi.median_filter(np.interp(z, sel, r[sel]), size=win, mode="nearest")
    return Column(z=z, xy=xy, radius_mm=rr, support=ok[lo:hi + 1])


def _frames(tangents: np.ndarray):
    """Two unit vectors perpendicular to each tangent (u toward +x/left, v toward +y)."""
    ref = np.array([1.0, 0.0, 0.0])
    u = ref - tangents * (tangents @ ref)[:, None]
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(tangents, u)
    return u, v


def profile(grid: WorkGrid, col: Column, *, radius_mm=None, image=None, stat=np.median,
            inner: float = 0.0) -> np.ndarray:
    """``stat`` of ``image`` (default HU) over a disc perpendicular to the centreline."""
    image = grid.hu if image is None else image
    sp = grid.spacing_mm
    t = col.tangents(sp)
    u, v = _frames(t)
    pts_mm = col.points_ijk() * sp
    out = np.empty(len(pts_mm))
    rads = col.radius_mm * 0.6 if radius_mm is None else np.full(len(pts_mm), radius_mm)
    for n, (p, uu, vv, r) in enumerate(zip(pts_mm, u, v, rads)):
        rr = np.linspace(inner * r, max(r, 2.0), 4)
        aa = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        R, A = np.meshgrid(rr, aa)
        q = p + (R * np.cos(A)).ravel()[:, None] * uu + (R * np.sin(A)).ravel()[:, None] * vv
        vals = ndi.map_coordinates(image, (q / sp).T, order=1, mode="nearest")
        out[n] = stat(vals)
    return out


def bodyness(grid: WorkGrid, bone: np.ndarray, ring: np.ndarray | None = None) -> np.ndarray:
    """Per voxel: in-plane inscribed radius of solid bone, or the radius of the enclosing ring.

    High inside vertebral bodies whether their marrow is dense (solid) or dark (a cortical
    ring), about zero in the discs (no bone, no ring): the disc detector's feature.
    """
    sx, sy, sz = grid.spacing_mm
    edt = ndi.distance_transform_edt(bone, sampling=(sx, sy, 1e4)).astype(np.float32)
    edt = np.minimum(edt, 1e3)
    if ring is None:
        ring = enclosure_radius(bone, grid.spacing_mm)
    return np.maximum(edt, ring)


def _regular_subset(z_mm: np.ndarray, score: np.ndarray, *, min_gap_mm: float,
                    max_gap_mm: float, stiffness: float = 2.0) -> list[int]:
    """Best subset of candidate discs: high scores and smoothly varying spacing.

    Maximises ``sum(score) - stiffness * sum(log(gap_k / gap_(k-1))**2)`` by dynamic
    programming over pairs, so a spurious dip half-way up a body (which would halve the
    local spacing) costs more than it earns.
    """
    n = len(z_mm)
    if n == 0:
        return []
    neg = -1e18
    best = np.full((n, n), neg)  # best[i, j]: best total of a sequence ending i, j (i < j)
    back = np.full((n, n), -1)
    for i in range(n):
        for j in range(i + 1, n):
            g = z_mm[j] - z_mm[i]
            if min_gap_mm <= g <= max_gap_mm:
                best[i, j] = score[i] + score[j]
    for j in range(n):
        for k in range(j + 1, n):
            g2 = z_mm[k] - z_mm[j]
            if not (min_gap_mm <= g2 <= max_gap_mm):
                continue
            for i in range(j):
                if best[i, j] <= neg / 2:
                    continue
                g1 = z_mm[j] - z_mm[i]
                v = best[i, j] - stiffness * np.log(g2 / g1) ** 2 + score[k]
                if v > best[j, k]:
                    best[j, k] = v
                    back[j, k] = i
    single = int(np.argmax(score))
    if best.max() <= max(score[single], 0.0):
        return [single] if score[single] > 0 else []
    j, k = np.unravel_index(int(np.argmax(best)), best.shape)
    seq = [k, j]
    while back[j, k] >= 0:
        i = back[j, k]
        seq.append(i)
        j, k = i, j
    return sorted(int(x) for x in seq)


@dataclass
class Discs:
    """Disc spaces along a :class:`Column` (indices into ``Column.z``).

    ``centre``, ``lower``, ``upper``: (D,) int arrays, the dip and the caudal and cranial
    edges of each disc (where the body signal is back at half the bodies' level).
    """

    centre: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    profile: np.ndarray


def _dip_contrast(prof: np.ndarray, idx: np.ndarray, w: int) -> np.ndarray:
    """Height of the lower of the two maxima within ``w`` samples either side, above the dip."""
    out = np.empty(len(idx))
    for n, i in enumerate(idx):
        lo = prof[max(0, i - w):i].max() if i > 0 else prof[i]
        hi = prof[i + 1:i + 1 + w].max() if i < len(prof) - 1 else prof[i]
        out[n] = min(lo, hi) - prof[i]
    return out


#: A dip whose bodyness stays above this fraction of the bodies' level still has bone
#: across the cross-section (a disc has none) ...
DISC_GAP_FRAC = 0.3
#: ... and is a disc only when its HU dip between the nearest endplates (within ~7 mm)
#: reaches this fraction of the column's typical disc contrast.
DISC_PLATE_FRAC = 0.25


def _not_disc(bodyness_frac: np.ndarray, plate_contrast_hu: np.ndarray, scale_hu: float) -> np.ndarray:
    """Dips that are not discs: bone across the cross-section and no endplates around.

    A disc is a band of soft tissue (~50-120 HU) across the whole body cross-section
    between two cortical endplates: either the bone mask is absent there (bodyness below
    :data:`DISC_GAP_FRAC` of the bodies') or the HU dips sharply between two bright
    endplates within ~7 mm (at least :data:`DISC_PLATE_FRAC` of ``scale_hu``, the column's
    typical endplate contrast).  A dip in the marrow of a body (its cortex seen partly on
    coarse voxels, or a tilted body cut obliquely) keeps bone around it and lies half a
    body away from the endplates.
    """
    return (np.asarray(bodyness_frac) >= DISC_GAP_FRAC) & \
        (np.asarray(plate_contrast_hu) < DISC_PLATE_FRAC * float(scale_hu))


def find_discs(grid: WorkGrid, col: Column, feature: np.ndarray) -> Discs:
    """Disc spaces along the column; see :class:`Discs`.

    Two profiles along the centreline (mean over a disc of half the body radius,
    perpendicular to it) are combined:

    * bodyness (:func:`bodyness`): near zero in a disc, high in a body whether its marrow
      is dense or dark -- the robust feature for osteoporotic, noisy scans;
    * HU: a dark band between two bright endplates within ~7 mm -- the feature for thin
      thoracic and cervical discs that blur into the bone mask.

    Every dip of either profile is a candidate scored by both contrasts; dips that keep
    bone across the cross-section without endplates near them (marrow, :func:`_not_disc`)
    are dropped, and a regularly spaced subset (:func:`_regular_subset`) is kept.
    """
    sz = grid.spacing_mm[2]
    rmed = float(np.median(col.radius_mm))
    pb = profile(grid, col, image=feature, stat=np.mean, radius_mm=0.5 * rmed)
    ph = profile(grid, col, stat=np.mean, radius_mm=0.5 * rmed)
    sb = ndi.gaussian_filter1d(pb, max(0.5, 1.0 / sz), mode="nearest")
    sh = ndi.gaussian_filter1d(ph, max(0.3, 0.5 / sz), mode="nearest")
    level = max(float(np.percentile(sb, 80)), 1.0)
    cand = np.union1d(find_peaks(-sb)[0], find_peaks(-sh)[0])
    if len(cand) == 0:
        e = np.zeros(0, int)
        return Discs(e, e, e, pb)
    w = max(2, int(round(7.0 / sz)))
    cb = _dip_contrast(sb, cand, max(2, int(round(15.0 / sz))))
    score_b = np.minimum(cb / level, 1.0) * (1.0 - np.clip(sb[cand] / level, 0.0, 1.0))
    ch = _dip_contrast(sh, cand, w)
    hscale = max(float(np.percentile(ch, 90)), 30.0)
    score_h = np.minimum(ch / hscale, 1.5)
    pts = col.points_ijk() * grid.spacing_mm
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
    # a disc is a gap in the bone across the cross-section, or a dark band between two
    # endplates; a dip in the marrow of a body is neither (see _not_disc)
    disc_like = ~_not_disc(sb[cand] / level, ch, hscale)

    def pick(score):
        order = np.argsort(-score)
        taken = np.zeros(len(cand), bool)
        for i in order:  # candidates closer than 2 samples: keep the best
            if disc_like[i] and not np.any(taken & (np.abs(cand - cand[i]) <= 1)):
                taken[i] = True
        if not taken.any():
            return np.zeros(0, int)
        c, sc = cand[taken], score[taken]
        min_gap = float(np.min(np.maximum(12.0, 1.1 * col.radius_mm[c])))
        return c[_regular_subset(arc[c], sc, min_gap_mm=min_gap, max_gap_mm=60.0)]

    # bodyness alone first (robust on noisy, osteoporotic scans); when its dips are too
    # few to cover the column (thin thoracic discs blurred into the bone mask), add the
    # endplate/HU contrast
    depth = np.minimum(_dip_contrast(sb, cand, max(2, int(round(30.0 / sz)))) / level, 1.0)
    low = 1.0 - np.clip(sb[cand] / level, 0.0, 1.0)
    centre = pick(depth * (0.5 + 0.5 * low) - 0.15)
    # too few dips for the column's length (about one vertebra per 3 body radii)
    expected = arc[-1] / (3.2 * rmed)
    sparse = len(centre) < expected - 1.0
    # ... or a gap between two discs that holds two vertebrae (a cervical disc whose body
    # signal stays high: the lateral masses and arches around it close a bony ring)
    sparse |= bool(len(centre) >= 2 and np.max(np.diff(arc[centre])) > MAX_GAP_RADII * rmed)
    if sparse:
        centre = pick(score_b + 0.6 * score_h - 0.35)
    prof = pb
    # disc thickness ~ a quarter of the local vertebral pitch (lumbar ~9 mm, cervical ~4 mm)
    ca = arc[centre]
    lower, upper = [], []
    for n, c in enumerate(centre):
        gaps = np.diff(ca)
        near = [gaps[m] for m in (n - 1, n) if 0 <= m < len(gaps)]
        pitch = float(np.mean(near)) if near else 2.2 * float(np.median(col.radius_mm))
        half = DISC_HALF * pitch
        lower.append(int(np.searchsorted(arc, arc[c] - half)))
        upper.append(int(np.searchsorted(arc, arc[c] + half, side="right")) - 1)
    return Discs(centre, np.asarray(lower, int), np.asarray(upper, int), prof)
