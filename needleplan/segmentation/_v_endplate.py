"""Carry each vertebral body out to its endplates (CT grid, after the marrow fill).

The work-grid labelling (:mod:`._v_label`) clears a slab around each disc plane and calls
the bone in it "other bone"; the slab is a plane of the disc's half thickness, while the
real disc is thinner (2-4 mm in the thoracic spine on 1 mm slices), curved and tilted
against the fitted plane.  So the cortical endplates on both sides of the disc, and the
marrow under them down to where the coarse label's interior begins, were left out of the
body: bands of 3-5 mm cut by straight slanted lines along the planes (lidc0314 T1-T11),
and body heights short by as much.

Here every body is walked out along the disc normal (the spine's axis at that endplate),
one voxel ray per boundary voxel of the body (:func:`_walk`): through marrow (median HU
above :data:`MARROW_HU`; dips inside the coarse body's interior are the marrow's own),
over the endplate and down its far flank to half-way between the peak and the disc
(:func:`_trim` refines this on the unfiltered HU).  A ray is refused when it runs out of
:data:`REACH_MM` still in bone (along a wall, a fused disc), fades out slowly (more than
:data:`FLANK_MM` past its plateau: a disc as bright as marrow in a noisy scan) or crosses
more than :data:`PLATE_MM` of dense bone (osteophytes, a calcified disc); after a dip and a
rise (a thin disc and the neighbour's endplate) or at another vertebra it ends before the
dip.  A ray that comes back to its own body through its coarse interior (marrow between
the body and its labelled endplate, fatty and as dark as a disc under lidc0314's
endplates) takes that pocket whatever its HU above :data:`POCKET_HU`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["reach_endplates"]

#: Smallest median-filtered HU of marrow a ray may cross before its endplate (the disc's
#: nucleus and annulus are 50-120 HU; marrow of a normal body 150-300 HU).
MARROW_HU = 100.0
#: Half width (mm) of the median filter applied to the CT before walking the rays.
MEDIAN_MM = 1.0
#: Farthest (mm) a ray walks from the body's labelled boundary: the unlabelled band under
#: the endplate plus the endplate (3-5 mm and 1-2 mm on lidc0314).
REACH_MM = 8.0
#: A dip of this many HU below the ray's peak followed by a rise of as many is the far side
#: of a thin disc whose dip stays above the half-way level (60 stopped rays in the noise of
#: lidc0314's marrow, which varies by +-50 HU from voxel to voxel).
RISE_HU = 80.0
#: Ball (mm) that fits in a body but not in a pedicle or process (see :mod:`._v_body`).
BODY_MM = 7.0
#: Median HU of an endplate's cortex (lidc0314: 450-700 over 2 voxels; marrow 150-300).
PLATE_HU = 350.0
#: Longest run (mm) of bone at :data:`PLATE_HU` or more a ray may take (endplate 1-3 mm thick).
PLATE_MM = 4.0
#: Largest distance (mm) from a ray's peak to where it falls to the disc (an endplate's
#: flank is 1-2 voxels; lidc0314's faint posterior endplates fall within 3 mm).
FLANK_MM = 3.0
#: Samples at the end of a taken ray searched for the endplate's raw peak (:func:`_trim`).
TAIL = 3
#: Smallest median HU on a ray between the body and its own labelled endplate (a pocket
#: of marrow; the band under lidc0314's endplates is fatty, 110-175 HU, like the disc).
POCKET_HU = 50.0
#: Depth (mm) inside the coarse label where dips of the HU are the marrow's own.
INNER_MM = 1.5
#: Largest CT voxel size (mm) the rays run on: in 3 mm slices an endplate, its flank and
#: the disc share a slice or two, and the rays added whole slices (ts-abdomen-3mm: heights
#: 0.5 mm further from TotalSegmentator's report on average, L5 anterior 3.0 -> 4.5 mm).
MAX_VOXEL_MM = 2.0
#: First vertebra (VerSe id) carried to its endplates: T1.  The cervical bodies are small,
#: their discs thin and flanked by the uncinate processes; there the rays cost up to 0.007
#: Dice on the upper cervical phantom.
FIRST_LABEL = 8
#: Code of the body's own label along a ray.
OWN = 255
#: Largest distance (mm) from a body's centre to the centre of the disc plane used for it.
PLANE_NEAR_MM = 45.0


def _body_mask(cm: np.ndarray, sp: np.ndarray) -> np.ndarray:
    """The thick part of a (coarse) vertebra: where a ball of :data:`BODY_MM` fits, grown back.

    Measured on every second voxel (the coarse labels are no finer than that).
    """
    f = np.where(sp < 1.5, 2, 1)
    small = cm[::f[0], ::f[1], ::f[2]]
    ssp = sp * f
    thick = ndi.distance_transform_edt(small, sampling=ssp) > BODY_MM
    if not thick.any():
        return np.zeros(cm.shape, bool)
    body = ndi.distance_transform_edt(~thick, sampling=ssp) <= BODY_MM
    for a in range(3):
        body = np.repeat(body, f[a], axis=a)
    return body[:cm.shape[0], :cm.shape[1], :cm.shape[2]]


def _median_at(hu: np.ndarray, pts: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Median of ``hu`` over the box of half size ``half`` (voxels) around each point."""
    offs = np.stack(np.meshgrid(*[np.arange(-h, h + 1) for h in half], indexing="ij"), -1).reshape(-1, 3)
    hi = np.array(hu.shape) - 1
    vals = np.empty((len(pts), len(offs)), np.float32)
    for c, o in enumerate(offs):
        q = np.clip(pts + o, 0, hi)
        vals[:, c] = hu[q[:, 0], q[:, 1], q[:, 2]]
    return np.median(vals, axis=1)


def _ray_offsets(direction_ijk: np.ndarray, step_mm: float, reach_mm: float) -> np.ndarray:
    """Integer voxel offsets along ``direction_ijk`` (voxels per mm), without repeats."""
    n = int(np.ceil(reach_mm / step_mm))
    t = np.arange(1, n + 1) * step_mm
    off = np.rint(direction_ijk[None, :] * t[:, None]).astype(int)
    keep = np.r_[True, np.any(np.diff(off, axis=0) != 0, axis=1)] & np.any(off != 0, axis=1)
    return off[keep]


def _walk(h: np.ndarray, lab: np.ndarray, h0: np.ndarray, t_mm: np.ndarray, inner: np.ndarray,
          solid: np.ndarray) -> np.ndarray:
    """Number of leading samples each ray takes (0: the ray is refused).

    ``h`` and ``lab`` are (N, S): median HU and label along N rays, S samples each
    (0 unlabelled, :data:`OWN` the body's own label, else another vertebra); ``h0`` (N,) the
    HU of the body where each ray starts; ``t_mm`` (S,) the distance of each sample from
    the start; ``inner`` (N, S) whether a sample lies in the interior of the body's coarse
    label, where dips are the marrow's own (fatty islands of 150 HU in marrow of 250-300)
    and do not stop the ray; ``solid`` (N, S) whether a sample lies well inside the coarse
    body, also across the ray (pockets do; a ray along the outside of a wall does not).

    A ray runs while the HU stays above half-way between its peak so far and
    :data:`MARROW_HU` and does not rise again by :data:`RISE_HU` after a dip.  It is taken
    when it ended so at most :data:`FLANK_MM` past where it last was within
    :data:`RISE_HU` of its peak (the far flank of an endplate into the disc); after a rise,
    or at another vertebra past a dip, only up to its lowest sample (the disc).  It is
    refused when it runs out of reach (still in bone: the wall's cortex, a fused disc) or
    fades out slowly (no endplate: the disc itself, as bright as marrow in a noisy scan).
    A ray that comes back to its own body through ``solid`` samples of at least
    :data:`POCKET_HU` takes that pocket.
    """
    n, s_max = h.shape
    # pockets: rays that come back to their own body (its labelled endplate) through
    # anything but fat, fluid or air
    home_at = np.argmax(lab == OWN, axis=1)
    home = (lab[np.arange(n), home_at] == OWN) & (home_at > 0)
    cols = np.arange(s_max)[None, :]
    before = cols < home_at[:, None]
    home &= ~np.any(before & (lab != 0), axis=1)
    home &= np.all(~before | solid, axis=1)
    home &= np.all(~before | (h >= POCKET_HU), axis=1)
    alive = np.ones(n, bool)
    ended = np.zeros(n, bool)
    peak = np.asarray(h0, float).copy()
    high_t = np.zeros(n)  # where the ray was last within RISE_HU of its peak
    low = peak.copy()
    low_at = np.zeros(n, int)
    taken = np.zeros(n, int)
    for s in range(s_max):
        v = h[:, s]
        label = lab[:, s] != 0
        other = label & (lab[:, s] != OWN)
        body = inner[:, s]
        dipped = peak - low >= RISE_HU
        again = dipped & (v - low >= RISE_HU) & ~body
        drop = (v < MARROW_HU) | ((v < 0.5 * (peak + MARROW_HU)) & ~body)
        stop = label | drop | again
        now = alive & stop
        # the disc's edge lies within a flank's width of the endplate's peak
        far = np.where(again, t_mm[low_at], t_mm[s]) - high_t > FLANK_MM
        ended |= now & ~((drop | again) & ~label & far)
        # past a dip (the disc), the ray ends before its lowest sample
        taken = np.where(now & (again | (other & dipped)), low_at, taken)
        alive &= ~stop
        rise = alive & (v >= peak)
        peak = np.where(rise, v, peak)
        high_t = np.where(alive & (v >= peak - RISE_HU), t_mm[s], high_t)
        dip = alive & (~rise & (v < low) | body)
        low = np.where(rise | dip, v, low)
        low_at = np.where(rise | dip, s, low_at)
        high_t = np.where(alive & body, t_mm[s], high_t)
        taken = np.where(alive, s + 1, taken)
    return np.where(home, home_at, np.where(ended, taken, 0))


def _trim(raw: np.ndarray, raw0: np.ndarray, h: np.ndarray, lab: np.ndarray, n_take: np.ndarray) -> np.ndarray:
    """Cut each taken ray back to the half-way level of its endplate's far flank.

    The median filter flattens a thin endplate (one voxel of 600 HU reads ~330), which
    moves the half-way level of :func:`_walk` down and lets a voxel of the disc (or of
    the partial-volume rim outside a cortex already labelled) in.  The raw peak P is
    sought among the last :data:`TAIL` samples taken and the ray's start voxel (``raw0``,
    (N,)); past it, samples are kept while their raw HU is at least half-way between P
    and the (median) HU of the sample where the ray stopped.  Rays that stopped at a
    label are left as they are.
    """
    n, s_max = raw.shape
    out = n_take.copy()
    rows = np.flatnonzero((n_take > 0) & (n_take < s_max))
    if len(rows) == 0:
        return out
    rows = rows[lab[rows, n_take[rows]] == 0]
    t = n_take[rows]
    disc = h[rows, t]
    k = np.arange(-TAIL, 0)[None, :] + t[:, None]  # the last TAIL samples taken
    kc = np.clip(k, 0, s_max - 1)
    tail = np.where(k >= 0, raw[rows[:, None], kc], -np.inf)
    best = np.argmax(tail, axis=1)
    ip = kc[np.arange(len(rows)), best]
    peak = tail[np.arange(len(rows)), best]
    first = raw0[rows] >= peak  # the start voxel (already labelled) is the peak
    ip = np.where(first, -1, ip)
    peak = np.maximum(peak, raw0[rows])
    level = 0.5 * (peak + disc)
    keep = ip + 1
    going = np.ones(len(rows), bool)
    for d in range(1, TAIL + 2):
        j = ip + d
        going &= (j < t) & (raw[rows, np.clip(j, 0, s_max - 1)] >= level)
        keep = np.where(going, j + 1, keep)
    out[rows] = keep
    return out


def _bright_run_mm(h: np.ndarray, h_start: np.ndarray, n_take: np.ndarray, t_mm: np.ndarray) -> np.ndarray:
    """Longest run (mm) of samples at or above :data:`PLATE_HU` in each taken ray.

    The run may begin at the ray's start voxel (``h_start``, a bright endplate already
    labelled); ``t_mm`` is the distance of each sample from the start (a sample counts
    ``t_mm[0]``, about a voxel).
    """
    n, s_max = h.shape
    run_from = np.where(h_start >= PLATE_HU, 0.0, np.nan)
    longest = np.zeros(n)
    for s in range(s_max):
        inside = s < n_take
        bright = inside & (h[:, s] >= PLATE_HU)
        run_from = np.where(bright & np.isnan(run_from), t_mm[s], run_from)
        length = np.where(bright, t_mm[s] - np.nan_to_num(run_from, nan=t_mm[s]) + t_mm[0], 0.0)
        longest = np.maximum(longest, length)
        run_from = np.where(bright, run_from, np.nan)
    return longest


def _planes_of(centre_lps: np.ndarray, planes) -> tuple:
    """The nearest disc plane above and below a body centre (or None)."""
    up = down = None
    du = dd = np.inf
    for c, nrm in planes:
        c = np.asarray(c, float)
        nrm = np.asarray(nrm, float)
        dist = float(np.linalg.norm(centre_lps - c))
        if dist > PLANE_NEAR_MM:
            continue
        side = float((centre_lps - c) @ nrm)
        if side < 0 and dist < du:
            up, du = (c, nrm), dist
        elif side > 0 and dist < dd:
            down, dd = (c, nrm), dist
    return up, down


def reach_endplates(hu: np.ndarray, labels: np.ndarray, coarse: np.ndarray, planes, *, ijk_to_lps,
                    other: int = 100) -> np.ndarray:
    """Give each vertebral body its endplates and the marrow under them.

    Parameters
    ----------
    hu : (I, J, K) array
        The CT (HU).
    labels : (I, J, K) uint8
        Vertebra labels on the CT grid (VerSe ids, 0 background), after the marrow fill.
    coarse : (I, J, K) uint8
        Work-grid labels mapped onto the CT grid (VerSe ids, ``other`` for other bone):
        where the bodies are.
    planes : sequence of (centre_lps, normal_lps)
        Disc planes (LPS mm; normals pointing cranially).
    ijk_to_lps : (4, 4) array_like
        The CT's voxel-to-LPS matrix.
    other : int
        Label of other bone in ``coarse``.

    Returns
    -------
    (I, J, K) uint8
        A new label array; only unlabelled voxels change.
    """
    aff = np.asarray(ijk_to_lps, float)
    rot = aff[:3, :3]
    sp = np.linalg.norm(rot, axis=0)
    inv = np.linalg.inv(rot)
    planes = [(np.asarray(c, float), np.asarray(n, float) / np.linalg.norm(n)) for c, n in planes]
    out = np.array(labels, copy=True)
    if not planes or float(np.max(sp)) > MAX_VOXEL_MM:
        return out
    step = 0.5 * float(np.min(sp))
    pad = np.ceil((REACH_MM + 2.0) / sp).astype(int) + 1
    half = np.array([max(0, int(round(MEDIAN_MM / s))) for s in sp])
    erode = np.maximum(1, np.round(INNER_MM / sp)).astype(int)
    for m, box in enumerate(ndi.find_objects(coarse), start=1):
        if box is None or m >= other or m < FIRST_LABEL:
            continue
        box = tuple(slice(max(0, b.start - p), min(n, b.stop + p)) for b, p, n in zip(box, pad, coarse.shape))
        cm = coarse[box] == m
        sub = out[box]
        own = sub == m
        if not own.any():
            continue
        solid = _body_mask(cm, sp) & cm  # the coarse body, without pedicles, arch and processes
        body = solid & own
        if body.sum() < 50:
            continue
        lo = np.array([b.start for b in box])
        centre_lps = aff[:3, :3] @ (np.argwhere(body).mean(0) + lo) + aff[:3, 3]
        up, down = _planes_of(centre_lps, planes)
        if up is None and down is None:
            continue
        hub = np.asarray(hu[box])
        # the coarse body's interior (its outline is about a working voxel too wide)
        inner = ndi.minimum_filter(cm.view(np.uint8), size=tuple(2 * erode + 1)).astype(bool)
        take = np.zeros(sub.shape, bool)
        for plane, sign in ((up, 1.0), (down, -1.0)):
            if plane is None:
                continue
            off = _ray_offsets(inv @ (sign * plane[1]), step, REACH_MM)
            if len(off) == 0:
                continue
            start = np.argwhere(body)
            nxt = start + off[0]
            inb = np.all((nxt >= 0) & (nxt < sub.shape), axis=1)
            start = start[inb]
            nxt = nxt[inb]
            start = start[sub[tuple(nxt.T)] != m]
            if len(start) == 0:
                continue
            pts = start[:, None, :] + off[None, :, :]  # (N, S, 3)
            valid = np.all((pts >= 0) & (pts < sub.shape), axis=2)
            pc = np.clip(pts, 0, np.array(sub.shape) - 1)
            idx = tuple(pc[..., a] for a in range(3))
            flat = np.ravel_multi_index(idx, sub.shape)
            uniq, inv_u = np.unique(flat, return_inverse=True)
            med = _median_at(hub, np.column_stack(np.unravel_index(uniq, sub.shape)), half)
            hv = np.where(valid, med[inv_u].reshape(flat.shape), -1000.0)
            lv = np.where(valid, sub[idx], 0)
            lv = np.where(lv == m, OWN, np.where(lv == OWN, 1, lv))
            # the body's HU where the ray starts (and two samples further in)
            back = np.stack([start, start - off[0], start - off[min(1, len(off) - 1)]], 1).reshape(-1, 3)
            back = np.clip(back, 0, np.array(sub.shape) - 1)
            hb = _median_at(hub, back, half).reshape(-1, 3)
            t_mm = np.linalg.norm(off * sp, axis=1)
            # pockets lie in the coarse body with its label on all sides across the ray
            # (a ray along the outside of a wall has not)
            across = np.where(valid, solid[idx], False)
            nrm = plane[1]
            e1 = np.cross(nrm, [1.0, 0.0, 0.0] if abs(nrm[0]) < 0.9 else [0.0, 1.0, 0.0])
            e1 /= np.linalg.norm(e1)
            for e in (e1, np.cross(nrm, e1)):
                for sgn in (1.0, -1.0):
                    o = np.rint(inv @ (sgn * INNER_MM * e)).astype(int)
                    q = np.clip(pc + o, 0, np.array(sub.shape) - 1)
                    across &= cm[tuple(q[..., a] for a in range(3))]
            deep = np.where(valid, inner[idx], False)
            n_take = _walk(hv, lv, hb.max(1), t_mm, deep, across & deep)
            raw0 = hub[tuple(start.T)].astype(float)
            n_take = _trim(np.where(valid, hub[idx], -1000.0).astype(float), raw0, hv, lv, n_take)
            # an endplate is thin: a ray through more bright bone crossed a bony bridge
            # (osteophytes, a calcified disc) or ran along a wall
            n_take[_bright_run_mm(hv, hb[:, 0], n_take, t_mm) > PLATE_MM] = 0
            sel = np.arange(pts.shape[1])[None, :] < n_take[:, None]
            q = pc[sel]
            take[tuple(q.T)] = True
        take &= sub == 0
        sub[take] = m
    return out
