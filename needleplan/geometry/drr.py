"""Digitally reconstructed radiographs (simulated fluoroscopy) of a CT for a C-arm view.

Physics: HU -> linear attenuation ``mu = mu_water * (1 + HU / 1000)`` (clipped at 0 for
air), line integrals ``L = sum mu * ds`` along every ray from the source to a detector
pixel centre; a needle is a steel cylinder whose chord length along each ray is added
analytically.  The display image is log-domain like a fluoroscopy monitor: it is linear
in ``-L`` (the log of the detected intensity), windowed on the centre of the field like
automatic brightness control, after large-kernel detail processing; **bone and metal
dark** on a light background.

Algorithm (Joseph's method, factorised shear-warp): the volume axis most parallel to the
beam is the *main* axis; every ray is sampled where it crosses each plane of voxel
centres along that axis (bilinear within the plane, step = the plane spacing along the
ray).  Because the perspective map between two parallel planes is a scale plus shift,
each plane is resampled onto one intermediate grid on the plane through the isocentre
(separable bilinear interpolation in numpy, which releases the GIL, so planes are spread
over threads), and the summed grid is warped once onto the detector.  Attenuation
volumes are cached per :class:`~needleplan.io.Volume` (weakly): at full resolution as
int16 ``HU + 1000`` clipped at 0 (proportional to mu, the size of the CT), cropped to the
body; block-averaged float32 copies for previews.
"""

from __future__ import annotations

import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from needleplan.geometry.views import CArmView, pixel_rays, project_points

__all__ = [
    "MU_WATER_PER_MM",
    "MU_NEEDLE_PER_MM",
    "DRR",
    "render_drr",
    "render_preview",
    "prepare",
    "clear_cache",
    "hu_to_mu",
    "needle_chord_lengths_mm",
    "fluoro_display",
    "display_window",
    "harmonise",
]

#: Linear attenuation of water at an effective energy of ~60 keV (1/mm).
MU_WATER_PER_MM = 0.02
#: Linear attenuation of a steel needle with its stylet (iron at ~60 keV, 1/mm).
MU_NEEDLE_PER_MM = 0.9
#: HU below which a voxel counts as air when cropping the attenuation volume.
_AIR_HU = -950.0

_cache: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()
_pool_holder: list = []


def _pool() -> ThreadPoolExecutor:
    """A shared worker pool (threads are reused between renders; numpy and scipy release the GIL)."""
    with _cache_lock:
        if not _pool_holder:
            _pool_holder.append(ThreadPoolExecutor(max(1, min(os.cpu_count() or 1, 8)),
                                                   thread_name_prefix="needleplan-drr"))
        return _pool_holder[0]


def hu_to_mu(hu, *, mu_water: float = MU_WATER_PER_MM) -> np.ndarray:
    """Linear attenuation (1/mm, float32) from HU: ``mu_water * (1 + HU/1000)``, >= 0."""
    mu = np.asarray(hu, dtype=np.float32) * np.float32(mu_water / 1000.0)
    mu += np.float32(mu_water)
    np.maximum(mu, 0.0, out=mu)
    return mu


# ----------------------------------------------------------------------------- cache
@dataclass(frozen=True)
class _Level:
    """An attenuation volume on its own grid: ``mu (1/mm) = scale * data``."""

    data: np.ndarray  # (n0, n1, n2) C-contiguous; int16 (HU + 1000, >= 0) or float32
    scale: float
    ijk_to_lps: np.ndarray  # (4, 4)
    nonzero_planes: tuple  # per axis: bool array, plane holds anything denser than air
    transposed: dict  # axis -> contiguous (n_axis, n_a, n_b) copy (axis 2 only, on demand)


def _chunked(fn, n: int, *, min_chunk: int = 16, max_chunk: int | None = None) -> None:
    """Run ``fn(slice)`` over ``range(n)`` in chunks on all cores (numpy releases the GIL).

    ``max_chunk`` bounds the chunk length (and so the temporary memory per call).
    """
    k = max(1, min(os.cpu_count() or 1, 8, n // min_chunk))
    if max_chunk:
        k = max(k, -(-n // max_chunk))
    edges = np.linspace(0, n, k + 1).astype(int)
    sl = [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]
    if len(sl) == 1:
        fn(sl[0])
        return
    list(_pool().map(fn, sl))


def _crop_box(hu: np.ndarray) -> tuple[tuple[slice, slice, slice], tuple]:
    """Bounding box of the voxels denser than air, and per-axis plane occupancy inside it."""
    n0 = hu.shape[0]
    occ0 = np.zeros(n0, bool)
    occ1 = np.zeros((n0, hu.shape[1]), bool)
    occ2 = np.zeros((n0, hu.shape[2]), bool)

    def work(sl):
        m = hu[sl] > _AIR_HU
        occ1[sl] = m.any(axis=2)
        occ2[sl] = m.any(axis=1)
        occ0[sl] = occ1[sl].any(axis=1)

    _chunked(work, n0, max_chunk=64)
    occ = (occ0, occ1.any(axis=0), occ2.any(axis=0))
    if not occ0.any():
        return (slice(0, 1),) * 3, tuple(np.zeros(1, bool) for _ in range(3))
    box = []
    for o in occ:
        idx = np.flatnonzero(o)
        box.append(slice(int(idx[0]), int(idx[-1]) + 1))
    return tuple(box), tuple(o[b] for o, b in zip(occ, box))


def _make_full_level(volume) -> _Level:
    hu = np.asarray(volume.voxels)
    aff = np.asarray(volume.ijk_to_lps, dtype=np.float64)
    box, planes = _crop_box(hu)
    t = np.eye(4)
    t[:3, 3] = [b.start for b in box]
    src = hu[box]
    if hu.dtype.kind in "iu" and hu.dtype.itemsize <= 2:
        data = np.empty(src.shape, np.int16)  # HU + 1000 >= 0: mu / (mu_water / 1000), half the memory

        def conv(sl):
            np.clip(src[sl], -1000, 31767, out=data[sl], casting="unsafe")
            data[sl] += np.int16(1000)
    else:
        data = np.empty(src.shape, np.float32)

        def conv(sl):
            chunk = np.nan_to_num(np.asarray(src[sl], dtype=np.float32), nan=-1000.0)
            np.maximum(chunk + np.float32(1000.0), 0.0, out=data[sl])

    _chunked(conv, src.shape[0], max_chunk=64)
    return _Level(data, MU_WATER_PER_MM / 1000.0, aff @ t, planes, {})


def _make_level(volume, factors: tuple[int, int, int]) -> _Level:
    full = _level(volume, (1, 1, 1))
    if all(f == 1 for f in factors):
        return full
    data = full.data
    pad = [(0, (-n) % f) for n, f in zip(data.shape, factors)]
    n0, n1, n2 = ((n + p[1]) // f for n, p, f in zip(data.shape, pad, factors))
    f0, f1, f2 = factors
    out = np.empty((n0, n1, n2), np.float32)

    def work(sl):  # block means over chunks of output planes along axis 0
        block = data[sl.start * f0:sl.stop * f0].astype(np.float32)
        block = np.pad(block, [(0, (sl.stop - sl.start) * f0 - block.shape[0]), pad[1], pad[2]])
        out[sl] = block.reshape(-1, f0, n1, f1, n2, f2).mean(axis=(1, 3, 5), dtype=np.float32)

    _chunked(work, n0, min_chunk=1, max_chunk=max(1, 32 // f0))
    d = np.eye(4)
    d[:3, :3] = np.diag(factors)
    d[:3, 3] = [(f - 1) / 2.0 for f in factors]
    nz = out > 0
    planes = tuple(nz.any(axis=tuple(a for a in range(3) if a != ax)) for ax in range(3))
    return _Level(out, full.scale, full.ijk_to_lps @ d, planes, {})


def _level(volume, factors: tuple[int, int, int]) -> _Level:
    with _cache_lock:
        per_vol = _cache.setdefault(volume, {})
        lock = per_vol.setdefault(("lock", factors), threading.Lock())
    with lock:  # build each level once even when several threads ask
        lvl = per_vol.get(factors)
        if lvl is None:
            lvl = _make_full_level(volume) if all(f == 1 for f in factors) else _make_level(volume, factors)
            per_vol[factors] = lvl
    return lvl


def prepare(volume, *, step_mm: float | None = None) -> None:
    """Precompute (cache) the attenuation volume for ``step_mm`` (None: full resolution)."""
    _level(volume, _factors(volume, step_mm))


def clear_cache(volume=None) -> None:
    """Drop cached attenuation volumes (of one volume, or all)."""
    with _cache_lock:
        if volume is None:
            _cache.clear()
        else:
            _cache.pop(volume, None)


def _factors(volume, step_mm: float | None) -> tuple[int, int, int]:
    spacing = np.linalg.norm(np.asarray(volume.ijk_to_lps, float)[:3, :3], axis=0)
    if step_mm is None:
        return (1, 1, 1)
    out = []
    for sp in spacing:
        f = 1
        while f < 8 and 2 * f * sp <= step_mm * 1.05:
            f *= 2
        out.append(f)
    return tuple(out)


# ----------------------------------------------------------------------------- rendering
def _plane_stack(lvl: _Level, m: int) -> np.ndarray:
    """View (n_m, n_a, n_b) of the level with the main axis first (strided for m=1)."""
    if m == 0:
        return lvl.data
    if m == 1:
        return lvl.data.transpose(1, 0, 2)  # rows along axis 2 stay contiguous
    arr = lvl.transposed.get(2)
    if arr is None:
        arr = np.ascontiguousarray(lvl.data.transpose(2, 0, 1))
        lvl.transposed[2] = arr
    return arr


def _linear_weights(x: np.ndarray, n: int):
    """Indices and weights of linear interpolation at increasing ``x`` on ``0..n-1``, zero outside."""
    i0 = np.floor(x).astype(np.intp)
    f = (x - i0).astype(np.float32)
    w0 = (1.0 - f) * ((i0 >= 0) & (i0 < n))
    w1 = f * ((i0 >= -1) & (i0 < n - 1))
    i1 = i0 + 1
    np.maximum(i0, 0, out=i0)
    np.minimum(i0, n - 1, out=i0)
    np.maximum(i1, 0, out=i1)
    np.minimum(i1, n - 1, out=i1)
    return i0, i1, w0.astype(np.float32, copy=False), w1.astype(np.float32, copy=False)


def _resample_plane(plane: np.ndarray, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """Bilinear samples ``plane(xa[i], xb[j])`` (float32, zero outside), separably.

    For the scale-and-shift maps of :func:`_integrate` this is ~5x faster than
    :func:`scipy.ndimage.affine_transform`: whole rows are gathered, then columns.
    """
    n_a, n_b = plane.shape
    j0, j1, v0, v1 = _linear_weights(xb, n_b)
    lo, hi = int(j0[0]), int(j1[-1]) + 1  # x increases with the index
    cols = plane[:, lo:hi]
    i0, i1, w0, w1 = _linear_weights(xa, n_a)
    rows = cols[i0] * w0[:, None]
    rows += cols[i1] * w1[:, None]  # (len(xa), hi - lo) float32
    out = rows[:, j0 - lo] * v0
    out += rows[:, j1 - lo] * v1
    return out


def _integrate(lvl: _Level, view: CArmView, *, threads: int | None = None) -> np.ndarray:
    """Line integrals (rows, cols) float32 through ``lvl`` for ``view``."""
    aff = lvl.ijk_to_lps
    inv = np.linalg.inv(aff)
    r3, t3 = inv[:3, :3], inv[:3, 3]
    s = r3 @ view.source_lps + t3
    pts = pixel_rays(view) @ r3.T + t3  # detector pixel centres, index space
    rays = pts - s
    central = r3 @ view.detector_lps
    m = int(np.argmax(np.abs(central)))
    a, b = [ax for ax in range(3) if ax != m]
    rows, cols = view.shape
    out_shape = (rows, cols)
    rm = rays[..., m]
    sign = np.sign(central[m])
    if np.any(rm * sign <= 1e-9):
        raise ValueError("DRR: a ray runs parallel to the volume planes (field of view too wide)")

    # intermediate grid on the plane through the isocentre (index units of axes a, b)
    c_ref = float((r3 @ view.isocenter_lps + t3)[m])
    lam = (c_ref - s[m]) / rm
    ua = s[a] + lam * rays[..., a]
    ub = s[b] + lam * rays[..., b]
    stack = _plane_stack(lvl, m)
    n_m, n_a, n_b = stack.shape
    planes = np.arange(n_m)
    planes = planes[((planes - s[m]) * sign > 1e-6) & lvl.nonzero_planes[m]]
    if planes.size == 0:
        return np.zeros(out_shape, np.float32)
    lam_c = (c_ref - s[m]) / (planes - s[m])  # scale of plane c onto the reference plane
    lo_a = s[a] + lam_c.min() * (-1.0 - s[a]), s[a] + lam_c.max() * (-1.0 - s[a])
    hi_a = s[a] + lam_c.min() * (n_a - s[a]), s[a] + lam_c.max() * (n_a - s[a])
    lo_b = s[b] + lam_c.min() * (-1.0 - s[b]), s[b] + lam_c.max() * (-1.0 - s[b])
    hi_b = s[b] + lam_c.min() * (n_b - s[b]), s[b] + lam_c.max() * (n_b - s[b])
    a0 = max(ua.min() - 1.0, min(lo_a))
    a1 = min(ua.max() + 1.0, max(hi_a))
    b0 = max(ub.min() - 1.0, min(lo_b))
    b1 = min(ub.max() + 1.0, max(hi_b))
    if a1 <= a0 or b1 <= b0:
        return np.zeros(out_shape, np.float32)
    h = 1.0  # grid step in voxels of the level (the level is chosen to match the pixels)
    na = int(np.ceil((a1 - a0) / h)) + 1
    nb = int(np.ceil((b1 - b0) / h)) + 1

    def work(chunk: np.ndarray) -> np.ndarray:
        acc = np.zeros((na, nb), np.float32)
        cs = chunk[:, 0].astype(np.intp)
        lc = chunk[:, 1]
        # grid index n -> in-plane index x = s + (u0 + h n - s) / lc, clipped to the plane
        sc = h / lc
        off_a = s[a] + (a0 - s[a]) / lc
        off_b = s[b] + (b0 - s[b]) / lc
        ia0 = np.maximum(0, np.floor((-1.0 - off_a) / sc)).astype(int)
        ia1 = np.minimum(na, np.ceil((n_a - off_a) / sc) + 1).astype(int)
        ib0 = np.maximum(0, np.floor((-1.0 - off_b) / sc)).astype(int)
        ib1 = np.minimum(nb, np.ceil((n_b - off_b) / sc) + 1).astype(int)
        for k in range(len(cs)):
            if ia1[k] <= ia0[k] or ib1[k] <= ib0[k]:
                continue
            xa = off_a[k] + sc[k] * np.arange(ia0[k], ia1[k])
            xb = off_b[k] + sc[k] * np.arange(ib0[k], ib1[k])
            acc[ia0[k]:ia1[k], ib0[k]:ib1[k]] += _resample_plane(stack[cs[k]], xa, xb)
        return acc

    jobs = np.stack([planes, lam_c], axis=1)
    work_size = len(jobs) * na * nb  # samples; small renders are faster on one thread
    n_threads = max(1, min(threads or os.cpu_count() or 1, 8, len(jobs) // 8 or 1, work_size // 500_000 or 1))
    if n_threads == 1:
        grid = work(jobs)
    else:
        parts = list(_pool().map(work, [jobs[i::n_threads] for i in range(n_threads)]))
        grid = parts[0]
        for p in parts[1:]:
            grid += p

    coords = np.stack([(ua - a0) / h, (ub - b0) / h])
    line = ndimage.map_coordinates(grid, coords.reshape(2, -1), order=1, mode="grid-constant", cval=0.0,
                                   prefilter=False, output=np.float32).reshape(out_shape)
    # path length (mm) per plane step along each ray
    step = np.linalg.norm(rays @ aff[:3, :3].T, axis=-1) / np.abs(rm)
    line *= (step * lvl.scale).astype(np.float32)
    return line


def needle_chord_lengths_mm(view: CArmView, entry_lps, target_lps, diameter_mm: float, *,
                            supersample: int | None = None) -> np.ndarray:
    """Length (mm) of each pixel's ray inside the needle cylinder (rows, cols), float32.

    The needle is the solid cylinder of ``diameter_mm`` from ``entry_lps`` to ``target_lps``.
    Only the pixels of its projected bounding box are computed.  ``supersample`` rays per
    pixel side are averaged (default 3 when the needle is under 3 pixels wide, so that a
    thin needle or a bull's-eye dot never falls between pixel centres; else 1).
    """
    rows, cols = view.shape
    out = np.zeros((rows, cols), np.float32)
    a = np.asarray(entry_lps, dtype=np.float64)
    b = np.asarray(target_lps, dtype=np.float64)
    length = float(np.linalg.norm(b - a))
    rad = 0.5 * float(diameter_mm)
    if length == 0 or rad <= 0:
        return out
    n = (b - a) / length
    # projected bounding box of the cylinder
    helper = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(n, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(n, e1)
    ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = rad * (np.cos(ang)[:, None] * e1 + np.sin(ang)[:, None] * e2)
    uv = project_points(view, np.concatenate([a + ring, b + ring]))
    if not np.all(np.isfinite(uv)):
        return out
    c0 = max(0, int(np.floor(uv[:, 0].min())) - 1)
    c1 = min(cols, int(np.ceil(uv[:, 0].max())) + 2)
    r0 = max(0, int(np.floor(uv[:, 1].min())) - 1)
    r1 = min(rows, int(np.ceil(uv[:, 1].max())) + 2)
    if c1 <= c0 or r1 <= r0:
        return out
    if supersample is None:
        width_px = min(np.ptp(uv[:16], axis=0).max(), np.ptp(uv[16:], axis=0).max())
        supersample = 3 if width_px < 3 else 1
    rr, cc = np.meshgrid(np.arange(r0, r1, dtype=float), np.arange(c0, c1, dtype=float), indexing="ij")
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    acc = np.zeros(rr.shape)
    for dr in offsets:
        for dc in offsets:
            acc += _cylinder_chords(view, cc + dc, rr + dr, a, n, length, rad)
    out[r0:r1, c0:c1] = acc / supersample ** 2
    return out


def _cylinder_chords(view: CArmView, cols, rows, a, n, length: float, rad: float) -> np.ndarray:
    """Chord length (mm) of the rays through detector points (cols, rows) in a finite cylinder."""
    src = view.source_lps
    w = pixel_rays(view, cols, rows=rows) - src
    w /= np.linalg.norm(w, axis=-1, keepdims=True)
    q0 = src - a
    q0n = q0 @ n
    wn = w @ n
    q0p = q0 - q0n * n
    wp = w - wn[..., None] * n
    qa = np.sum(wp * wp, axis=-1)
    qb = 2.0 * (wp @ q0p)
    qc = float(q0p @ q0p) - rad * rad
    with np.errstate(divide="ignore", invalid="ignore"):
        disc = qb * qb - 4 * qa * qc
        sq = np.sqrt(np.maximum(disc, 0.0))
        t_in = np.where(qa > 1e-12, (-qb - sq) / (2 * qa), np.where(qc < 0, -np.inf, np.inf))
        t_out = np.where(qa > 1e-12, (-qb + sq) / (2 * qa), np.where(qc < 0, np.inf, -np.inf))
        t_out = np.where((qa > 1e-12) & (disc < 0), -np.inf, t_out)
        # slab between the end caps: 0 <= q0n + t * wn <= length
        s0 = (0.0 - q0n) / wn
        s1 = (length - q0n) / wn
        inside = (q0n >= 0) & (q0n <= length)  # a ray parallel to the caps: all or nothing
        slab_in = np.where(np.abs(wn) > 1e-12, np.minimum(s0, s1), np.where(inside, -np.inf, np.inf))
        slab_out = np.where(np.abs(wn) > 1e-12, np.maximum(s0, s1), np.where(inside, np.inf, -np.inf))
        chord = np.minimum(t_out, slab_out) - np.maximum(np.maximum(t_in, slab_in), 0.0)
    return np.clip(np.nan_to_num(chord, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)


def display_window(line: np.ndarray, *, raw: np.ndarray | None = None) -> tuple[float, float]:
    """ABC-like window: percentiles of the (processed) ``line`` over the patient in the centre.

    Like automatic brightness control, only the central field counts, and of it only
    pixels whose ray crosses the patient (``raw`` line integral at least half the
    central 95th percentile) so that air around the body burns out white.
    """
    rows, cols = line.shape
    rr, cc = np.ogrid[:rows, :cols]
    centre = ((rr - (rows - 1) / 2) ** 2 + (cc - (cols - 1) / 2) ** 2) <= (0.35 * min(rows, cols)) ** 2
    base = line if raw is None else raw
    cut = 0.5 * np.percentile(base[centre], 95.0)
    sel = centre & (base >= cut)
    vals = line[sel] if sel.sum() > 16 else line[centre]
    lo, hi = np.percentile(vals, [1.0, 99.7])
    if hi - lo < 1e-3:
        hi = lo + 1.0
    return float(lo), float(hi)


def harmonise(line: np.ndarray, *, sigma_px: float, detail: float = 2.5) -> np.ndarray:
    """Fluoroscopy-style dynamic-range processing: boost detail finer than ``sigma_px``.

    ``line + detail * (line - gaussian(line, sigma_px))``, the large-kernel unsharp mask
    of radiographic image processing: soft-tissue thickness gradients are flattened
    relative to bone edges such as the pedicle cortex.
    """
    line = np.asarray(line, dtype=np.float32)
    if not detail:
        return line.copy()
    low = ndimage.gaussian_filter(line, sigma_px, mode="nearest")
    return line + np.float32(detail) * (line - low)


def fluoro_display(line: np.ndarray, *, window: tuple[float, float] | None = None,
                   gamma: float = 0.75) -> np.ndarray:
    """uint8 image of (processed) line integrals like a fluoroscopy monitor: dense = dark.

    Linear in ``-line`` (the log of the detected intensity) between ``window`` (default
    :func:`display_window`) with a mild ``gamma`` on the darkness, mapped to grey levels
    235 (``lo`` and below) .. 15 (``hi`` and beyond: bone edges, metal).
    """
    line = np.asarray(line, dtype=np.float32)
    lo, hi = window if window is not None else display_window(line)
    dark = np.clip((line - lo) / (hi - lo), 0.0, 1.0) ** np.float32(gamma)
    return np.round(235.0 - 220.0 * dark).astype(np.uint8)


#: Scale of the detail processing (mm at the detector).
_HARMONISE_SIGMA_MM = 25.0


@dataclass(frozen=True, eq=False)
class DRR:
    """A rendered view.

    Attributes
    ----------
    image : (rows, cols) float32
        Line integrals of attenuation (``sum mu ds``, dimensionless), needles included.
    display : (rows, cols) uint8
        Fluoroscopy-like display (bone and needles dark).
    view : CArmView
        The view (with the rendered detector matrix).
    window : (float, float)
        Processed line-integral values mapped to light and dark (:func:`fluoro_display`).
    step_mm : float
        Sampling step used (voxel size of the attenuation volume).
    needles : tuple
        ``(entry_lps, target_lps, diameter_mm)`` drawn in.
    """

    image: np.ndarray
    display: np.ndarray
    view: CArmView
    window: tuple[float, float]
    step_mm: float
    needles: tuple = ()

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape  # type: ignore[return-value]

    def project(self, points_lps) -> np.ndarray:
        """Pixel coordinates ``(..., 2)`` (col, row) of LPS points in this image."""
        return project_points(self.view, points_lps)


def render_drr(volume, view: CArmView, *, size: int | None = None, step_mm: float | None = None,
               needles=None, threads: int | None = None, detail: float = 2.5) -> DRR:
    """Render the DRR of ``volume`` (HU) for ``view``.

    Parameters
    ----------
    volume : Volume
        CT in HU (anything with ``voxels`` and ``ijk_to_lps``).
    view : CArmView
    size : int, optional
        Detector matrix (pixels per side); default the view's.
    step_mm : float, optional
        Sampling distance: the CT is block-averaged by powers of two up to this voxel size
        (cached per volume).  Default: full resolution.  Use ~3 mm for interactive previews.
    needles : sequence of (entry_lps, target_lps, diameter_mm), optional
        Drawn as radio-opaque steel cylinders.
    threads : int, optional
        Worker threads (default: all cores, at most 8).
    detail : float
        Amount of fluoroscopy-style detail processing of the display image
        (:func:`harmonise`; 0 shows the plain log image).

    Returns
    -------
    DRR
    """
    view = view.with_pixels(size)
    factors = _factors(volume, step_mm)
    lvl = _level(volume, factors)
    line = _integrate(lvl, view, threads=threads)
    proc = harmonise(line, sigma_px=_HARMONISE_SIGMA_MM / view.geometry.pixel_mm, detail=detail)
    win = display_window(proc, raw=line)
    drawn = []
    for nd in needles or ():
        entry, target, diam = nd
        metal = np.float32(MU_NEEDLE_PER_MM) * needle_chord_lengths_mm(view, entry, target, diam)
        line += metal
        proc += metal
        drawn.append((np.asarray(entry, float), np.asarray(target, float), float(diam)))
    disp = fluoro_display(proc, window=win)
    step = float(np.min(np.linalg.norm(lvl.ijk_to_lps[:3, :3], axis=0)))
    return DRR(line, disp, view, win, step, tuple(drawn))


def render_preview(volume, view: CArmView, *, size: int = 128, step_mm: float = 3.0, needles=None) -> DRR:
    """A fast low-resolution DRR for following the mouse (defaults: 128 px, ~3 mm voxels)."""
    return render_drr(volume, view, size=size, step_mm=step_mm, needles=needles)
