"""Split one vertebra into body, left/right pedicle and posterior arch on its local grid.

Local grid axes: ``x`` toward the patient's left, ``y`` anterior, ``z`` superior.
The body is the bone anterior to a plane 3 mm behind the foramen's anterior margin (the
posterior body wall with its posterolateral corners), no wider behind than in front; the
pedicles are the bony bridges beside the canal between the body and the arch, taken
between that plane and 60 % of the canal's depth (the conservative middle of the
pedicle: it stays inside VerSe-style "vertebral arch" labels); the rest is the arch
(laminae, spinous, transverse and articular processes).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from needleplan.segmentation._canal import CanalSection
from needleplan.segmentation._frame import LocalGrid
from needleplan.segmentation.model import PART_ARCH, PART_BODY, PART_PEDICLE_LEFT, PART_PEDICLE_RIGHT

__all__ = ["split_parts", "BODY_WALL_MM"]

#: Thickness of the posterior body cortex kept with the body (mm).
BODY_WALL_MM = 3.0
#: The pedicle band starts this far (fraction of the canal depth) in front of the canal's back.
PEDICLE_BACK_FRACTION = 0.6
#: How far laterally of the canal a pedicle may reach (mm).
PEDICLE_LATERAL_MM = 20.0


def _largest(mask: np.ndarray) -> np.ndarray:
    lab, n = ndi.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def split_parts(mask_local: np.ndarray, grid: LocalGrid, canal: CanalSection | None) -> np.ndarray:
    """Parts map (uint8, PART_* codes) of one vertebra on its local grid."""
    parts = np.zeros(mask_local.shape, dtype=np.uint8)
    if canal is None:
        parts[mask_local] = PART_BODY  # no foramen: nothing tells body from arch
        return parts
    x, y, z = grid.axes_mm()
    body_region = (y > canal.front_y_mm - BODY_WALL_MM)[None, :, None]
    body = mask_local & body_region
    if body.any():
        body = _largest(body)
        # the body is no wider behind than in its anterior two thirds: this cuts off the
        # transverse processes (large and forward-reaching at L5) and rib heads
        yb = y[np.nonzero(body.any(axis=(0, 2)))[0]]
        y_split = canal.front_y_mm + 0.35 * (yb.max() - canal.front_y_mm)
        ant = body & (y >= y_split)[None, :, None]
        if ant.any():
            xa = x[np.nonzero(ant)[0]]
            lo_x, hi_x = np.percentile(xa, 0.5) - 1.5, np.percentile(xa, 99.5) + 1.5
            body &= ((x >= lo_x) & (x <= hi_x))[:, None, None]
            body = _largest(body)
    parts[mask_local] = PART_ARCH
    parts[body] = PART_BODY
    # pedicles: bone beside the canal, in the band in front of 60 % of its depth, not body
    cx = canal.center_xy_mm[0]
    y_back = canal.back_y_mm + PEDICLE_BACK_FRACTION * (canal.front_y_mm - canal.back_y_mm)
    band = (y >= y_back) & (y <= canal.front_y_mm - BODY_WALL_MM)
    # canal's lateral margins per y row (local mm)
    sec = canal.mask2d
    rows = sec.any(axis=0)
    left_edge = np.full(len(y), cx, dtype=float)
    right_edge = np.full(len(y), cx, dtype=float)
    for j in np.nonzero(rows)[0]:
        xi = np.nonzero(sec[:, j])[0]
        left_edge[j], right_edge[j] = x[xi.max()], x[xi.min()]
    # rows of the band without canal pixels: use the nearest row that has them
    if rows.any():
        idx = np.nonzero(rows)[0]
        near = idx[np.abs(np.arange(len(y))[:, None] - idx[None, :]).argmin(axis=1)]
        left_edge, right_edge = left_edge[near], right_edge[near]
    # lateral limit: the pedicles stay within the body's width (transverse processes do not)
    bx = x[np.nonzero(body.any(axis=(1, 2)))[0]] if body.any() else x
    # (cervical bodies are narrower than the canal: allow 8 mm beside the canal there)
    lat_left = max(min(np.percentile(bx, 98), cx + 40.0), left_edge.max() + 8.0) if body.any() else cx + 25.0
    lat_right = min(max(np.percentile(bx, 2), cx - 40.0), right_edge.min() - 8.0) if body.any() else cx - 25.0
    z_lo, z_hi = canal.z_range_mm
    zband = (z >= z_lo - 6.0) & (z <= z_hi + 6.0)
    cand = mask_local & ~body & band[None, :, None] & zband[None, None, :]
    canal3d = np.broadcast_to(sec[:, :, None], mask_local.shape)
    near_canal = ndi.binary_dilation(canal3d & zband[None, None, :],
                                     iterations=max(1, int(round(2.0 / grid.step_mm))))
    for side, code in (("left", PART_PEDICLE_LEFT), ("right", PART_PEDICLE_RIGHT)):
        if side == "left":
            lat = (x[:, None] > cx) & (x[:, None] <= np.minimum(left_edge[None, :] + PEDICLE_LATERAL_MM, lat_left))
        else:
            lat = (x[:, None] < cx) & (x[:, None] >= np.maximum(right_edge[None, :] - PEDICLE_LATERAL_MM, lat_right))
        c = cand & lat[:, :, None]
        if not c.any():
            continue
        lab, n = ndi.label(c)
        touching = np.unique(lab[near_canal & c])
        touching = touching[touching > 0]
        if len(touching) == 0:
            continue
        sizes = np.bincount(lab.ravel(), minlength=n + 1)[touching]
        ped = lab == touching[int(np.argmax(sizes))]
        parts[ped] = code
    return parts
