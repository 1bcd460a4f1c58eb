"""Per-vertebra distance maps, computed once and cached, sampled along candidate needles.

For each vertebra the planner crops a box around it (plus a margin) and precomputes

* ``bone``  signed distance (mm) to the vertebra's outer cortex: > 0 inside the
  (hole-filled) vertebra mask, < 0 outside;
* ``canal`` distance (mm) to the spinal canal (0 inside it);
* ``other`` distance (mm) to any *other* vertebra (0 inside one).

The box holds the body and pedicles (not the spinous process) with a 6 mm margin; samples
beyond it take the values at its faces.

Signed distances use voxel-centre EDTs shifted by half a voxel, so that the zero level
lies on the mask surface and trilinear sampling gives sub-voxel positions.  The cache
is keyed by the identity of the anatomy's arrays, so an edited anatomy is recomputed.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from needleplan.segmentation.model import PART_BODY, PART_PEDICLE_LEFT, PART_PEDICLE_RIGHT

__all__ = ["VertebraMaps", "vertebra_maps", "sample_volume", "in_view"]

_MARGIN_MM = 6.0
_CLOSE_MM = 1.5
_GRID_MM = 1.0   # distance maps are computed on a grid no finer than this
_CACHE: dict = {}
_WATCHED: set = set()
_OBJECTS: dict = {}
_LOCK = threading.Lock()


def _signed_edt(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Signed distance in mm, positive inside ``mask``, zero level on its surface."""
    half = 0.5 * float(np.min(spacing))
    if not mask.any():
        return np.full(mask.shape, -1e3, np.float32)
    if mask.all():
        return np.full(mask.shape, 1e3, np.float32)
    inside = ndimage.distance_transform_edt(mask, sampling=spacing)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing)
    return np.where(mask, inside - half, -(outside - half)).astype(np.float32)


def _outside_edt(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Distance in mm to ``mask`` (its surface), 0 inside it."""
    half = 0.5 * float(np.min(spacing))
    out = ndimage.distance_transform_edt(~mask, sampling=spacing) - half
    return np.maximum(out, 0.0).astype(np.float32)


@dataclass
class VertebraMaps:
    """Cropped distance maps of one vertebra (see the module docstring)."""

    label: int
    box_to_full: np.ndarray   # (4, 4) box voxel index -> full-grid voxel index
    lps_to_box: np.ndarray    # (4, 4) LPS mm -> box voxel index
    spacing: np.ndarray       # (3,) mm
    bone: np.ndarray          # signed distance to the vertebra surface, mm
    canal: np.ndarray         # signed distance to the canal, mm (> 0 outside)
    other: np.ndarray         # distance to other vertebrae, mm (> 0 outside them)
    parts: np.ndarray         # uint8 parts inside this vertebra, 0 elsewhere
    canal_found: bool
    other_found: bool
    pedicle_extent: dict      # side -> (s_min, s_max) along the pedicle axis from the isthmus
    _stack: np.ndarray | None = None
    memo: dict = field(default_factory=dict)   # derived per-vertebra values (body half-widths, targets)

    def to_box(self, pts_lps: np.ndarray) -> np.ndarray:
        p = np.asarray(pts_lps, float)
        return p @ self.lps_to_box[:3, :3].T + self.lps_to_box[:3, 3]

    def sample(self, name: str, pts_lps: np.ndarray, *, order: int = 1) -> np.ndarray:
        """Sample map ``name`` at ``(..., 3)`` LPS points (outside the box: edge values)."""
        arr = getattr(self, name)
        ijk = self.to_box(pts_lps)
        shp = ijk.shape[:-1]
        flat = ijk.reshape(-1, 3).T
        out = ndimage.map_coordinates(arr, flat, order=order, mode="nearest",
                                      output=np.float32 if order else arr.dtype)
        return out.reshape(shp)

    def sample_all(self, pts_lps: np.ndarray) -> np.ndarray:
        """Trilinear ``(..., 3)`` samples of (bone, canal, other) at LPS points, edge-clamped."""
        if self._stack is None:
            self._stack = np.ascontiguousarray(np.stack([self.bone, self.canal, self.other], axis=-1)
                                               .reshape(-1, 3))
        ijk = self.to_box(pts_lps).astype(np.float32)
        shp = ijk.shape[:-1]
        ijk = ijk.reshape(-1, 3)
        dims = np.asarray(self.bone.shape)
        ijk = np.clip(ijk, 0, dims - 1.001)
        i0 = ijk.astype(np.intp)                      # floor (values are >= 0)
        f = ijk - i0
        sy, sz = dims[1] * dims[2], dims[2]
        base = i0[:, 0] * sy + i0[:, 1] * sz + i0[:, 2]
        st = self._stack
        fx, fy, fz = f[:, 0:1], f[:, 1:2], f[:, 2:3]
        c00 = st[base] * (1 - fz) + st[base + 1] * fz
        c01 = st[base + sz] * (1 - fz) + st[base + sz + 1] * fz
        c10 = st[base + sy] * (1 - fz) + st[base + sy + 1] * fz
        c11 = st[base + sy + sz] * (1 - fz) + st[base + sy + sz + 1] * fz
        out = (c00 * (1 - fy) + c01 * fy) * (1 - fx) + (c10 * (1 - fy) + c11 * fy) * fx
        return out.reshape(*shp, 3)

    def bone_sd(self, anatomy, pts_lps: np.ndarray) -> np.ndarray:
        """Signed distance to this vertebra's surface; beyond the box +-0.5 from the label map."""
        p = np.asarray(pts_lps, float)
        ijk = self.to_box(p)
        inside = np.all((ijk > -0.5) & (ijk < np.asarray(self.bone.shape) - 0.5), axis=-1)
        out = self.sample("bone", p)
        if not inside.all():
            full = np.rint(ijk[~inside] @ self.box_to_full[:3, :3].T + self.box_to_full[:3, 3]).astype(int)
            ok = np.all((full >= 0) & (full < np.asarray(anatomy.labels.shape)), axis=-1)
            val = np.full(len(full), -1e3, np.float32)
            f = full[ok]
            val[ok] = np.where(anatomy.labels[f[:, 0], f[:, 1], f[:, 2]] == self.label, 0.5, -0.5)
            out[~inside] = val
        return out

    def part_at(self, pts_lps: np.ndarray) -> np.ndarray:
        return self.sample("parts", pts_lps, order=0).astype(np.uint8)


def _box(mask: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounding box of ``mask`` plus the margin, in ``mask``'s indices (may exceed its shape)."""
    idx = np.argwhere(mask)
    m = np.ceil(_MARGIN_MM / spacing).astype(int)
    return idx.min(0) - m, idx.max(0) + m + 1


def _objects(anatomy) -> list:
    """``ndimage.find_objects`` of the anatomy's label map (cached per label array)."""
    labels = anatomy.labels
    key = ("objects", id(labels))
    with _LOCK:
        hit = _OBJECTS.get(key)
    if hit is None or hit[0]() is not labels:
        hit = (weakref.ref(labels), _find_boxes(np.asarray(labels)))
        with _LOCK:
            for k in [k for k, v in _OBJECTS.items() if v[0]() is None]:
                del _OBJECTS[k]
            _OBJECTS[key] = hit
    return hit[1]


def _find_boxes(labels: np.ndarray) -> list:
    """``find_objects`` of ``labels``, found on every 2nd voxel and widened by 4 voxels.

    8x less work than on the full grid; the boxes are a few voxels larger than the
    labels' (callers mask ``== label`` inside them); a thin spur leaving the box by more
    than that is cut, which the planner (body and pedicles, 9 mm margin) does not use.  A
    label only the full grid has (a sliver thinner than 2 voxels) falls back to the exact search.
    """
    if min(labels.shape) < 8:
        return ndimage.find_objects(labels)
    coarse = ndimage.find_objects(labels[::2, ::2, ::2])
    present = np.flatnonzero(np.bincount(labels[::4, ::4, ::4].ravel(), minlength=len(coarse) + 1))
    if len(coarse) < int(labels.max()) or any(coarse[k - 1] is None for k in present if k > 0):
        return ndimage.find_objects(labels)
    out = []
    for bb in coarse:
        out.append(None if bb is None else tuple(slice(max(0, 2 * sl.start - 4), min(n, 2 * sl.stop + 3))
                                                 for sl, n in zip(bb, labels.shape)))
    return out


def _compute(anatomy, label: int) -> VertebraMaps:
    labels = anatomy.labels
    aff = np.asarray(anatomy.ijk_to_lps, float)
    spacing = np.linalg.norm(aff[:3, :3], axis=0)
    objs = _objects(anatomy)
    if label > len(objs) or objs[label - 1] is None:
        raise ValueError(f"vertebra label {label} has no voxels in the label map")
    bb = objs[label - 1]
    off = np.array([s.start for s in bb])
    sub = labels[bb] == label
    parts_bb = anatomy.parts[bb]
    has_pedicles = all(((parts_bb == code) & sub).any() for code in (PART_PEDICLE_LEFT, PART_PEDICLE_RIGHT))
    core = sub & np.isin(parts_bb, (PART_BODY, PART_PEDICLE_LEFT, PART_PEDICLE_RIGHT)) if has_pedicles else sub
    lo, hi = _box(core, spacing)
    lo, hi = lo + off, hi + off
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, labels.shape)
    sl = tuple(slice(a, b) for a, b in zip(lo, hi))
    lab = np.asarray(labels[sl])
    canal = np.asarray(anatomy.canal[sl], bool) if anatomy.canal is not None else np.zeros(lab.shape, bool)
    parts = np.where(lab == label, anatomy.parts[sl], 0).astype(np.uint8)
    # everything below on a grid no finer than _GRID_MM (a 0.7 mm scan costs 2-3x less)
    shape = np.array(lab.shape)
    new_shape = np.where(spacing < 0.95 * _GRID_MM, np.maximum(2, np.round(shape * spacing / _GRID_MM)),
                         shape).astype(int)
    box_to_full = np.eye(4)
    box_to_full[:3, 3] = lo
    if np.any(new_shape != shape):
        scale = (shape - 1) / np.maximum(new_shape - 1, 1)
        box_to_full[:3, :3] = np.diag(scale)
        z = new_shape / shape

        def rs(m):
            return ndimage.zoom(m.astype(np.uint8), z, order=0, grid_mode=False)

        lab, canal, parts = rs(lab), rs(canal) > 0, rs(parts)
        spacing = spacing * scale
    vmask = lab == label
    other = (lab > 0) & (lab != label)
    # close seams (<= ~3 mm) between the parts of a label map, fill holes, keep out of the canal
    # (none on voxels coarser than 2 * _CLOSE_MM: one closing step there bridges ~6 mm notches)
    n_close = int(np.floor(_CLOSE_MM / float(np.min(spacing)) + 0.5))
    if n_close > 0:
        ball = ndimage.generate_binary_structure(3, 1)
        vmask = ndimage.binary_closing(vmask, structure=ball, iterations=n_close) | vmask
    vmask = ndimage.binary_fill_holes(vmask) & ~canal & ~other
    canal_found = bool(canal.any())
    box_to_lps = aff @ box_to_full
    lps_to_box = np.linalg.inv(box_to_lps)
    bone = _signed_edt(vmask, spacing)
    canal_d = _outside_edt(canal, spacing) if canal_found else np.full(vmask.shape, 1e3, np.float32)
    other_d = _outside_edt(other, spacing) if other.any() else np.full(vmask.shape, 1e3, np.float32)
    extent = {}
    va = anatomy.vertebrae.get(label)
    if va is not None:
        for side, code in (("left", PART_PEDICLE_LEFT), ("right", PART_PEDICLE_RIGHT)):
            ped = va.pedicles.get(side)
            pidx = np.argwhere(parts == code)
            if ped is None or len(pidx) == 0:
                continue
            pts = pidx @ box_to_lps[:3, :3].T + box_to_lps[:3, 3]
            s = (pts - ped.isthmus_center_lps) @ np.asarray(ped.axis_lps, float)
            extent[side] = (float(s.min()), float(s.max()))
    return VertebraMaps(label=int(label), box_to_full=box_to_full, lps_to_box=lps_to_box, spacing=spacing, bone=bone,
                        canal=canal_d, other=other_d, parts=parts, canal_found=canal_found,
                        other_found=bool(other.any()),
                        pedicle_extent=extent)


def vertebra_maps(anatomy, label: int) -> VertebraMaps:
    """Cached :class:`VertebraMaps` of vertebra ``label`` of ``anatomy``."""
    key = (id(anatomy), id(anatomy.labels), id(anatomy.parts), id(anatomy.canal), int(label))
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    maps = _compute(anatomy, int(label))
    with _LOCK:
        _watch(anatomy)
        _CACHE[key] = maps
    return maps


def _watch(anatomy) -> None:
    """Drop the anatomy's cache entries when it is garbage-collected (ids get reused)."""
    if id(anatomy) not in _WATCHED:
        _WATCHED.add(id(anatomy))
        weakref.finalize(anatomy, _forget, id(anatomy))


def _forget(anatomy_id: int) -> None:
    with _LOCK:
        _WATCHED.discard(anatomy_id)
        for k in [k for k in _CACHE if k[0] == anatomy_id]:
            del _CACHE[k]


def sample_volume(volume, pts_lps: np.ndarray, *, order: int = 1, outside: float = -1000.0) -> np.ndarray:
    """HU at ``(..., 3)`` LPS points (``outside`` beyond the field of view)."""
    p = np.asarray(pts_lps, float)
    shp = p.shape[:-1]
    ijk = volume.to_ijk(p.reshape(-1, 3))
    inside = np.all((ijk > -0.5) & (ijk < np.asarray(volume.shape) - 0.5), axis=1)
    out = np.full(len(ijk), outside, np.float32)
    if inside.any():
        out[inside] = ndimage.map_coordinates(volume.voxels, ijk[inside].T, order=order, mode="nearest",
                                              output=np.float32)
    return out.reshape(shp)


def in_view(volume, pts_lps: np.ndarray) -> np.ndarray:
    ijk = volume.to_ijk(np.asarray(pts_lps, float))
    return np.all((ijk > -0.5) & (ijk < np.asarray(volume.shape) - 0.5), axis=-1)

