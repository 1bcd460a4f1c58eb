"""The spinal canal: the space enclosed by the vertebral foramina, bridged across the discs.

Per vertebra, on its local grid (``x`` left, ``y`` anterior, ``z`` superior), the foramen
is the hole that the bony ring leaves in planes perpendicular to the spine axis.  The
holes of all slices are pooled into one consensus cross-section, which is extruded along
the local spine axis a little past the vertebra so that neighbouring levels overlap
through the disc spaces; bone is then removed again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from needleplan.segmentation._frame import LocalGrid

__all__ = ["CanalSection", "foramen_section", "canal_on_ct"]

_PLANE = np.zeros((3, 3, 3), dtype=bool)
_PLANE[:, :, 1] = ndi.generate_binary_structure(2, 1)  # in-plane (x, y) connectivity only


def _disk(radius_vox: float) -> np.ndarray:
    r = max(int(np.ceil(radius_vox)), 1)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return (xx * xx + yy * yy) <= radius_vox * radius_vox + 1e-9


@dataclass
class CanalSection:
    """Consensus foramen cross-section of one vertebra on its local grid.

    ``mask2d`` is indexed ``[x, y]`` like the grid; coordinates below are local mm.
    """

    mask2d: np.ndarray
    center_xy_mm: np.ndarray
    front_y_mm: float      # anterior margin at the midline (posterior wall of the body)
    back_y_mm: float       # posterior margin at the midline (lamina / ligamentum flavum)
    half_width_mm: float
    z_range_mm: tuple[float, float]  # local z of the slices where the ring is closed
    closed_fraction: float           # share of the vertebra's slices with a closed ring

    step_mm: float = 1.0

    @property
    def area_mm2(self) -> float:
        return float(self.mask2d.sum()) * self.step_mm ** 2


def foramen_section(mask_local: np.ndarray, grid: LocalGrid, *, min_area_mm2: float = 25.0) -> CanalSection | None:
    """Find the vertebral foramen of one vertebra on its local grid, or None when open."""
    h = grid.step_mm
    # seal hairline gaps of the ring (thin laminae, partial volume) before filling holes
    close_r = max(1.0, 1.5 / h)
    st = np.zeros((2 * int(np.ceil(close_r)) + 1,) * 2 + (1,), dtype=bool)
    st[:, :, 0] = _disk(close_r)
    pad = int(np.ceil(close_r)) + 1
    padded = np.pad(mask_local, ((pad, pad), (pad, pad), (0, 0)))
    closed = ndi.binary_closing(padded, structure=st)[pad:-pad, pad:-pad, :]
    holes = ndi.binary_fill_holes(closed, structure=_PLANE) & ~closed
    holes &= ~mask_local
    if not holes.any():
        return _from_projection(mask_local, grid, min_area_mm2=min_area_mm2)
    # drop tiny holes (trabecular pockets, transverse foramina) slice by slice
    lab, n = ndi.label(holes, structure=_PLANE)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:] * h * h
    keep = np.zeros(n + 1, dtype=bool)
    keep[1:] = sizes >= min_area_mm2
    holes = keep[lab]
    if not holes.any():
        return _from_projection(mask_local, grid, min_area_mm2=min_area_mm2)
    # the foramen lies behind the vertebra's centre (local origin), near the midline: this
    # rejects costotransverse and transverse foramina and holes between labels and ribs
    h0, lo0 = grid.step_mm, grid.lo_mm
    xs = lo0[0] + h0 * np.arange(holes.shape[0])
    ys = lo0[1] + h0 * np.arange(holes.shape[1])
    lab, n = ndi.label(holes, structure=_PLANE)
    if n:
        cnt = np.bincount(lab.ravel(), minlength=n + 1).astype(float)
        gi, gj, _ = np.indices(holes.shape, sparse=True)
        cx = np.bincount(lab.ravel(), weights=np.broadcast_to(xs[gi], holes.shape).ravel(), minlength=n + 1)
        cy = np.bincount(lab.ravel(), weights=np.broadcast_to(ys[gj], holes.shape).ravel(), minlength=n + 1)
        cx, cy = cx / np.maximum(cnt, 1), cy / np.maximum(cnt, 1)
        ok = (cy < -2.0) & (np.abs(cx) <= 1.2 * np.abs(cy) + 5.0)
        ok[0] = False
        holes = ok[lab]
    if not holes.any():
        return _from_projection(mask_local, grid, min_area_mm2=min_area_mm2)
    count = holes.sum(axis=2)
    nz = int((holes.any(axis=(0, 1))).sum())
    consensus = count >= max(1, int(np.ceil(0.3 * count.max())))
    lab2, n2 = ndi.label(consensus)
    if n2 == 0:
        return None
    weight = np.bincount(lab2.ravel(), weights=count.ravel(), minlength=n2 + 1)[1:]
    sec = lab2 == (int(np.argmax(weight)) + 1)
    sec = ndi.binary_fill_holes(sec)
    zs = np.nonzero((holes & sec[:, :, None]).any(axis=(0, 1)))[0]
    vert_z = np.nonzero(mask_local.any(axis=(0, 1)))[0]
    frac = nz / max(len(vert_z), 1)
    desc = _describe(sec, grid, zs, frac)
    if not plausible(desc):
        return None
    # anterior/posterior margins at the midline: median over the slices with a closed ring
    # (the pooled section reaches into the basivertebral recess and the disc levels)
    h, lo = grid.step_mm, grid.lo_mm
    cxi = int(round((desc.center_xy_mm[0] - lo[0]) / h))
    band = slice(max(cxi - max(1, int(round(3.0 / h))), 0), cxi + max(1, int(round(3.0 / h))) + 1)
    mid = (holes & sec[:, :, None])[band]          # (x band, y, z)
    fr, bk = [], []
    for z in zs:
        yy = np.nonzero(mid[:, :, z].any(axis=0))[0]
        if len(yy):
            fr.append(yy.max())
            bk.append(yy.min())
    if len(fr) >= 3:
        desc.front_y_mm = float(lo[1] + (np.median(fr) + 0.5) * h)
        desc.back_y_mm = float(lo[1] + (np.median(bk) - 0.5) * h)
    return desc


def _from_projection(mask_local, grid, *, min_area_mm2):
    """Fallback for a ring open in every slice: the hole of the projection along the axis."""
    h = grid.step_mm
    proj = mask_local.any(axis=2)
    proj = ndi.binary_closing(np.pad(proj, 8), structure=_disk(max(2.0, 3.0 / h)))[8:-8, 8:-8]
    hole = ndi.binary_fill_holes(proj) & ~proj
    h0, lo0 = grid.step_mm, grid.lo_mm
    xs = lo0[0] + h0 * np.arange(hole.shape[0])
    ys = lo0[1] + h0 * np.arange(hole.shape[1])
    lab, n = ndi.label(hole)
    for k in range(1, n + 1):  # keep holes whose centre lies behind the vertebra's centre
        ii, jj = np.nonzero(lab == k)
        cxk, cyk = xs[ii].mean(), ys[jj].mean()
        if not (cyk < -2.0 and abs(cxk) <= 1.2 * abs(cyk) + 5.0):
            hole[lab == k] = False
    lab, n = ndi.label(hole)
    if n == 0:
        return None
    sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:] * h * h
    best = int(np.argmax(sizes))
    if sizes[best] < min_area_mm2:
        return None
    sec = lab == best + 1
    zs = np.nonzero(mask_local.any(axis=(0, 1)))[0]
    desc = _describe(sec, grid, zs, 0.0)
    return desc if plausible(desc) else None


#: Plausible vertebral foramen cross-section (mm^2) and half width (mm), C1-S1.
CANAL_AREA_MM2 = (50.0, 900.0)
CANAL_HALF_WIDTH_MM = (4.0, 22.0)


def plausible(sec: CanalSection | None) -> bool:
    """Whether a found hole can be a vertebral foramen (not a rib gap or a body cavity)."""
    if sec is None:
        return False
    a = sec.area_mm2
    return (CANAL_AREA_MM2[0] <= a <= CANAL_AREA_MM2[1]
            and CANAL_HALF_WIDTH_MM[0] <= sec.half_width_mm <= CANAL_HALF_WIDTH_MM[1]
            and sec.front_y_mm > sec.back_y_mm + 4.0)


def _describe(sec, grid: LocalGrid, zs, frac) -> CanalSection:
    h, lo = grid.step_mm, grid.lo_mm
    ix, iy = np.nonzero(sec)
    cx, cy = ix.mean(), iy.mean()
    mid = np.abs(ix - cx) <= max(1.0, 3.0 / h)
    front = iy[mid].max() if mid.any() else iy.max()
    back = iy[mid].min() if mid.any() else iy.min()
    half_w = 0.5 * (ix.max() - ix.min() + 1) * h
    return CanalSection(
        mask2d=sec,
        center_xy_mm=np.array([lo[0] + cx * h, lo[1] + cy * h]),
        front_y_mm=float(lo[1] + (front + 0.5) * h),
        back_y_mm=float(lo[1] + (back - 0.5) * h),
        half_width_mm=float(half_w),
        z_range_mm=(float(lo[2] + zs.min() * h), float(lo[2] + zs.max() * h)) if len(zs) else (0.0, 0.0),
        closed_fraction=float(frac),
        step_mm=float(h),
    )


def canal_on_ct(shape, ijk_to_lps, bone_labels: np.ndarray, pieces) -> np.ndarray:
    """Assemble the canal on the CT grid from per-vertebra extruded sections.

    Parameters
    ----------
    shape : tuple
        CT grid shape.
    ijk_to_lps : (4, 4) ndarray
    bone_labels : ndarray
        The vertebra label map (non-zero voxels are bone and never canal).
    pieces : list of (LocalGrid, CanalSection, z_lo_mm, z_hi_mm)
        Extrusion range along each vertebra's local axis.
    """
    canal = np.zeros(shape, dtype=bool)
    inv = np.linalg.inv(ijk_to_lps)
    for grid, sec, z_lo, z_hi in pieces:
        h = grid.step_mm
        ix, iy = np.nonzero(sec.mask2d)
        # corners of the prism in LPS -> CT index box
        xs_mm = grid.lo_mm[0] + np.array([ix.min() - 1, ix.max() + 1]) * h
        ys_mm = grid.lo_mm[1] + np.array([iy.min() - 1, iy.max() + 1]) * h
        corners = np.array([[x, y, z] for x in xs_mm for y in ys_mm for z in (z_lo, z_hi)])
        lps = grid.center_lps + corners @ grid.rot.T
        ijk = lps @ inv[:3, :3].T + inv[:3, 3]
        lo = np.clip(np.floor(ijk.min(axis=0)).astype(int), 0, np.array(shape) - 1)
        hi = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 1, 1, np.array(shape))
        if np.any(hi <= lo):
            continue
        sub = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), -1).reshape(-1, 3)
        lps_sub = sub @ ijk_to_lps[:3, :3].T + ijk_to_lps[:3, 3]
        local = (lps_sub - grid.center_lps) @ grid.rot
        oi = np.rint((local[:, 0] - grid.lo_mm[0]) / h).astype(int)
        oj = np.rint((local[:, 1] - grid.lo_mm[1]) / h).astype(int)
        ok = (oi >= 0) & (oi < sec.mask2d.shape[0]) & (oj >= 0) & (oj < sec.mask2d.shape[1])
        ok &= (local[:, 2] >= z_lo) & (local[:, 2] <= z_hi)
        ok[ok] = sec.mask2d[oi[ok], oj[ok]]
        hit = sub[ok]
        canal[hit[:, 0], hit[:, 1], hit[:, 2]] = True
    canal &= bone_labels == 0
    return canal
