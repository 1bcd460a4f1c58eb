"""Split the spine bone into vertebrae: body seeds between discs, then a marker watershed.

Work-grid only (LPS-aligned, see :mod:`._bone`).  Each vertebral body is the bone of
the body column between two disc planes, made solid per axial slice by its convex hull
(osteoporotic marrow is as dark as muscle, so thresholds alone leave it hollow).  The
bodies seed a watershed over the bone (dense bone floods first, so fronts meet in the
low-density facet joints and discs); bone outside a generous envelope around the column
(ribs beyond the costotransverse joints, ilia, femora, sternum) seeds a competing
"other bone" region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi
from scipy.spatial import ConvexHull, QhullError

from needleplan.segmentation._bone import WorkGrid
from needleplan.segmentation._v_column import Column, Discs

__all__ = ["Segments", "split_levels", "disc_planes", "DiscPlane"]

#: Lateral reach of a vertebra (transverse process tips) in body radii.
LATERAL = 3.3
#: Posterior reach (body radii behind the column centre) of the convex-hull body filling.
HULL_POST = 0.9
#: ... and at most this many mm (the body radius from the ring feature can be too large).
HULL_POST_MAX_MM = 12.0


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
    """

    labels: np.ndarray
    n: int
    bounds: list
    partial: list


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
    for m, (a, b) in enumerate(zip(starts, ends)):
        if (b - a + 1) * sp[2] < min_piece_mm:
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
    z0 = int(col.z[0])
    # envelope of a vertebra around the body centre (mm): lateral, anterior, posterior
    ant, post = 1.8 * rmed, 7.5 * rmed
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
    # watershed inside the envelope only: every bone voxel there belongs to some vertebra
    # (ribs are cut at the envelope; outside it, bone is "other")
    domain = (bone | body_solid) & allowed
    # flat inside the bone: the watershed becomes a geodesic Voronoi partition (every bone
    # voxel goes to the body it is joined to by the shortest path through bone); with an
    # intensity landscape, noise lets one front invade all the dense arches first.
    # Low-density bone (joint margins, partial volume) floods a step later.
    sigma = np.maximum(0.7 / sp, 0.5)
    hu = ndi.gaussian_filter(grid.hu, sigma)
    land = np.where(domain, np.digitize(-hu, [-400.0, -250.0, -150.0]).astype(np.float32), 9.0).astype(np.float32)
    img = sitk.GetImageFromArray(land.transpose(2, 1, 0).copy())
    mk = sitk.GetImageFromArray(markers.transpose(2, 1, 0).copy())
    ws = sitk.MorphologicalWatershedFromMarkers(img, mk, markWatershedLine=False, fullyConnected=True)
    lab = sitk.GetArrayFromImage(ws).transpose(2, 1, 0).astype(np.uint8)
    lab[~domain] = 0
    # bone pieces inside the envelope but not connected to any body through bone stay out
    lab = _connected_to_seeds(lab, markers, domain)
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
    # the discs belong to no vertebra: clear the disc slabs inside the body zone
    zi, zj, zk = np.nonzero(zone3 & (lab > 0) & ~body_solid)
    zmm = np.column_stack([zi, zj, zk]) * sp
    slab = np.zeros(len(zi), bool)
    for pl in planes:
        slab |= np.abs(pl.distance(zmm)) < pl.half_mm
    lab[zi[slab], zj[slab], zk[slab]] = 0
    out = np.where(lab > 0, lab, np.where(bone, other, 0)).astype(np.uint8)
    return Segments(out, n, pieces, partial)
