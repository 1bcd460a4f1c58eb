"""Density-weighted geodesic partition of the spine bone among the vertebral bodies.

Every bone voxel goes to the body it is joined to by the cheapest path through bone,
where a step costs its length times a factor that grows as the bone gets less dense.
Cortical bone (pedicles, laminae) is cheap; the low-density gaps of the facet and
costovertebral joints, and partial-volume margins, are expensive, so an arch joins the
body its pedicles come from rather than the neighbour whose articular process touches
it.  A multi-source Dijkstra (:func:`scipy.sparse.csgraph.dijkstra`, ``min_only``) over
the directed 26-connected voxel graph of the domain, one per group of seeds sharing a
handicap (a head start for the rib fronts).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

__all__ = ["geodesic_partition"]

#: Cost per mm of the least dense bone relative to dense cortex.
GAP_COST = 12.0


def _offsets(connectivity: int = 26):
    out = []
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            for dk in (-1, 0, 1):
                if (di, dj, dk) > (0, 0, 0) and (connectivity == 26 or abs(di) + abs(dj) + abs(dk) == 1):
                    out.append((di, dj, dk))
    return out


def geodesic_partition(domain: np.ndarray, markers: np.ndarray, hu: np.ndarray, spacing_mm, *,
                       dense_hu: float, loose_hu: float, gap_cost: float = GAP_COST,
                       up_cost: np.ndarray | float = 1.0,
                       handicap_mm: dict[int, float] | None = None,
                       step_cost: np.ndarray | None = None, connectivity: int = 26) -> np.ndarray:
    """Label every domain voxel with the marker reached by the cheapest path.

    Parameters
    ----------
    domain : (X, Y, Z) bool
        Voxels paths may use (bone and the solid bodies).
    markers : (X, Y, Z) uint8
        Seeds (> 0) inside ``domain``.
    hu : (X, Y, Z) float
        Smoothed HU.
    spacing_mm : (3,) array_like
    dense_hu, loose_hu : float
        HU at and above which a step costs its length, and at and below which it costs
        ``gap_cost`` times its length (quadratic in between).
    gap_cost : float
    up_cost : float or (X, Y, Z) float
        Factor on steps toward +axis 2 (cranial) out of each voxel: the posterior
        elements of a vertebra hang caudally from its pedicles, so reaching them from the
        vertebra below (upward through its superior articular process) costs more.
    handicap_mm : dict, optional
        ``{label: cost}`` added to the paths from that marker label (a negative value is
        a head start).
    step_cost : (X, Y, Z) float, optional
        Cost factor per voxel (>= 1) used instead of the one derived from ``hu``.
    connectivity : {26, 6}
        Voxel neighbourhood of a step; with 6 a path cannot slip diagonally between the
        voxels of a one-voxel-thick oblique gap (a step costs the mean of its two ends).

    Returns
    -------
    (X, Y, Z) uint8
        Marker label per domain voxel reachable from a marker, 0 elsewhere.
    """
    sp = np.asarray(spacing_mm, float)
    dom = domain | (markers > 0)
    idx = np.flatnonzero(dom.ravel())
    out = np.zeros(domain.shape, np.uint8)
    if len(idx) == 0 or not (markers > 0).any():
        return out
    node = np.full(dom.size, -1, np.int64)
    node[idx] = np.arange(len(idx))
    node = node.reshape(dom.shape)
    if step_cost is None:
        t = np.clip((dense_hu - hu) / max(dense_hu - loose_hu, 1.0), 0.0, 1.0)
        cost = (1.0 + (gap_cost - 1.0) * t * t).astype(np.float32)
    else:
        cost = np.array(step_cost, dtype=np.float32)
    cost[markers > 0] = 1.0
    up = np.broadcast_to(np.asarray(up_cost, np.float32), dom.shape)
    rows, cols, wts = [], [], []
    nx, ny, nz = dom.shape
    for di, dj, dk in _offsets(connectivity):
        a = (slice(max(0, -di), nx - max(0, di)), slice(max(0, -dj), ny - max(0, dj)),
             slice(max(0, -dk), nz - max(0, dk)))
        b = (slice(max(0, di), nx - max(0, -di)), slice(max(0, dj), ny - max(0, -dj)),
             slice(max(0, dk), nz - max(0, -dk)))
        both = dom[a] & dom[b]
        if not both.any():
            continue
        length = float(np.sqrt((di * sp[0]) ** 2 + (dj * sp[1]) ** 2 + (dk * sp[2]) ** 2))
        w = 0.5 * length * (cost[a][both] + cost[b][both])
        ua = up[a][both] if dk > 0 else 1.0  # a -> b goes cranially when dk > 0
        ub = up[b][both] if dk < 0 else 1.0  # b -> a goes cranially when dk < 0
        rows += [node[a][both], node[b][both]]
        cols += [node[b][both], node[a][both]]
        wts += [w * ua, w * ub]
    n = len(idx)
    if not rows:  # isolated voxels: only the seeds themselves are labelled
        out[markers > 0] = markers[markers > 0]
        return out
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    w = np.concatenate(wts).astype(np.float64)
    g = sparse.csr_matrix((w, (r, c)), shape=(n, n))
    mk = markers.ravel()
    handicap_mm = handicap_mm or {}
    labels = np.unique(mk[mk > 0])
    groups: dict[float, list[int]] = {}
    for lab in labels:
        groups.setdefault(float(handicap_mm.get(int(lab), 0.0)), []).append(int(lab))
    best = np.full(n, np.inf)
    lab_of_node = np.zeros(n, np.uint8)
    for extra, labs in groups.items():
        src_vox = np.flatnonzero(np.isin(mk, labs))
        sources = node.ravel()[src_vox]
        dist, _, which = dijkstra(g, directed=True, indices=sources, min_only=True,
                                  return_predecessors=True)
        dist = dist + extra
        better = (which >= 0) & (dist < best)
        best[better] = dist[better]
        lab_of_node[better] = mk[idx[which[better]]]
    out.reshape(-1)[idx] = lab_of_node
    return out
