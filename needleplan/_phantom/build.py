"""Assemble a synthetic spine CT: poses, grid, tissue, bone, truth, blur and noise."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from needleplan._phantom.morphometry import level_geometry
from needleplan._phantom.ribs import paint_ribs
from needleplan._phantom.soft_tissue import HU, SpineProfile, paint_soft_tissue
from needleplan._phantom.vertebra import VertebraModel, unit
from needleplan.segmentation.model import PART_ARCH, PART_BODY, PART_PEDICLE_LEFT, PART_PEDICLE_RIGHT

__all__ = ["stack_vertebrae", "Grid", "rotation_matrix", "paint_all", "paint_table", "AXIS_SIGNS"]

#: Direction signs of the array axes (i, j, k) in LPS for each patient position, as a
#: scanner writes axial images (e.g. prone: IOP = -1,0,0,0,-1,0).
AXIS_SIGNS = {"HFS": (1, 1, 1), "HFP": (-1, -1, 1), "FFS": (-1, 1, -1), "FFP": (1, -1, -1)}

CORTEX_HU = 1150.0
CORTEX_MM = 1.1
BODY_CORTEX_MM = 0.8
CANCELLOUS_HU = 170.0
SACRUM = 26
ARCH_CORE_HU = 250.0


def rotation_matrix(rotation_deg) -> np.ndarray:
    """Rotation about L, then P, then S axes (degrees): ``Rz @ Ry @ Rx``."""
    rx, ry, rz = np.deg2rad(np.asarray(rotation_deg, dtype=float))
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    mx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    my = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    mz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return mz @ my @ mx


def _tilt_rot(theta_deg: float) -> np.ndarray:
    t = np.deg2rad(theta_deg)
    return np.column_stack([[1.0, 0, 0], [0, np.cos(t), np.sin(t)], [0, -np.sin(t), np.cos(t)]])


def scoliosis_angles(n: int, cobb_deg: float):
    """Coronal tilt and axial rotation (degrees) of ``n`` levels, caudal first, for a C curve.

    The coronal tilt runs linearly from ``-cobb/2`` (lowest level) to ``+cobb/2`` (highest),
    so the end vertebrae's outer endplates make the Cobb angle and the apex (middle level) is
    level; positive ``cobb_deg`` is convex to the patient's right.  The bodies rotate about
    their own superior axis toward the convexity, ``|cobb| / 3`` at the apex, falling
    linearly to a third of that one level beyond each end.
    """
    idx = np.arange(n, dtype=float)
    mid = 0.5 * (n - 1)
    coronal = 0.5 * cobb_deg * (idx - mid) / mid
    weight = 1.0 - np.abs(idx - mid) / (mid + 1.0)
    axial = -(cobb_deg / 3.0) * weight  # anterior body toward the convex (right, -x) side
    return coronal, axial


def stack_vertebrae(labels, *, plana=None, lesion=None, defect=None, narrow=None,
                    pivot_lps=(0.0, 0.0, 0.0), rotation_deg=(0.0, 0.0, 0.0), scoliosis_cobb_deg=0.0):
    """Place the vertebrae along a gently curved column.

    ``scoliosis_cobb_deg`` (non-zero, at least 3 levels) adds a lateral C curve through all
    levels but the sacrum, which stays level (see :func:`scoliosis_angles`): each vertebra
    is tilted in the coronal plane, rotated axially toward the convexity and follows the
    curve sideways.

    Returns ``(models_world, models_unrotated, rot_global, pivot)``; each list runs from the
    most cranial level down.
    """
    caudal_first = sorted(labels, reverse=True)
    narrow = narrow or {}
    raw = []
    for lab in caudal_first:
        g = level_geometry(lab)
        h = g.body_height_mm
        heights = (h, h, h)
        if lab == plana:
            heights = (0.30 * h, 0.42 * h, 0.58 * h)
        above = level_geometry(24 if lab == 26 else lab - 1).disc_below_mm if lab > 1 else g.disc_below_mm
        raw.append((lab, g, heights, above))
    centers, rots = [], []
    c = np.zeros(3)
    prev = None
    scol = None
    n_curve = len(raw) - (raw[0][0] == SACRUM)  # the sacrum (and pelvis) stays level
    if scoliosis_cobb_deg:
        scol = [np.r_[[0.0] * (len(raw) - n_curve), a] for a in scoliosis_angles(n_curve, float(scoliosis_cobb_deg))]
    pads = [0.0] * len(raw)
    for n, (lab, g, heights, above) in enumerate(raw):
        r = _tilt_rot(g.tilt_deg)
        if scol is not None and (scol[0][n] or scol[1][n]):
            r = rotation_matrix((0.0, scol[0][n], 0.0)) @ r @ rotation_matrix((0.0, 0.0, scol[1][n]))
            # the wedged discs open on the convex side: let each half-disc reach the middle
            cor = scol[0]
            step = np.deg2rad(max(abs(cor[n] - cor[k]) for k in (n - 1, n + 1) if 0 <= k < len(raw)))
            pads[n] = 0.25 * g.body_width_mm * np.sin(step) + 0.5
        if prev is not None:
            pr, ph = prev
            t_low, t_up = pr[:, 2], r[:, 2]
            t_mid = unit(t_low + t_up)
            c = c + t_low * 0.5 * ph[1] + t_mid * g.disc_below_mm + t_up * 0.5 * heights[1]
        centers.append(c.copy())
        rots.append(r)
        prev = (r, heights)
    centers = np.array(centers)
    pivot_local = centers.mean(axis=0)
    pivot = np.asarray(pivot_lps, dtype=float)
    rg = rotation_matrix(rotation_deg)
    unrot, world = [], []
    for (lab, g, heights, above), c, r, pad in zip(raw, centers, rots, pads):
        kw = dict(geom=g, heights_mm=heights, disc_above_mm=above, lesion=(lab == lesion),
                  wall_defect=(lab == defect), narrow=dict(narrow.get(lab, {})), disc_pad_mm=pad)
        cu = c - pivot_local + pivot
        unrot.append(VertebraModel(center_lps=cu, rot=r, **kw))
        world.append(VertebraModel(center_lps=pivot + rg @ (cu - pivot), rot=rg @ r, **kw))
    return world[::-1], unrot[::-1], rg, pivot


class Grid:
    """An axis-aligned voxel grid (axis signs per patient position)."""

    def __init__(self, lo, hi, spacing, signs, shape=None):
        self.spacing = np.asarray(spacing, float)
        self.signs = np.asarray(signs, float)
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        if shape is None:
            n = np.ceil((hi - lo) / self.spacing).astype(int) + 1
        else:
            n = np.asarray(shape, int)
            mid = 0.5 * (lo + hi)
            lo = mid - 0.5 * (n - 1) * self.spacing
            hi = mid + 0.5 * (n - 1) * self.spacing
        self.shape = tuple(int(v) for v in n)
        self.origin = np.where(self.signs > 0, lo, lo + (n - 1) * self.spacing)
        self.affine = np.eye(4)
        self.affine[:3, :3] = np.diag(self.signs * self.spacing)
        self.affine[:3, 3] = self.origin

    def axis_coords(self, axis, start=0, stop=None) -> np.ndarray:
        stop = self.shape[axis] if stop is None else stop
        idx = np.arange(start, stop, dtype=np.float64)
        return (self.origin[axis] + self.signs[axis] * self.spacing[axis] * idx).astype(np.float32)

    def index_box(self, lo_lps, hi_lps):
        """Slices of the grid covering the LPS box (clipped), or None when outside."""
        a = (np.asarray(lo_lps) - self.origin) / (self.signs * self.spacing)
        b = (np.asarray(hi_lps) - self.origin) / (self.signs * self.spacing)
        i0 = np.floor(np.minimum(a, b)).astype(int)
        i1 = np.ceil(np.maximum(a, b)).astype(int) + 1
        i0 = np.maximum(i0, 0)
        i1 = np.minimum(i1, self.shape)
        if np.any(i1 <= i0):
            return None
        return tuple(slice(int(p), int(q)) for p, q in zip(i0, i1))

    def local_coords(self, box, center, rot):
        """Local coordinates (x, y, z) of the voxel centres in ``box`` for a frame."""
        ax = [self.axis_coords(k, box[k].start, box[k].stop) - np.float32(center[k]) for k in range(3)]
        rt = np.asarray(rot, np.float32).T  # local = R^T (p - c)
        gx = ax[0][:, None, None]
        gy = ax[1][None, :, None]
        gz = ax[2][None, None, :]
        out = []
        for r in rt:
            terms = [r[k] * g for k, g in zip(range(3), (gx, gy, gz)) if abs(r[k]) > 1e-9]
            acc = terms[0]
            for t in terms[1:]:
                acc = acc + t
            out.append(acc)
        return out


def _world_box(model: VertebraModel, lo_local, hi_local):
    corners = np.array([[x, y, z] for x in (lo_local[0], hi_local[0]) for y in (lo_local[1], hi_local[1])
                        for z in (lo_local[2], hi_local[2])])
    w = corners @ model.rot.T + model.center_lps
    return w.min(axis=0), w.max(axis=0)


def _full(m, shape):
    return np.broadcast_to(m, shape)


def paint_all(grid: Grid, world, unrot, rg, pivot, *, ribs: bool, rng, spacing):
    """Draw tissue and bones; return (hu float32, labels, parts, canal, structures, extras)."""
    shape = grid.shape
    hu = np.full(shape, HU["air"], dtype=np.float32)
    labels = np.zeros(shape, np.uint8)
    parts = np.zeros(shape, np.uint8)
    canal = np.zeros(shape, bool)
    csf = np.zeros(shape, bool)
    lesion = np.zeros(shape, bool)
    vessels = np.zeros(shape, bool)
    pelvis = np.zeros(shape, bool)

    prof = _profile(unrot)
    structures = _soft_tissue(grid, hu, prof, rg, pivot, spacing)
    outline = structures["body_outline"]

    n = len(world)
    vox = float(np.mean(spacing))
    for idx, m in enumerate(world):
        g = m.geom
        lo, hi = m.local_extent()
        # canal and discs: the segment from the middle of the disc below to the one above
        seg_lo = -0.5 * m.heights_mm[1] - 0.5 * g.disc_below_mm - 1.0
        seg_hi = 0.5 * m.heights_mm[1] + 0.5 * m.disc_above_mm + 1.0
        if m.disc_pad_mm:
            seg_lo, seg_hi = seg_lo - m.disc_pad_mm, seg_hi + m.disc_pad_mm
        if idx == 0:
            seg_hi = 400.0
        if idx == n - 1:
            seg_lo = -400.0
        lo2, hi2 = lo.copy(), hi.copy()
        lo2[2], hi2[2] = min(lo[2], seg_lo), max(hi[2], seg_hi)
        box = grid.index_box(*_world_box(m, lo2, hi2))
        if box is None:
            continue
        x, y, z = grid.local_coords(box, m.center_lps, m.rot)
        sub = tuple(np.broadcast_shapes(x.shape, y.shape, z.shape))
        canal_l = _full(m.canal(x, y, z), sub) & (z >= seg_lo) & (z <= seg_hi)
        body = m.body(x, y, z)
        arch = m.arch(x, y, z)
        no_ped = np.zeros((), bool)  # C1 has no pedicles
        ped_l = m.pedicles["left"].contains(x, y, z) if m.pedicles else no_ped
        ped_r = m.pedicles["right"].contains(x, y, z) if m.pedicles else no_ped
        bone = (body | arch | ped_l | ped_r) & ~canal_l
        # discs (the half above this body; the lowest level also gets the half below)
        zi, zs = m.endplate_z(y)
        disc_xy = _disc_section(m, x, y)
        disc = disc_xy & (((z > zs) & (z <= seg_hi)) | ((z < zi) & (z >= seg_lo))) & ~canal_l
        if idx == 0:
            disc &= z <= 0.5 * m.heights_mm[1] + m.disc_above_mm + 0.5
        if idx == n - 1:
            disc &= z >= -0.5 * m.heights_mm[1] - g.disc_below_mm - 0.5
            if g.region == "sacral":
                disc &= z >= 0.0
        if g.label <= 2:  # synovial atlanto-axial joints: no disc above C2, none at C1
            disc = disc & (z < zi) if g.label == 2 else np.zeros((), bool)
        free = labels[box] == 0
        # -- hu of discs
        dsub = disc & free & ~bone
        nuc = _superellipse_norm(x, y, 0.25 * g.body_width_mm, 0.25 * g.body_depth_mm) <= 1.0
        hu_sub = hu[box]
        hu_sub[dsub & nuc] = HU["nucleus"]
        hu_sub[dsub & ~nuc] = HU["annulus"]
        # -- canal contents
        can_free = canal_l & free & ~bone
        hu_sub[can_free] = HU["epidural_fat"]
        canal[box] |= canal_l
        yc = m.canal_center_y()
        sac = _ellipse_norm(x, y - yc + 0.5, 0.36 * g.canal_width_mm, 0.36 * g.canal_depth_mm) <= 1.0
        csf_l = can_free & sac
        hu_sub[csf_l] = HU["csf"]
        if g.region != "lumbar" or g.label == 20:
            cw = 0.22 * g.canal_width_mm if g.region == "cervical" else 0.16 * g.canal_width_mm
            cordm = can_free & (_ellipse_norm(x, y - yc + 1.0, cw, 0.2 * g.canal_depth_mm) <= 1.0)
            if g.label == 20:
                cordm &= z > 0.0  # conus ends at L1
            hu_sub[cordm] = HU["cord"]
        # -- bone: cortex by depth below the surface, cancellous core with texture
        b = bone & free
        if b.any():
            crop = _bbox(b)
            bc_, body_c, arch_c = b[crop], _full(body, sub)[crop], _full(arch, sub)[crop]
            xc, yc_, zc = (_full(a, sub)[crop] for a in (x, y, z))
            shell = np.where(body_c & ~arch_c, BODY_CORTEX_MM, CORTEX_MM)
            frac, deep = _cortex_fraction(bc_, shell, spacing)
            core = np.where(body_c & ~arch_c, CANCELLOUS_HU + rng.normal(0, 12), ARCH_CORE_HU)
            tex = ndimage.gaussian_filter(rng.standard_normal(bc_.shape).astype(np.float32), 0.8 / vox) * 95.0
            val = core + tex + frac * (CORTEX_HU - core - tex)
            if m.lesion:
                les = m.lesion_shape(xc, yc_, zc) & body_c & deep
                val = np.where(les, HU["soft_lesion"], val)
                lesion[box][crop] |= les & bc_
            if m.wall_defect:
                val = np.where(m.defect_shape(xc, yc_, zc) & body_c, HU["soft_lesion"], val)
            hu_sub[crop][bc_] = val[bc_]
            lab_sub = labels[box]
            lab_sub[b] = g.label
            part_sub = parts[box]
            part_sub[b & body] = PART_BODY
            part_sub[b & ~body & ped_l] = PART_PEDICLE_LEFT
            part_sub[b & ~body & ped_r & ~ped_l] = PART_PEDICLE_RIGHT
            part_sub[b & ~body & ~ped_l & ~ped_r] = PART_ARCH
        if g.region == "sacral":
            il = _full(m.ilium(x, y, z, "left") | m.ilium(x, y, z, "right"), sub) & (labels[box] == 0)
            if il.any():
                crop = _bbox(il)
                ilc = il[crop]
                frac, _ = _cortex_fraction(ilc, CORTEX_MM + 0.4, spacing)
                val = ARCH_CORE_HU - 60.0 + frac * (CORTEX_HU - ARCH_CORE_HU + 60.0)
                hu_sub[crop][ilc] = val[ilc]
                pelvis[box][crop] |= ilc
        if g.region == "cervical":
            for side in ("left", "right"):
                fc = m.foramen_center(side)
                art = ((x - fc[0]) ** 2 + (y - fc[1]) ** 2 <= 2.0 ** 2) & (z >= seg_lo) & (z <= seg_hi)
                art = _full(art, sub) & (labels[box] == 0)
                hu_sub[art] = HU["contrast_artery"]
                vessels[box] |= art
        csf[box] |= csf_l
    if pelvis.any():
        structures["pelvis"] = pelvis
    if ribs:
        rib_mask = paint_ribs(grid, hu, labels, world, spacing, cortex_hu=CORTEX_HU, cortex_mm=CORTEX_MM)
        if rib_mask is not None:
            structures["ribs"] = rib_mask
    # mottled soft tissue and lung parenchyma (a smooth random field, 4-6 mm blobs)
    soft = outline & (labels == 0) & ~canal
    if "ribs" in structures:
        soft &= ~structures["ribs"]
    field = _smooth_field(shape, spacing, rng)
    lungs = structures.get("lungs")
    amp = np.where(lungs, 35.0, 9.0).astype(np.float32) if lungs is not None else np.float32(9.0)
    hu += np.where(soft, field * amp, 0.0).astype(np.float32)
    # nothing outside the body outline but air
    hu[~outline] = HU["air"]
    if lesion.any():
        structures["lesion"] = lesion
    structures["csf"] = csf
    if vessels.any():
        structures["vertebral_arteries"] = vessels
    return hu, labels, parts, canal & outline & (labels == 0), structures


def _soft_tissue(grid: Grid, hu, prof, rg, pivot, spacing):
    """Paint soft tissue; for a rotated spine paint it upright and resample (fast)."""
    if np.allclose(rg, np.eye(3)):
        xu, yu, zu = (grid.axis_coords(k) for k in range(3))
        return paint_soft_tissue(hu, xu[:, None, None], yu[None, :, None], zu[None, None, :], prof)
    # upright grid covering the rotated one
    lo_w = grid.origin
    hi_w = grid.origin + grid.signs * grid.spacing * (np.array(grid.shape) - 1)
    corners = np.array([[x, y, z] for x in (lo_w[0], hi_w[0]) for y in (lo_w[1], hi_w[1])
                        for z in (lo_w[2], hi_w[2])])
    cu = (corners - pivot) @ rg + pivot  # R^T (p - pivot) + pivot, row-vector form
    up = Grid(cu.min(axis=0) - 2 * grid.spacing, cu.max(axis=0) + 2 * grid.spacing, grid.spacing, (1, 1, 1))
    hu_u = np.full(up.shape, HU["air"], np.float32)
    xu, yu, zu = (up.axis_coords(k) for k in range(3))
    st_u = paint_soft_tissue(hu_u, xu[:, None, None], yu[None, :, None], zu[None, None, :], prof)
    # target voxel index -> upright index: iu = A_u^-1 (pivot + R^T (A_t i - pivot))
    a_t, a_u_inv = grid.affine, np.linalg.inv(up.affine)
    m4 = np.eye(4)
    m4[:3, :3] = rg.T
    m4[:3, 3] = pivot - rg.T @ pivot
    full = a_u_inv @ m4 @ a_t
    ndimage.affine_transform(hu_u, full[:3, :3], full[:3, 3], output_shape=grid.shape, output=hu,
                             order=1, mode="nearest")
    names = [k for k in st_u if k != "body_outline"]
    ids = np.zeros(up.shape, np.uint8)
    ids[st_u["body_outline"]] = 1
    for n, k in enumerate(names):
        ids[st_u[k]] = n + 2
    ids_t = ndimage.affine_transform(ids, full[:3, :3], full[:3, 3], output_shape=grid.shape, order=0,
                                     mode="constant", cval=0)
    out = {"body_outline": ids_t > 0}
    for n, k in enumerate(names):
        out[k] = ids_t == n + 2
    # structures overlapping each other (trachea wall/lumen, oesophagus lumen) keep the upright
    # priority order of paint_soft_tissue; the outline holds them all
    return out


def paint_table(hu, grid: Grid, outline, *, supine: bool):
    """Draw the CT couch under the patient (behind the back when supine, in front when prone).

    A slightly curved carbon-fibre sandwich: two 2 mm shells (~250 HU) around a foam core
    (~-850 HU), fixed to the scanner, so it stays level when the anatomy is rotated.
    Returns the couch mask.
    """
    if not outline.any():
        return np.zeros(grid.shape, bool)
    ys = grid.axis_coords(1)
    has_y = outline.any(axis=(0, 2))
    contact = float(ys[has_y].max() if supine else ys[has_y].min())
    sgn = 1.0 if supine else -1.0
    x = grid.axis_coords(0)[:, None, None]
    y = ys[None, :, None]
    depth = sgn * (y - contact) - 1.0 + 0.0012 * x * x  # mm below the couch top (curved)
    couch = (depth >= 0.0) & (depth <= 14.0) & np.ones((1, 1, grid.shape[2]), bool)
    shell = couch & ((depth <= 2.0) | (depth >= 12.0))
    core = couch & ~shell
    couch &= ~outline
    hu[core & couch] = -850.0
    hu[shell & couch] = 250.0
    return couch


def _bbox(mask):
    """Slices of the bounding box of a non-empty mask."""
    out = []
    for ax in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != ax)))
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(out)


def _cortex_fraction(mask, shell_mm, spacing):
    """Per-voxel fraction of cortical bone, by onion layers peeled from the surface.

    Layer ``n`` (1 = surface voxels) covers depths ``(n-1)..n`` voxels; a shell of
    ``shell_mm`` fills ``clip((shell - (n-1) vox) / vox)`` of it.  Returns ``(frac, deep)``
    where ``deep`` marks voxels more than ~1.7 mm below the surface.
    """
    vox = float(np.mean(spacing))
    n_layers = int(np.ceil(max(np.max(shell_mm), 1.7) / vox)) + 1
    frac = np.zeros(mask.shape, np.float32)
    cur = mask
    for n in range(1, n_layers + 1):
        inner = ndimage.binary_erosion(cur, border_value=1)
        layer = cur & ~inner
        f = np.clip((np.asarray(shell_mm, np.float32) - (n - 1) * vox) / vox, 0.0, 1.0)
        frac[layer] = (f[layer] if np.ndim(f) else f)
        cur = inner
    return frac, cur


def _interp_matrix(n_out: int, n_in: int, step: int) -> np.ndarray:
    """(n_out, n_in) linear interpolation weights from a coarse axis (every ``step``)."""
    pos = np.arange(n_out) / step
    i0 = np.clip(np.floor(pos).astype(int), 0, n_in - 2)
    f = (pos - i0).astype(np.float32)
    w = np.zeros((n_out, n_in), np.float32)
    w[np.arange(n_out), i0] = 1.0 - f
    w[np.arange(n_out), i0 + 1] = f
    return w


def _smooth_field(shape, spacing, rng, step_mm=5.0):
    """Unit-variance smooth random field: coarse Gaussian noise, trilinearly upsampled."""
    step = np.maximum(1, np.round(step_mm / np.asarray(spacing, float))).astype(int)
    coarse_shape = tuple(int(np.ceil(n / s)) + 2 for n, s in zip(shape, step))
    up = rng.standard_normal(coarse_shape).astype(np.float32)
    for ax in range(3):
        w = _interp_matrix(shape[ax], coarse_shape[ax], int(step[ax]))
        up = np.moveaxis(np.tensordot(w, up, axes=([1], [ax])), 0, ax)
    return up / max(float(up.std()), 1e-6)


def _superellipse_norm(x, y, a, b, n=2.3):
    return np.abs(x / a) ** n + np.abs(y / b) ** n


def _ellipse_norm(x, y, a, b):
    return (x / a) ** 2 + (y / b) ** 2


def _disc_section(m: VertebraModel, x, y):
    g = m.geom
    return _superellipse_norm(x, y, 0.5 * g.body_width_mm * 0.98, 0.5 * g.body_depth_mm * 1.0) <= 1.0


def _profile(unrot) -> SpineProfile:
    z, vals = [], {k: [] for k in ("y_center", "body_depth", "body_width", "canal_width", "canal_depth",
                                   "region", "outline_ax", "outline_ay", "outline_oy", "fat_mm",
                                   "psoas_r", "kidney", "aorta", "ivc", "thyroid", "diaphragm_z",
                                   "apex_z")}
    lab0, z0 = unrot[0].geom.label, unrot[0].center_lps[2]
    seg = np.mean([level_geometry(v).body_height_mm + level_geometry(v).disc_below_mm
                   for v in range(min(lab0, 8), max(lab0, 19) + 1)])
    z_of = {m.geom.label: m.center_lps[2] for m in unrot}
    z_t12 = z_of.get(19, z0 - (19 - lab0) * seg)
    z_t1 = z_of.get(8, z0 - (8 - lab0) * seg)
    for m in unrot:
        g = m.geom
        lab = g.label
        reg = {"cervical": 0.0, "thoracic": 1.0, "lumbar": 2.0, "sacral": 2.0}[g.region]
        z.append(m.center_lps[2])
        vals["y_center"].append(m.center_lps[1])
        vals["body_depth"].append(g.body_depth_mm)
        vals["body_width"].append(g.body_width_mm)
        vals["canal_width"].append(g.canal_width_mm)
        vals["canal_depth"].append(g.canal_depth_mm)
        vals["region"].append(reg)
        fat = {0.0: 7.0, 1.0: 12.0, 2.0: 19.0}[reg]
        sp = g.spinous_len_mm * np.cos(np.deg2rad(g.spinous_down_deg))
        post = 0.5 * g.body_depth_mm + g.canal_depth_mm + g.lamina_thick_mm + sp + fat + 9.0
        if reg == 0.0:
            ax, ay = (60.0 if lab < 7 else 70.0), 60.0
        elif reg == 1.0:
            ax, ay = (135.0 if lab > 8 else 110.0), 105.0
        else:
            ax, ay = 155.0, 112.0
        vals["outline_ax"].append(ax)
        vals["outline_ay"].append(ay)
        vals["outline_oy"].append(post - ay)
        vals["fat_mm"].append(fat)
        vals["psoas_r"].append(0.0 if lab < 20 else min(7.0 + 4.0 * (lab - 20), 23.0))
        vals["kidney"].append(1.0 if 19 <= lab <= 22 else 0.0)  # noqa: PLR2004
        vals["aorta"].append(1.0 if 8 <= lab <= 23 else 0.0)
        vals["ivc"].append(1.0 if 19 <= lab <= 24 else 0.0)
        vals["thyroid"].append(1.0 if 6 <= lab <= 8 else 0.0)
        vals["diaphragm_z"].append(z_t12 + 4.0)
        vals["apex_z"].append(z_t1 + 22.0)
    xs = [m.center_lps[0] for m in unrot]
    if np.ptp(xs) > 0.0:  # a scoliotic column: the tissue around it follows it sideways
        vals["x_center"] = xs
    return SpineProfile(z, vals)
