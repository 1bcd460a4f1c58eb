"""Split the spine bone into vertebrae: body seeds between discs, then a geodesic partition.

Work-grid only (LPS-aligned, see :mod:`._bone`).  Each vertebral body is the bone of
the body column between two disc planes, made solid per axial slice by its convex hull
(osteoporotic marrow is as dark as muscle, so thresholds alone leave it hollow).  The
bodies seed a density-weighted geodesic partition of the bone (:mod:`._v_geodesic`):
low-density gaps (facet and costovertebral joints) are costly, and so are cranial steps
behind the bodies (an arch hangs caudally from its pedicles), so each arch joins the body
its pedicles come from.  Ribs and ilia that leave the vertebra's lateral envelope seed a
competing "other bone" front; rib heads and necks beside the bodies of rib-bearing
vertebrae (lateral of the bodies, in front of a line along the transverse processes'
front) are cut off, and so are rib heads bulging out of a body's sides beyond its outline at
mid-height (where no costal facet is); bone outside the envelope (sternum, femora) is other
bone.  Dense bone cleared with a disc slab is left unlabelled, not "other bone", so that a
tilted endplate cut by the slab may still join its body on the CT grid.  A disc
cut by the edge of the view (no plane found) is cleared from the end body.
The former marker watershed is kept behind :data:`GEODESIC`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull, QhullError

from needleplan.segmentation._bone import WorkGrid
from needleplan.segmentation._v_column import Column, Discs, profile
from needleplan.segmentation._v_geodesic import geodesic_partition

__all__ = ["Segments", "split_levels", "disc_planes", "DiscPlane"]

#: Lateral reach of a vertebra (transverse process tips) in body radii.
LATERAL = 3.3
#: Anterior reach of a vertebra (body radii in front of the column centre, which may run
#: near the back of the bodies).
ANTERIOR = 3.0
#: Seed "other bone" on ribs (and ilia) leaving the lateral envelope (see split_levels).
RIB_SEEDS = True
#: Width of the band outside the envelope a rib must cross to seed "other bone" (mm).
RIB_REACH_MM = 22.0
#: Head start (mm of dense bone) of the rib fronts over the vertebral bodies' fronts
#: (10 mm let the ribs take the tips of the transverse processes).
RIB_HEAD_START_MM = 5.0
#: Rib heads and necks: further than RIB_LAT body radii from the column centre sideways
#: and less than RIB_FRONT behind it (in front of the transverse processes), the limit
#: moving back by RIB_SLOPE per body radius sideways (the processes run posterolaterally
#: and the rib necks lie along their front).
RIB_LAT, RIB_FRONT, RIB_SLOPE = 1.15, 1.3, 0.9
#: Dilation (work voxels) of the solid bodies spared when rib heads are cut (2 kept the
#: rib heads).
NEAR_BODY = 0
#: Rib heads: the costovertebral joints lie on the bodies' posterolateral corners, at the
#: discs (ribs 2-9) or the upper body (1, 10-12), so the body's outline at mid-height
#: (middle :data:`MID_FRAC` of its height; its sideways extent per row front to back, see
#: :func:`_mid_outline`) plus :data:`HEAD_MARGIN_MM` bounds the body seeds, and
#: bone of a rib-bearing vertebra beyond it, further than :data:`HEAD_LAT` body radii
#: sideways and in front of the transverse processes' line (see RIB_FRONT), is rib head.
#: With :data:`._v_refine.RIB_SPLIT`: thoracic phantom T7 .937 -> .964, T8 .959 -> .976; on
#: lidc0314 the pedicle finder once measured the cut's edge (T10 13-15 mm) until its sections
#: were checked against the coronal cuts beside the canal (:mod:`._anatomy`).
HEAD_CUT = True
MID_FRAC = 1.0 / 3.0
HEAD_MARGIN_MM = 1.5
HEAD_LAT = 0.5
#: ... and less than this many body radii in front of the column centre (the costal facets
#: lie on the back of the bodies).
HEAD_FRONT = 0.3
#: Coarsest working voxel (mm) on which the rib heads are cut this way (a 3 mm grid
#: cannot outline a body to the millimetre: -0.005 Dice on ts-abdomen's T12).
HEAD_MAX_VOXEL_MM = 2.5
#: Largest volume (ml) of a rib piece within the band (the ilia are larger).
RIB_MAX_ML = 6.0
#: Posterior reach (body radii behind the column centre) of the convex-hull body filling.
HULL_POST = 0.9
#: ... and at most this many mm (the body radius from the ring feature can be too large).
HULL_POST_MAX_MM = 12.0
#: Density steps (HU, descending) of the watershed landscape over the bone: denser bone
#: floods first, so fronts meet in the low-density facet joints.
WS_BINS_HU = (400.0, 250.0, 150.0)
#: Partition the bone by density-weighted geodesic distance (:mod:`._v_geodesic`) rather
#: than by the watershed.
GEODESIC = True
#: HU at which a geodesic step costs the most (joint gaps, partial volume).
LOOSE_HU = 150.0
#: Cost factor of cranial steps behind the bodies (4.0 gave the tops of the superior
#: articular processes to the vertebra above; 2.0 and less cost the real scans).
UP_COST = 2.5


@dataclass
class Segments:
    """Vertebra pieces on the work grid, numbered 1..n from caudal to cranial.

    Attributes
    ----------
    labels : (X, Y, Z) uint8
        0 background, 1..n vertebrae (caudal first), ``n + 1`` other bone.
    n : int
    bounds : list of (int, int)
        Column index range (into ``Column.z``) of each piece's body.
    partial : list of bool
        Body cut by the edge of the column (a disc on one side only).
    atlas : int
        Piece index of C1 when :mod:`._v_atlas` split its ring off C2's dens, else 0.
    """

    labels: np.ndarray
    n: int
    bounds: list
    partial: list
    atlas: int = 0


@dataclass
class DiscPlane:
    """A disc: centre (mm, work frame), unit normal pointing cranially, half thickness."""

    centre_mm: np.ndarray
    normal: np.ndarray
    half_mm: float

    def distance(self, pts_mm: np.ndarray) -> np.ndarray:
        return (pts_mm - self.centre_mm) @ self.normal


def disc_planes(grid: WorkGrid, col: Column, discs: Discs, feature: np.ndarray) -> list[DiscPlane]:
    """Fit each disc's plane to its low-bodyness voxels (PCA), falling back to the tangent."""
    sp = grid.spacing_mm
    pts = col.points_ijk() * sp
    tang = col.tangents(sp)
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
    level = float(np.percentile(discs.profile, 80)) if len(discs.profile) else 1.0
    out = []
    for c, lw, up in zip(discs.centre, discs.lower, discs.upper):
        c = int(c)
        half = max(0.5 * (arc[int(up)] - arc[int(lw)]), 0.5 * sp[2])
        p0, t = pts[c], tang[c]
        r = 0.8 * float(col.radius_mm[c])
        # voxels near the disc centre: within r of the axis and 1.5 half-thicknesses of the plane
        lo = np.floor((p0 - r - 2 * half) / sp).astype(int)
        hi = np.ceil((p0 + r + 2 * half) / sp).astype(int) + 1
        lo = np.maximum(lo, 0)
        hi = np.minimum(hi, feature.shape)
        sub = feature[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        g = np.argwhere(sub < 0.3 * level) + lo
        normal = t
        if len(g) > 20:
            q = g * sp - p0
            along = q @ t
            radial = np.linalg.norm(q - along[:, None] * t, axis=1)
            sel = (np.abs(along) <= 1.5 * half + sp[2]) & (radial <= r)
            if sel.sum() > 20:
                qq = q[sel]
                cen = qq.mean(0)
                _, _, vt = np.linalg.svd(qq - cen, full_matrices=False)
                nrm = vt[2] * np.sign(vt[2] @ t)
                if nrm @ t > np.cos(np.radians(35)):  # trust only plausible tilts
                    normal = nrm
                    p0 = p0 + (cen @ t) * t if abs(cen @ t) < half else p0
        out.append(DiscPlane(p0, normal / np.linalg.norm(normal), half))
    # neighbouring discs differ by the wedge of one vertebra (lordosis/kyphosis, <= ~25 deg);
    # a fit tilted further (the lumbosacral disc seen along a centreline that bends into
    # the sacrum) is turned back toward its cranial neighbour
    for k in range(len(out) - 2, -1, -1):
        out[k].normal = _limit_turn(out[k].normal, out[k + 1].normal, MAX_DISC_TURN_DEG)
    return out


#: Largest angle between the planes of neighbouring discs.
MAX_DISC_TURN_DEG = 25.0


def _limit_turn(n: np.ndarray, ref: np.ndarray, max_deg: float) -> np.ndarray:
    """``n`` turned toward ``ref`` until the two are at most ``max_deg`` apart."""
    cos = float(np.clip(n @ ref, -1.0, 1.0))
    ang = np.arccos(cos)
    lim = np.radians(max_deg)
    if ang <= lim:
        return n
    w = n - cos * ref
    w /= max(np.linalg.norm(w), 1e-9)
    out = np.cos(lim) * ref + np.sin(lim) * w
    return out / np.linalg.norm(out)


#: Bone cleared from the disc slabs is left unlabelled (not "other bone"), so that the
#: outline on the CT grid may give an endplate cut by a tilted slab back to its body.
SLAB_UNLABELLED = True
#: ... only where the bone is dense enough for cortex (smoothed HU): partial volume of the
#: disc itself stays "other bone".
SLAB_BONE_HU = 200.0
#: Seed the bone behind an end body on the cranial/caudal face of the field of view with
#: that body's label: its arch may join it only outside the view (a crop through the
#: pedicles), and would otherwise go to the neighbour through the facet joints.
FOV_FACE_SEEDS = True
#: The end body counts as cut by the face when the column ends this close to it (mm).
FOV_FACE_MM = 6.0


def _seed_fov_faces(markers: np.ndarray, grid: WorkGrid, candidates: np.ndarray, col: Column,
                    bounds_planes: list) -> None:
    """Mark ``candidates`` on the cranial/caudal face of the view with the end piece's label
    when the face cuts that piece's body (no disc between them; in place); see
    :data:`FOV_FACE_SEEDS`."""
    inside = grid.inside
    n = len(bounds_planes)
    tol = int(np.ceil(FOV_FACE_MM / grid.spacing_mm[2]))
    for end, piece, step in ((-1, n, 1), (0, 1, -1)):
        if bounds_planes[piece - 1][1 if step > 0 else 0] is not None:
            continue  # a disc between this body and the face
        # face: inside voxels whose neighbour beyond (cranial/caudal) is outside the view
        nxt = np.zeros_like(inside)
        if step > 0:
            nxt[:, :, :-1] = inside[:, :, 1:]
        else:
            nxt[:, :, 1:] = inside[:, :, :-1]
        face = inside & ~nxt
        kz = int(col.z[end])
        ks = np.flatnonzero(face.any(axis=(0, 1)))
        if not len(ks) or np.min(np.abs(ks - kz)) > tol:
            continue  # the column stops short of the face
        seed = face & candidates & (markers == 0)
        markers[seed] = piece


#: A band piece whose craniocaudal extent exceeds this many times its largest horizontal
#: extent runs along the spine (a contrast-filled carotid or jugular vein, 170-230 HU, bone
#: on the work grid: 4.7 in a turned neck), not away from it like a rib (0.5-1.0 measured
#: on the phantoms and the TotalSegmentator abdomen).
RIB_ALONG_RATIO = 2.5


def _not_along_spine(bl: np.ndarray, nb: int, spacing_mm) -> np.ndarray:
    """(nb + 1,) bool: band pieces ``1..nb`` of ``bl`` that do not run along the spine.

    A rib crosses the band beside the envelope laterally; a contrast-filled vessel running
    up the neck lies in the band too when the neck is tilted or turned, and as a "rib" its
    rib-head cut took the lateral masses and articular pillars of every vertebra it
    touched (C4 Dice 0.97 -> 0.71 tilted 3 deg).  Such pieces still seed "other bone".
    """
    out = np.ones(nb + 1, bool)
    out[0] = False
    sp = np.asarray(spacing_mm, float)
    for c, sl in enumerate(ndi.find_objects(bl), start=1):
        if sl is None:
            continue
        ext = np.array([s.stop - s.start for s in sl]) * sp
        out[c] = ext[2] <= RIB_ALONG_RATIO * max(ext[0], ext[1])
    return out


def _hull_fill(mask2d: np.ndarray) -> np.ndarray:
    """Convex hull of the True pixels of a 2-D mask (as a mask)."""
    pts = np.argwhere(mask2d)
    if len(pts) < 4:
        return mask2d.copy()
    try:
        hull = ConvexHull(pts)
    except QhullError:
        return mask2d.copy()
    lo = pts.min(0)
    hi = pts.max(0) + 1
    gi, gj = np.mgrid[lo[0]:hi[0], lo[1]:hi[1]]
    q = np.stack([gi, gj], axis=-1).astype(float)
    eq = hull.equations
    inside = np.all(q @ eq[:, :2].T + eq[:, 2] <= 1e-6, axis=-1)
    out = mask2d.copy()
    out[lo[0]:hi[0], lo[1]:hi[1]] |= inside
    return out


def _connected_to_seeds(lab: np.ndarray, markers: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """Keep only labelled voxels whose bone component (within the domain) holds a seed."""
    comp, n = ndi.label(domain, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return lab
    seeded = np.zeros(n + 1, bool)
    seeded[np.unique(comp[markers > 0])] = True
    seeded[0] = False
    return np.where(seeded[comp], lab, 0).astype(np.uint8)


#: An end of the column whose bodyness is below this fraction of its body's median is a
#: disc cut by the edge of the view ...
END_DISC_FRAC = 0.5
#: ... at most this thick (mm), and darker than this fraction of the endplate's HU.
END_DISC_MM = 8.0
END_PLATE_FRAC = 0.85


def _end_disc_slices(grid: WorkGrid, col: Column, discs: Discs, pieces: list) -> list[int]:
    """Work slices (axis 2) of discs cut by the edge of the view at the column's ends.

    Beyond the last endplate (the brightest sample near the end) the samples whose
    bodyness has fallen below :data:`END_DISC_FRAC` of the body's and whose HU below
    :data:`END_PLATE_FRAC` of the endplate's are disc.
    """
    prof = np.asarray(discs.profile, float)
    ncol = len(col.z)
    if len(prof) != ncol or not pieces:
        return []
    sz = float(grid.spacing_mm[2])
    cap = max(1, int(round(END_DISC_MM / sz)))
    hu = profile(grid, col, stat=np.mean, radius_mm=0.5 * float(np.median(col.radius_mm)))
    out = []
    for (a, b), step in ((pieces[0], 1), (pieces[-1], -1)):
        if (step == 1 and a != 0) or (step == -1 and b != ncol - 1):
            continue  # bounded by a disc found between two bodies
        ref = float(np.median(prof[a:b + 1]))
        if ref <= 0 or b - a < 2 * cap:
            continue
        end = np.arange(a, a + cap + 1) if step == 1 else np.arange(b, b - cap - 1, -1)
        plate = int(end[int(np.argmax(hu[end]))])  # the endplate
        for i in end:
            if i == plate or prof[i] >= END_DISC_FRAC * ref or hu[i] >= END_PLATE_FRAC * hu[plate]:
                break
            out.append(int(col.z[i]))
    return out


#: Rows (front to back, work voxels) of the mid-height outline around the column centre.
OUTLINE_ROWS = 64
#: Percentile over the mid-height slices of a row's sideways extent (25 beat the median
#: and the minimum on the thoracic phantom; the minimum cut into tilted real bodies).
OUTLINE_PCT = 25.0


def _mid_outline(dx: np.ndarray, dy: np.ndarray, ci: np.ndarray, piece_of: np.ndarray,
                 pieces: list, row_mm: float) -> np.ndarray:
    """Sideways extent of each body at mid-height, per side and row front to back.

    Returns ``(n + 1, 2, OUTLINE_ROWS)`` mm: body voxels (offsets ``dx``, ``dy`` in mm from
    the column centre, column index ``ci``, piece ``piece_of``) in the middle
    :data:`MID_FRAC` of their piece's column range; per slice, side (right, left) and row
    (``dy`` in steps of ``row_mm``) the largest ``|dx|``, then its :data:`OUTLINE_PCT` percentile over the slices
    holding that row (infinite where fewer than two do).  Rib heads bulge out of the body's
    sides near its ends only, so they are no part of it.
    """
    rows = _outline_row(dy, row_mm)
    side = (dx > 0).astype(int)
    adx = np.abs(dx)
    out = np.full((len(pieces) + 1, 2, OUTLINE_ROWS), np.inf)
    for m, (a, b) in enumerate(pieces, start=1):
        lo = a + (b - a) * 0.5 * (1.0 - MID_FRAC)
        hi = a + (b - a) * 0.5 * (1.0 + MID_FRAC)
        sel = (piece_of == m) & (ci >= lo) & (ci <= hi) & (rows >= 0) & (rows < OUTLINE_ROWS)
        if sel.sum() < 20:
            continue
        ks = ci[sel] - int(ci[sel].min())
        ext = np.full((int(ks.max()) + 1, 2, OUTLINE_ROWS), np.nan)
        ext_f = np.full(ext.shape, -1.0)
        np.maximum.at(ext_f, (ks, side[sel], rows[sel]), adx[sel])
        ext[ext_f >= 0] = ext_f[ext_f >= 0]
        held = np.isfinite(ext).sum(axis=0)
        ok = held >= 2
        if ok.any():
            out[m][ok] = np.nanpercentile(ext[:, ok], OUTLINE_PCT, axis=0)
    return out


def _outline_row(dy: np.ndarray, row_mm: float) -> np.ndarray:
    """Row of :func:`_mid_outline` of offsets ``dy`` (mm, + posterior) from the column centre."""
    return np.floor(dy / row_mm).astype(int) + OUTLINE_ROWS // 2


def _beyond_outline(dx: np.ndarray, dy: np.ndarray, outline: np.ndarray, row_mm: float) -> np.ndarray:
    """Offsets sideways beyond a body's mid-height ``outline`` (one row of :func:`_mid_outline`)
    by more than :data:`HEAD_MARGIN_MM`."""
    rows = _outline_row(dy, row_mm)
    ok = (rows >= 0) & (rows < OUTLINE_ROWS)
    lim = np.full(dx.shape, np.inf)
    lim[ok] = outline[(dx[ok] > 0).astype(int), rows[ok]]
    return np.abs(dx) > lim + HEAD_MARGIN_MM


def _head_sector(dx: np.ndarray, dy: np.ndarray, radius_mm: np.ndarray, rmed: float) -> np.ndarray:
    """Where rib heads may lie: sideways of the column centre by more than :data:`HEAD_LAT`
    body radii and in front of the transverse processes' line (see :data:`RIB_FRONT`)."""
    rl = np.clip(radius_mm, 0.6 * rmed, 1.5 * rmed)
    adx = np.abs(dx)
    return (adx > HEAD_LAT * rl) & (dy > -HEAD_FRONT * rl) \
        & (dy < (RIB_FRONT - RIB_SLOPE * RIB_LAT) * rl + RIB_SLOPE * adx)


#: Rib heads straddle the discs: the head cut reaches this far (mm) beyond a body's column
#: range.
HEAD_REACH_MM = 6.0


def _rib_heads(mask: np.ndarray, grid: WorkGrid, col: Column, outline: np.ndarray, piece: tuple,
               rmed: float, theta: float = 0.0) -> np.ndarray:
    """Voxels of ``mask`` (one vertebra) beyond its body's mid-height ``outline`` in the head
    sector (:func:`_head_sector`), within the body's column range ``piece`` and
    :data:`HEAD_REACH_MM` beyond it."""
    sp = grid.spacing_mm
    ncol = len(col.z)
    z0 = int(col.z[0])
    reach = int(np.ceil(HEAD_REACH_MM / sp[2]))
    k_lo = max(0, z0 + piece[0] - reach)
    k_hi = min(mask.shape[2], z0 + piece[1] + reach + 1)
    out = np.zeros(mask.shape, bool)
    vi, vj, vk = np.nonzero(mask[:, :, k_lo:k_hi])
    vk = vk + k_lo
    ci = np.clip(vk - z0, 0, ncol - 1)
    dx = (vi - col.xy[ci, 0]) * sp[0]
    dy = (vj - col.xy[ci, 1]) * sp[1]
    tx, ty = _turn(dx, dy, theta)
    sel = _head_sector(tx, ty, col.radius_mm[ci], rmed) & _beyond_outline(dx, dy, outline, sp[1])
    out[vi[sel], vj[sel], vk[sel]] = True
    return out


#: Turn the rib zones with each vertebra's axial rotation (scoliosis: the vertebrae turn
#: toward the convexity, and the transverse process there runs further back).
ROTATED_ZONES = True
#: Largest axial rotation (deg) taken from the spinous process; at most ...
MAX_ROTATION_DEG = 25.0
#: ... and none below this (a straight spine's spinous tip is a voxel off the midline).
MIN_ROTATION_DEG = 3.0
#: Share of a vertebra's voxels, furthest back, taken as its spinous tip.
TIP_FRAC = 0.03


def _turn(dx: np.ndarray, dy: np.ndarray, theta: float):
    """Offsets in a vertebra's own frame: its back turned ``theta`` (rad) from +y toward +x."""
    if theta == 0.0:
        return dx, dy
    c, s = np.cos(theta), np.sin(theta)
    return dx * c - dy * s, dx * s + dy * c


def _axial_rotation(mask: np.ndarray, grid: WorkGrid, col: Column) -> float:
    """Axial rotation (rad) of one vertebra: the direction from the column centre to its
    spinous tip (its voxels furthest back), 0 when small or implausible."""
    sp = grid.spacing_mm
    vi, vj, vk = np.nonzero(mask)
    if len(vi) < 50:
        return 0.0
    ci = np.clip(vk - int(col.z[0]), 0, len(col.z) - 1)
    dx = (vi - col.xy[ci, 0]) * sp[0]
    dy = (vj - col.xy[ci, 1]) * sp[1]
    tip = dy >= np.quantile(dy, 1.0 - TIP_FRAC)
    theta = float(np.arctan2(np.mean(dx[tip]), np.mean(dy[tip])))
    if not (np.radians(MIN_ROTATION_DEG) <= abs(theta) <= np.radians(MAX_ROTATION_DEG)):
        return 0.0
    return theta


def _rib_zone_turned(mask: np.ndarray, grid: WorkGrid, col: Column, rmed: float, theta: float,
                     ant: float) -> np.ndarray:
    """Voxels of ``mask`` in the rib zone (see :data:`RIB_LAT`) of a vertebra turned by
    ``theta``."""
    sp = grid.spacing_mm
    vi, vj, vk = np.nonzero(mask)
    ci = np.clip(vk - int(col.z[0]), 0, len(col.z) - 1)
    tx, ty = _turn((vi - col.xy[ci, 0]) * sp[0], (vj - col.xy[ci, 1]) * sp[1], theta)
    rl = np.clip(col.radius_mm[ci], 0.6 * rmed, 1.5 * rmed)
    adx = np.abs(tx)
    sel = (adx > RIB_LAT * rl) & (ty >= -ant) & (ty < (RIB_FRONT - RIB_SLOPE * RIB_LAT) * rl + RIB_SLOPE * adx)
    out = np.zeros(mask.shape, bool)
    out[vi[sel], vj[sel], vk[sel]] = True
    return out


def _column_step_mm(col: Column, spacing_mm) -> np.ndarray:
    """Length (mm) of the body column along the spine per column sample.

    A sample spans one work slice; where the spine is tilted (a kyphotic upper thoracic
    spine runs 40-60 deg off the head-foot axis) one slice holds more of the column.
    """
    sp = np.asarray(spacing_mm, float)
    tz = np.abs(col.tangents(sp)[:, 2])
    return sp[2] / np.maximum(tz, 0.5)


def split_levels(grid: WorkGrid, bone: np.ndarray, col: Column, discs: Discs,
                 feature: np.ndarray, *, min_piece_mm: float = 8.0) -> Segments:
    """Label the vertebrae of ``col`` split at ``discs``."""
    sp = grid.spacing_mm
    nx, ny, nz = bone.shape
    ncol = len(col.z)
    planes = disc_planes(grid, col, discs, feature)
    # body ranges: from the cranial edge of one disc to the caudal edge of the next
    starts = [0] + [int(u) + 1 for u in discs.upper]
    ends = [int(lw) - 1 for lw in discs.lower] + [ncol - 1]
    pieces, partial, bounds_planes = [], [], []
    run_mm = _column_step_mm(col, sp)
    for m, (a, b) in enumerate(zip(starts, ends)):
        # a body between two discs is as long as the column between them; an end piece
        # cut by the edge of the view counts its slices (the column's direction there is
        # extrapolated)
        inner = 0 < m < len(planes)
        if (run_mm[a:b + 1].sum() if inner else (b - a + 1) * sp[2]) < min_piece_mm:
            continue
        pieces.append((a, b))
        partial.append(m == 0 or m == len(planes))
        bounds_planes.append((planes[m - 1] if m > 0 else None, planes[m] if m < len(planes) else None))
    if not pieces:
        return Segments(np.zeros(bone.shape, np.uint8), 0, [], [])
    n = len(pieces)
    other = n + 1
    rmed = float(np.median(col.radius_mm))

    xs = (np.arange(nx) * sp[0])[:, None]
    ys = (np.arange(ny) * sp[1])[None, :]
    markers = np.zeros(bone.shape, np.uint8)
    allowed = np.zeros(bone.shape, bool)
    zone3 = np.zeros(bone.shape, bool)
    hull_zone = np.zeros(bone.shape, bool)
    outer = np.zeros(bone.shape, bool)  # a band just outside the lateral envelope
    far = np.zeros(bone.shape, bool)  # ... and its lateral edge
    rib_zone = np.zeros(bone.shape, bool)  # where rib heads and necks lie
    rib_like = np.zeros(bone.shape, bool)
    z0 = int(col.z[0])
    # envelope of a vertebra around the body centre (mm): lateral, anterior, posterior
    ant, post = ANTERIOR * rmed, 7.5 * rmed
    body_lat, body_ant, body_post = 1.7 * rmed, 1.6 * rmed, 1.1 * rmed
    beyond = int(np.ceil(30.0 / sp[2]))  # arches and processes reach past the last body
    for k in range(nz):
        ci = k - z0
        if ci < -beyond or ci >= ncol + beyond:
            continue
        outside = ci < 0 or ci >= ncol
        ci = int(np.clip(ci, 0, ncol - 1))
        cx, cy = col.xy[ci] * sp[:2]
        dx = xs - cx
        dy = ys - cy
        rl = float(np.clip(col.radius_mm[ci], 0.6 * rmed, 1.5 * rmed))
        allowed[:, :, k] = (np.abs(dx) <= LATERAL * rl) & (dy >= -ant) & (dy <= post)
        if RIB_SEEDS:
            band = (np.abs(dx) > LATERAL * rl) & (np.abs(dx) <= LATERAL * rl + RIB_REACH_MM) \
                & (dy >= -ant) & (dy <= post)
            outer[:, :, k] = band
            far[:, :, k] = band & (np.abs(dx) > LATERAL * rl + RIB_REACH_MM - 2.0 * sp[0])
            adx = np.abs(dx)
            rib_zone[:, :, k] = (adx > RIB_LAT * rl) & (dy >= -ant) \
                & (dy < (RIB_FRONT - RIB_SLOPE * RIB_LAT) * rl + RIB_SLOPE * adx)
        if outside:
            continue
        zone3[:, :, k] = ((dx / body_lat) ** 2 + (dy / np.where(dy > 0, body_post, body_ant)) ** 2) <= 1.0
        # the solid body stops short of the canal (a hull over the pedicle roots fills its front)
        hull_post = min(HULL_POST * rmed, HULL_POST_MAX_MM)
        hull_zone[:, :, k] = ((dx / body_lat) ** 2 + (dy / np.where(dy > 0, hull_post, body_ant)) ** 2) <= 1.0
    bi, bj, bk = np.nonzero(zone3 & bone)
    pmm = np.column_stack([bi, bj, bk]) * sp
    piece_of = np.zeros(len(bi), np.int16)
    for m, (below, above) in enumerate(bounds_planes, start=1):
        ok = piece_of == 0
        if below is not None:
            ok &= below.distance(pmm) >= below.half_mm
        if above is not None:
            ok &= above.distance(pmm) <= -above.half_mm
        piece_of[ok] = m
    keep = piece_of > 0
    bci = np.clip(bk - z0, 0, ncol - 1)
    bdx = bi * sp[0] - col.xy[bci, 0] * sp[0]
    bdy = bj * sp[1] - col.xy[bci, 1] * sp[1]
    outline = None
    if RIB_SEEDS and HEAD_CUT and float(np.max(sp)) <= HEAD_MAX_VOXEL_MM:
        outline = _mid_outline(bdx, bdy, bci, piece_of, pieces, sp[1])
        # rows where the body zone's own edge (not the bone) bounds the outline say nothing
        dy_far = np.abs((np.arange(OUTLINE_ROWS) - OUTLINE_ROWS // 2 + 0.5) * sp[1]) + 0.5 * sp[1]
        half = np.where(np.arange(OUTLINE_ROWS) >= OUTLINE_ROWS // 2, body_post, body_ant)
        edge = body_lat * np.sqrt(np.clip(1.0 - (dy_far / half) ** 2, 0.0, None))
        outline = np.where(outline >= edge - sp[0], np.inf, outline)
    if outline is not None:
        # no body seeds on the rib heads (beyond the mid-height outline, in the head sector)
        for m in range(1, n + 1):
            sel = np.flatnonzero(piece_of == m)
            beyond = _head_sector(bdx[sel], bdy[sel], col.radius_mm[bci[sel]], rmed) \
                & _beyond_outline(bdx[sel], bdy[sel], outline[m], sp[1])
            keep[sel[beyond]] = False
    markers[bi[keep], bj[keep], bk[keep]] = piece_of[keep]
    # a body too short to keep beyond the end pieces (cut by the edge of the view) is
    # still a body: it seeds "other bone" so that its neighbour does not grow into it
    low, high = bounds_planes[0][0], bounds_planes[-1][1]
    end = np.zeros(len(bi), bool)
    if low is not None:
        end |= low.distance(pmm) < -low.half_mm
    if high is not None:
        end |= high.distance(pmm) > high.half_mm
    end &= ~keep
    markers[bi[end], bj[end], bk[end]] = other
    # make each body solid: convex hull per axial slice and piece
    for m in range(1, n + 1):
        for k in np.unique(bk[piece_of == m]):
            sl = markers[:, :, k] == m
            add = _hull_fill(sl) & (markers[:, :, k] == 0) & hull_zone[:, :, k]
            markers[:, :, k][add] = m
    body_solid = markers > 0
    if FOV_FACE_SEEDS:
        _seed_fov_faces(markers, grid, bone & allowed & ~zone3, col, bounds_planes)
    # partition inside the envelope only: every bone voxel there belongs to some vertebra
    # (ribs are cut at the envelope; outside it, bone is "other")
    domain = (bone | body_solid) & allowed
    if RIB_SEEDS and outer.any():
        # ribs (and ilia) leave the envelope and run on laterally: the bone of the band
        # outside the envelope that reaches the band's far edge seeds "other bone" and
        # competes for the rib necks and heads, which then stop at the costovertebral and
        # costotransverse joints (low density, costly for the geodesic fronts)
        bl, nb = ndi.label(bone & outer, structure=np.ones((3, 3, 3), bool))
        if nb:
            reach = np.zeros(nb + 1, bool)
            reach[np.unique(bl[far & (bl > 0)])] = True
            reach[0] = False
            rib = reach[bl] & (markers == 0)
            markers[rib] = other
            domain = domain | rib
            # ribs cross the band as thin bars; the ilia as large plates
            vol_ml = ndi.sum_labels(np.ones(bl.shape, np.float32), bl, np.arange(nb + 1)) * np.prod(sp) / 1e3
            thin = reach & (vol_ml < RIB_MAX_ML) & _not_along_spine(bl, nb, sp)
            rib_like = thin[bl]
    # every bone voxel goes to the body it is joined to by the cheapest path through bone
    # (GEODESIC), or the former marker watershed: dense bone floods first.
    sigma = np.maximum(0.7 / sp, 0.5)
    hu = ndi.gaussian_filter(grid.hu, sigma)
    if GEODESIC:
        dense = 400.0
        if (bone & allowed).any():
            dense = float(np.clip(np.percentile(hu[bone & allowed], 75), 250.0, 600.0))
        # behind the bodies, climbing costs more (see geodesic_partition)
        up = np.ones(bone.shape, np.float32)
        up[~zone3] = UP_COST
        lab = geodesic_partition(domain, markers, hu, sp, dense_hu=dense, loose_hu=LOOSE_HU, up_cost=up,
                                 handicap_mm={other: -RIB_HEAD_START_MM})
    else:
        bins = -np.asarray(WS_BINS_HU, float)
        land = np.where(domain, np.digitize(-hu, bins).astype(np.float32), 99.0).astype(np.float32)
        img = sitk.GetImageFromArray(land.transpose(2, 1, 0).copy())
        mk = sitk.GetImageFromArray(markers.transpose(2, 1, 0).copy())
        ws = sitk.MorphologicalWatershedFromMarkers(img, mk, markWatershedLine=False, fullyConnected=True)
        lab = sitk.GetArrayFromImage(ws).transpose(2, 1, 0).astype(np.uint8)
    lab[~domain] = 0
    # bone pieces inside the envelope but not connected to any body through bone stay out
    lab = _connected_to_seeds(lab, markers, domain)
    if RIB_SEEDS and rib_zone.any():
        # rib heads and necks: lateral of the body and in front of the transverse
        # processes, in vertebrae that the "other bone" grown from thin rib seeds (not
        # from the ilia's plates) reaches
        cl, nc = ndi.label(lab == other, structure=np.ones((3, 3, 3), bool))
        good = np.zeros(nc + 1, bool)
        good[np.unique(cl[rib_like])] = True
        good[np.unique(cl[(markers == other) & ~rib_like & outer])] = False
        good[0] = False
        ribs = ndi.binary_dilation(good[cl] & ~zone3, structure=np.ones((3, 3, 3), bool))
        near_body = body_solid & (markers <= n)
        if NEAR_BODY:
            near_body = ndi.binary_dilation(near_body, iterations=NEAR_BODY)
        for m in np.unique(lab[ribs & (lab > 0) & (lab <= n)]):
            mask = lab == m
            theta = _axial_rotation(mask, grid, col) if ROTATED_ZONES else 0.0
            if theta == 0.0:
                cut = mask & rib_zone & ~near_body
            else:
                cut = _rib_zone_turned(mask, grid, col, rmed, theta, ant) & ~near_body
            if outline is not None:
                cut |= _rib_heads(mask, grid, col, outline[m], pieces[m - 1], rmed, theta)
            lab[cut] = other
    # bodies do not cross their discs: anterior voxels (body region) on the far side of a
    # piece's disc plane go to the neighbouring piece (e.g. S1's body reached from L5)
    vi, vj, vk = np.nonzero(lab)
    ci = np.clip(vk - z0, 0, ncol - 1)
    dy_mm = (vj - col.xy[ci, 1]) * sp[1]
    front = dy_mm < 0.5 * rmed
    vi, vj, vk = vi[front], vj[front], vk[front]
    vmm = np.column_stack([vi, vj, vk]) * sp
    vl = lab[vi, vj, vk].astype(int)
    new = vl.copy()
    for m, (below, above) in enumerate(bounds_planes, start=1):
        sel = vl == m
        if below is not None and m > 1:
            new[sel & (below.distance(vmm) < -below.half_mm)] = m - 1
        if above is not None and m < n:
            new[sel & (above.distance(vmm) > above.half_mm)] = m + 1
    lab[vi, vj, vk] = new.astype(np.uint8)
    # the discs belong to no vertebra: clear the disc slabs inside the body zone; their
    # dense bone (an endplate or a body's corner cut by a slab tilted like the lumbosacral
    # wedge) is left unlabelled, not "other bone", for the CT-grid outline (SLAB_UNLABELLED)
    zi, zj, zk = np.nonzero(zone3 & (lab > 0) & ~body_solid)
    zmm = np.column_stack([zi, zj, zk]) * sp
    slab = np.zeros(len(zi), bool)
    for pl in planes:
        slab |= np.abs(pl.distance(zmm)) < pl.half_mm
    lab[zi[slab], zj[slab], zk[slab]] = 0
    disc_bone = np.zeros(bone.shape, bool)
    if SLAB_UNLABELLED:
        dense_end = hu[zi, zj, zk] >= SLAB_BONE_HU
        disc_bone[zi[slab & dense_end], zj[slab & dense_end], zk[slab & dense_end]] = True
    # a disc cut by the edge of the view has no plane: its slices at the column's ends
    # are cleared in the body zone, left unlabelled (not "other bone") so that the
    # outline on the CT grid may still give the endplate's bright voxels to the body
    end_disc = np.zeros(bone.shape, bool)
    for k in _end_disc_slices(grid, col, discs, pieces):
        end_disc[:, :, k] = zone3[:, :, k]
    lab[end_disc] = 0
    out = np.where(lab > 0, lab, np.where(bone & ~end_disc & ~disc_bone, other, 0)).astype(np.uint8)
    return Segments(out, n, pieces, partial)
