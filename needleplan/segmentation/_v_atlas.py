"""The atlas and the axis (C1, C2): split C1's ring off the piece that holds C2's dens.

There is no disc between C1 and C2, so the disc split (:mod:`._v_label`) leaves them in one
piece, the most cranial one.  C2 is recognised by its dens: going up the body column from
C2's body the bone core narrows to a peg (the dens, about half the body's radius) that a
separate ring of bone surrounds -- C1's anterior arch just in front of it (across the
atlanto-dental joint, a few mm), its lateral masses on both sides.  The atlas has no body
of its own: everything of that ring is C1.  The piece is re-partitioned between a C2 seed
(the body below the ring and the dens core) and a C1 seed (the ring), by the same
density-weighted geodesic partition as the other vertebrae, so the low-density
atlanto-axial joints separate them.

Work-grid only (LPS-aligned, axis 1 posterior, axis 2 superior; see :mod:`._bone`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from needleplan.segmentation._bone import WorkGrid
from needleplan.segmentation._v_column import Column
from needleplan.segmentation._v_geodesic import geodesic_partition

__all__ = ["find_dens", "split_atlas"]

#: A dens slice: bone core at the column at most this fraction of the body's core radius.
DENS_MAX_FRACTION = 0.8
#: How far from the smoothed column the dens is looked for in each slice (mm).
PEG_SEARCH_MM = 6.0
#: Smallest core radius of a dens (mm): less is no bone at all (above the dens tip).
DENS_MIN_RADIUS_MM = 2.0
#: The anterior arch lies in front of the dens: distance between the dens's front cortex and
#: the arch's (mm; the atlanto-dental interval is 1-3 mm in adults, wider after injury) ...
ARCH_PEAKS_MM = (1.5, 10.0)
#: ... with a dip of the HU between them below this fraction of the lower of the two.
DIP_FRACTION = 0.75
#: ... and the lateral masses beside it, within this distance of the dens axis (mm).
LATERAL_MASS_MM = (6.0, 30.0)
#: Largest inscribed radius (mm) of the bodies below a dens: C2-C4 bodies are 15-20 mm
#: deep (radius 7.5-10 mm); thoracic and lumbar bodies are larger.
MAX_BODY_RADIUS_MM = 12.5
#: Fewest consecutive ring slices (mm along the column) that make an atlas.
MIN_RING_MM = 4.5
#: Lateral reach of the atlas (transverse process tips, ~40 mm from the dens axis), mm.
ATLAS_REACH_MM = 45.0
#: Rim voxels of the bone mask darker than this (HU) are partial volume, not bone.
RIM_HU = 250.0
#: HU above which a voxel counts as bone on the rays (the dens and ring cortex).
RAY_BONE_HU = 250.0


def _core(edt2: np.ndarray, p: np.ndarray, reach_vox) -> tuple[np.ndarray, float]:
    """The thickest bone (in-plane inscribed radius, mm) near ``p``: within ``reach_vox``
    sideways, one voxel in front of it and ``reach_vox`` behind (the anterior arch, which
    blurs into the dens, lies in front).  Returns its position (voxel indices) and radius.
    The smoothed column may drift off a tilted dens by a few mm."""
    i, j = int(round(p[0])), int(round(p[1]))
    ri, rj = int(reach_vox[0]), int(reach_vox[1])
    i0, j0 = max(0, i - ri), max(0, j - min(rj, 1))
    win = edt2[i0:i + ri + 1, j0:j + rj + 1]
    if win.size == 0:
        return np.asarray(p, float), 0.0
    a, b = np.unravel_index(int(np.argmax(win)), win.shape)
    return np.array([i0 + a, j0 + b], float), float(win[a, b])


def _ring_around(hu2: np.ndarray, p: np.ndarray, core_mm: float, sp) -> bool:
    """Bone in front of the peg across a gap (anterior arch) and on both sides (lateral masses).

    Along the anterior ray (-j) the peg's front cortex and the arch are two HU peaks with a
    dip between them (the atlanto-dental joint, blurred on the work grid): the dip must
    fall below :data:`DIP_FRACTION` of the lower peak, the peaks lie
    :data:`ARCH_PEAKS_MM` apart, the first (the peg's cortex) between half the peg's
    radius and its radius + 4 mm from the axis.
    """
    i, j = int(round(p[0])), int(round(p[1]))
    nx, ny = hu2.shape
    if not (0 <= i < nx and 0 <= j < ny):
        return False
    steps = np.arange(0, int(np.ceil((core_mm + ARCH_PEAKS_MM[1] + 6.0) / sp[1])) + 1)
    jj = j - steps
    ok = jj >= 0
    if ok.sum() < 4:
        return False
    ray = np.full(len(steps), -1000.0)
    for di in (-1, 0, 1):
        ii = int(np.clip(i + di, 0, nx - 1))
        ray[ok] = np.maximum(ray[ok], hu2[ii, jj[ok]])
    d = steps * sp[1]
    peaks = [n for n in range(1, len(ray) - 1)
             if ray[n] >= RAY_BONE_HU and ray[n] >= ray[n - 1] and ray[n] >= ray[n + 1]]
    front = [n for n in peaks if 0.5 * core_mm - sp[1] <= d[n] <= core_mm + 4.0]
    if not front:
        return False
    p1 = front[0]
    found = False
    for p2 in (n for n in peaks if n > p1):
        sep = d[p2] - d[p1]
        if sep > ARCH_PEAKS_MM[1]:
            break
        dip = float(ray[p1:p2 + 1].min())
        if sep >= ARCH_PEAKS_MM[0] and dip <= DIP_FRACTION * min(ray[p1], ray[p2]):
            found = True
            break
    if not found:
        return False
    bone = hu2 > RAY_BONE_HU
    # lateral masses: bone on both sides
    lo, hi = LATERAL_MASS_MM
    for sgn in (1, -1):
        steps = np.arange(int(np.floor(max(lo, core_mm + 2.0) / sp[0])), int(np.ceil(hi / sp[0])) + 1)
        ii = i + sgn * steps
        ok = (ii >= 0) & (ii < nx)
        if not ok.any():
            return False
        band = bone[ii[ok]][:, max(0, j - int(6.0 / sp[1])):j + int(6.0 / sp[1]) + 1]
        if not band.any():
            return False
    return True


def find_dens(grid: WorkGrid, bone: np.ndarray, col: Column, seg):
    """Column indices ``(base, c0, c1)`` of the dens base and of the atlas ring around the
    dens (``c0..c1``), the dens radius (mm) and the peg's axis (``(N, 2)`` work voxel
    positions per column index, the column's own below the top piece).

    Looks in the most cranial piece only (C1 and C2 share it: no disc between them).
    Returns None when the column does not run up into a dens inside a ring.
    """
    if seg.n == 0:
        return None
    sp = grid.spacing_mm
    a, b = seg.bounds[-1]
    ncol = len(col.z)
    # reference: the core radius of the bodies (every piece's slices below the candidate)
    radii = np.zeros(ncol)
    axis = np.array(col.xy, float)
    hu = grid.hu
    one = np.ones(2)
    reach = np.maximum(1, np.round(PEG_SEARCH_MM / sp[:2]))
    for c in range(ncol):
        k = int(col.z[c])
        edt2 = ndi.distance_transform_edt(bone[:, :, k], sampling=sp[:2])
        if c >= a:
            axis[c], radii[c] = _core(edt2, col.xy[c], reach)
        else:
            radii[c] = _core(edt2, col.xy[c], one)[1]
            # the column's caudal tail can sit on the arch behind a turned body: the body is
            # then the thickest bone of the piece in that slice
            own = seg.labels[:, :, k]
            own = (own >= 1) & (own < seg.n)
            if radii[c] < DENS_MIN_RADIUS_MM and own.any():
                radii[c] = float(edt2[own].max())
    body_idx = np.concatenate([np.arange(p, q + 1) for p, q in seg.bounds[:-1]] +
                              [np.arange(a, a + max(1, (b - a + 1) // 3))])
    r_body = float(np.median(radii[body_idx])) if len(body_idx) else 0.0
    if not 3.0 <= r_body <= MAX_BODY_RADIUS_MM:
        return None
    ring = np.zeros(ncol, bool)
    for c in range(a, ncol):
        r = radii[c]
        if not (DENS_MIN_RADIUS_MM <= r <= DENS_MAX_FRACTION * r_body):
            continue
        ring[c] = _ring_around(hu[:, :, int(col.z[c])], axis[c], r, sp)
    # the longest run of ring slices (a single slice missing does not break it)
    ring[1:-1] |= ring[:-2] & ring[2:]
    best, run_start, best_run = None, None, 0
    for c in range(a, ncol + 1):
        if c < ncol and ring[c]:
            run_start = c if run_start is None else run_start
            continue
        if run_start is not None and c - run_start > best_run:
            best_run, best = c - run_start, (run_start, c - 1)
        run_start = None
    if best is None or best_run * sp[2] < MIN_RING_MM:
        return None
    c0, c1 = best
    r_dens = float(np.median(radii[c0:c1 + 1]))
    base = c0  # the peg starts below the ring, where the core narrows above C2's body
    while base - 1 > a and DENS_MIN_RADIUS_MM <= radii[base - 1] <= DENS_MAX_FRACTION * r_body:
        base -= 1
    return base, c0, c1, r_dens, axis


def split_atlas(grid: WorkGrid, bone: np.ndarray, col: Column, seg, *, loose_hu: float = 150.0):
    """Split C1 off the most cranial piece when it holds C2's dens inside C1's ring.

    Returns a new :class:`~._v_label.Segments` with C1 as piece ``n + 1`` (``atlas`` set to
    its index, other bone renumbered to ``n + 2``), or ``seg`` unchanged.
    """
    found = find_dens(grid, bone, col, seg)
    if found is None:
        return seg
    base, c0, c1, r_dens, axis = found
    sp = grid.spacing_mm
    n = seg.n
    top = seg.labels == n
    ncol = len(col.z)
    z0 = int(col.z[0])
    nx, ny, nz = bone.shape
    xs = (np.arange(nx) * sp[0])[:, None]
    ys = (np.arange(ny) * sp[1])[None, :]
    c2_seed = np.zeros(bone.shape, bool)
    c1_seed = np.zeros(bone.shape, bool)
    keep = np.ones(bone.shape, bool)
    k_ring0 = int(col.z[c0])
    k_base = int(col.z[base])
    k_piece = int(col.z[seg.bounds[-1][0]])
    k_top = int(col.z[min(c1, ncol - 1)])
    other = n + 1
    lateral = np.zeros(bone.shape, bool)
    for k in range(nz):
        c = int(np.clip(k - z0, 0, ncol - 1))
        cx, cy = axis[c] * sp[:2]
        d = np.hypot(xs - cx, ys - cy)
        if k < k_base - 1:
            c2_seed[:, :, k] = True  # all of the piece below the dens: C2's body and arch
        elif k <= k_top + 1:
            c2_seed[:, :, k] = d <= max(r_dens - sp[0], sp[0])  # the dens core
        if k >= k_base:
            # no solid-body filling between dens and ring, and no partial-volume rim: the
            # ring encloses the canal and the foramina, which must stay empty
            b = bone[:, :, k]
            rim = b & ~ndi.binary_erosion(b)
            keep[:, :, k] = b & ~(rim & (grid.hu[:, :, k] < RIM_HU))
        if k_ring0 - 1 <= k <= k_top + 1:
            c1_seed[:, :, k] = d >= r_dens + 3.0
        if k >= k_piece:
            # C1's transverse processes reach far out; C2's arch, turned out of the envelope
            # of a rotated neck, can be left as other bone below the dens base too
            lateral[:, :, k] = d <= ATLAS_REACH_MM
    domain = (top & keep) | ((seg.labels == other) & lateral)
    markers = np.zeros(bone.shape, np.uint8)
    markers[top & keep & c2_seed] = 1
    markers[top & keep & c1_seed] = 2
    if not (markers == 1).any() or not (markers == 2).any():
        return seg
    hu = ndi.gaussian_filter(grid.hu, np.maximum(0.7 / sp, 0.5))
    dense = float(np.clip(np.percentile(hu[domain], 75), 250.0, 600.0))
    part = geodesic_partition(domain, markers, hu, sp, dense_hu=dense, loose_hu=loose_hu)
    labels = seg.labels.copy()
    labels[labels == other] = n + 2
    labels[top & ~keep] = 0
    labels[domain & (part == 2)] = n + 1
    labels[domain & (part == 1)] = n
    a, b = seg.bounds[-1]
    bounds = list(seg.bounds[:-1]) + [(a, max(a, c0 - 1)), (c0, max(c0, b))]
    partial = list(seg.partial[:-1]) + [False, False]
    return type(seg)(labels, n + 1, bounds, partial, atlas=n + 1)
