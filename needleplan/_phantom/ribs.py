"""Ribs of the synthetic thoracic spine: head at the body, neck to the transverse process.

T1-T10 ribs articulate with the tip of the transverse process (costotransverse joint);
T11 and T12 are short floating ribs, so the lowest rib-bearing vertebra is T12.
"""

from __future__ import annotations

import numpy as np

from needleplan._phantom.vertebra import SIDES, VertebraModel

__all__ = ["rib_centerline", "paint_ribs"]


def rib_centerline(m: VertebraModel, side: str):
    """Rib centre line (local frame of its vertebra): head, neck to the transverse tip, shaft."""
    g = m.geom
    s = SIDES[side]
    lab = g.label
    head = np.array([s * (0.5 * g.body_width_mm - 1.0), 0.5 * g.body_depth_mm - 4.0,
                     0.5 * m.heights_mm[2] - 3.0])
    j = m.arch_anchor(side)
    back = np.deg2rad(g.tp_back_deg)
    length = g.tp_len_mm + 0.5 * g.facet_radius_mm
    tp_tip = j + length * np.array([s * np.cos(back), np.sin(back), 0.0])
    tub = tp_tip + np.array([s * 1.0, -5.0, -1.0])
    if lab >= 18:  # floating ribs: no costotransverse joint, short
        tub = np.array([s * (abs(j[0]) + 14.0), j[1] - 2.0, head[2] - 2.0])
    pts = [head + (tub - head) * t for t in np.linspace(0, 1, 30)]
    total = {18: 140.0, 19: 95.0}.get(lab, 260.0)
    # shaft: an arc in the axial plane curving laterally then anteriorly, sloping down
    r_arc = 70.0 + 2.0 * (lab - 8)
    ctr = tub + np.array([0.0, -r_arc * 0.9, 0.0])
    ang0 = np.arctan2(tub[1] - ctr[1], s * (tub[0] - ctr[0]))
    steps = int(total / 1.0)
    for k in range(1, steps):
        a = ang0 - k / r_arc
        p = ctr + np.array([s * r_arc * np.cos(a) * 1.4, r_arc * np.sin(a), -0.35 * k])
        pts.append(p)
    return np.array(pts)


def paint_ribs(grid, hu, labels, world, spacing, *, cortex_hu: float, cortex_mm: float):
    """Draw the ribs of every thoracic level into ``hu``; return the rib mask (or None).

    Each rib is a tube (radius 3.6 mm, 5.5 mm along its vertebra's superior axis) along :func:`rib_centerline`, painted as
    the minimum distance to densely resampled centre-line points in small boxes.
    """
    dist = None
    r_in, r_z = 3.6, 5.5
    for m in world:
        if not m.geom.has_rib:
            continue
        for side in ("left", "right"):
            pts = rib_centerline(m, side)
            # resample evenly (0.5 voxel)
            seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
            s = np.concatenate([[0], np.cumsum(seg)])
            ss = np.arange(0, s[-1], 0.5 * float(np.min(spacing)))
            pl = np.column_stack([np.interp(ss, s, pts[:, k]) for k in range(3)])
            pw = pl @ m.rot.T + m.center_lps
            lz = m.rot[:, 2]
            if dist is None:
                dist = np.full(grid.shape, np.inf, np.float32)
            for p in pw:
                box = grid.index_box(p - r_z - 1, p + r_z + 1)
                if box is None:
                    continue
                ax = [grid.axis_coords(k, box[k].start, box[k].stop) - np.float32(p[k]) for k in range(3)]
                dx, dy, dz = ax[0][:, None, None], ax[1][None, :, None], ax[2][None, None, :]
                along_z = dx * lz[0] + dy * lz[1] + dz * lz[2]
                d2 = dx * dx + dy * dy + dz * dz - along_z * along_z + (along_z * (r_in / r_z)) ** 2
                sub = dist[box]
                np.minimum(sub, np.sqrt(d2), out=sub)
    if dist is None:
        return None
    rib = (dist <= r_in) & (labels == 0)
    core = 260.0
    vox = float(np.mean(spacing))
    depth = r_in - dist
    frac = np.clip((cortex_mm - depth + 0.5 * vox) / vox, 0.0, 1.0)
    val = core + frac * (cortex_hu - 100.0 - core)
    hu[rib] = val[rib]
    return rib
