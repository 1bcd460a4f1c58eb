"""Vertebral body heights (15/50/85 % of the AP depth), Genant grade, posterior wall.

Heights follow TotalSegmentator's spine report: in the body's midsagittal plane the AP
line through the body centre runs from the posterior to the anterior wall; at 15 %
(posterior), 50 % (middle) and 85 % (anterior) of it the body is measured along the local
spine axis (the direction between the neighbouring vertebrae).  Masks are interpolated
trilinearly and heights are measured edge to edge (the physical height).  The report
counts differently: its figures are multiples of half a voxel and read as the span between
the first and the last point inside the body when the line is sampled every half voxel
from the body's centre (8 of its 15 figures on ts-abdomen-3mm are reproduced exactly so),
on average half a voxel shorter than the edge-to-edge extent (0.5 mm on 1 mm voxels,
1.5 mm on 3 mm voxels).  ``sample_step_mm`` gives that count, for comparison with the
report; it is not used for grading (its quantisation would move the height ratio by up
to 6 % on 3 mm voxels).

Keeping the most deformed plane makes the grade follow the body's outline wherever it is
ragged (a body partly left unlabelled reads as a collapse).  :func:`height_reliability`
measures the heights again in planes every 1 mm across the body and says why they cannot be
graded when the planes disagree or the label lies in pieces; the vertebra then gets no grade
and a flag starting with ``UNRELIABLE_FLAG``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from needleplan.segmentation._frame import LocalGrid, true_run

__all__ = ["body_heights", "genant_grade", "height_reliability", "posterior_wall_intact", "HEIGHT_POSITIONS",
           "UNRELIABLE_FLAG"]

#: A gap in the posterior wall larger than this (mm^2) is a defect.
GAP_MM2 = 25.0
#: Largest normal basivertebral opening at the midline (mm^2).
BASIVERTEBRAL_MM2 = 30.0
#: Fraction of the AP depth from the posterior wall at which each height is measured.
HEIGHT_POSITIONS = {"posterior": 0.15, "middle": 0.50, "anterior": 0.85}
#: Largest spread (mm) of a height across the body's central parasagittal planes, and largest
#: difference of the graded plane's height from their median, on a trustworthy outline (at
#: least a voxel plus 1 mm: ts-abdomen-3mm's L2 spreads by 3.0 mm on its 3 mm voxels).  Phantom bodies stay within 0.8 mm; the ragged outlines of partly
#: labelled bodies (lidc0314 T1, T4, T7, T8, T10, T11) spread or differ by 2.9-6.1 mm.
SPREAD_MM = 2.0
#: Largest fraction of the height lines that meet a stray piece of the label beyond the endplate
#: (separated from the body by an unlabelled gap): a body labelled in pieces.
STRAY_FRACTION = 0.15
#: A posterior wall column brighter than this (HU) is bone, whatever the body's marrow reads.
WALL_GAP_MAX_HU = 150.0
#: Start of the flag set on a vertebra whose heights are not graded.
UNRELIABLE_FLAG = "heights unreliable"


def _run_length(values: np.ndarray, k0: int, step: float) -> float:
    inside = values >= 0.5
    if not inside[k0]:
        return 0.0
    a, b = true_run(inside, k0)
    # sub-step edges from the linear profile
    def edge(i_in, i_out):
        v_in, v_out = values[i_in], values[i_out]
        return (v_in - 0.5) / max(v_in - v_out, 1e-6)
    ext = 0.0
    ext += edge(a, a - 1) if a > 0 else 0.5
    ext += edge(b, b + 1) if b < len(values) - 1 else 0.5
    return float((b - a + ext) * step)


def _heights_in_plane(body_f, grid, x_mm, z0_mm, y_post_mm, y_ant_mm, *,
                      sample_step_mm: float | None = None) -> dict[str, float]:
    h, lo = grid.step_mm, grid.lo_mm
    if sample_step_mm is None:
        step = 0.25
        zs = np.arange(lo[2], lo[2] + h * grid.shape[2], step)
    else:
        # the report's walk: samples at z0 + n * step from the centre, within the grid
        step = float(sample_step_mm)
        z_top = lo[2] + h * (grid.shape[2] - 1)
        zs = z0_mm + step * np.arange(np.floor((lo[2] - z0_mm) / step), np.ceil((z_top - z0_mm) / step) + 1)
    k0 = int(np.argmin(np.abs(zs - z0_mm)))
    out = {}
    for name, f in HEIGHT_POSITIONS.items():
        y = y_post_mm + f * (y_ant_mm - y_post_mm)
        pts = np.column_stack([np.full_like(zs, x_mm), np.full_like(zs, y), zs])
        v = ndi.map_coordinates(body_f, ((pts - lo) / h).T, order=1, mode="constant", prefilter=False)
        k = k0
        if v[k] < 0.5:
            cand = np.nonzero(v >= 0.5)[0]
            if len(cand) == 0:
                out[name] = 0.0
                continue
            k = int(cand[np.argmin(np.abs(cand - k0))])
        if sample_step_mm is None:
            out[name] = _run_length(v, k, step)
        else:
            a, b = true_run(v >= 0.5, k)
            out[name] = float((b - a) * step)
    return out


def body_heights(body_f: np.ndarray, grid: LocalGrid, center_local_mm, y_post_mm: float,
                 y_ant_mm: float, *, x_range_mm: tuple[float, float] | None = None,
                 sample_step_mm: float | None = None) -> dict[str, float]:
    """Heights (mm) at 15/50/85 % of the AP depth from the posterior wall, along local z.

    As TotalSegmentator's spine report: the AP line is taken 3 mm inside each wall (their
    3 mm erosion of the body before finding its ends), parasagittal planes are tried every
    5 mm over the central half of the body's width (``x_range_mm``), and the plane whose
    three heights (edge to edge) differ most is kept: the most deformed part of the body
    decides.  With ``sample_step_mm`` (the report's half voxel) the heights in that plane
    are the spans between the first and last samples inside the body, taken every
    ``sample_step_mm`` from the centre (see the module notes); otherwise edge to edge.
    """
    inset = min(3.0, 0.1 * (y_ant_mm - y_post_mm))
    yp, ya = y_post_mm + inset, y_ant_mm - inset
    xs = [float(center_local_mm[0])]
    if x_range_mm is not None:
        a, b = x_range_mm
        xs = list(np.arange(a, b + 1e-9, 5.0)) or xs
    best, spread, x_best = None, -1.0, float(center_local_mm[0])
    planes = [_heights_in_plane(body_f, grid, x, center_local_mm[2], yp, ya) for x in xs]
    typical = np.median([v for hs in planes for v in hs.values()]) if planes else 0.0
    for x, hs in zip(xs, planes):
        # a plane grazing the body's side gives stray short heights: skip it
        if all(v > 0.6 * typical for v in hs.values()):
            d = max(hs.values()) - min(hs.values())
            if d > spread:
                best, spread, x_best = hs, d, x
    if best is None or sample_step_mm is not None:
        best = _heights_in_plane(body_f, grid, x_best, center_local_mm[2], yp, ya, sample_step_mm=sample_step_mm)
    return best


def _plane_heights(body_f, grid, center_local_mm, yp, ya, x_range_mm, step_mm=1.0):
    """Heights (rows: planes every ``step_mm`` over ``x_range_mm``; columns: HEIGHT_POSITIONS)
    and, per plane and position, the length (mm) of label met within 6 mm beyond the run's ends."""
    h, lo = grid.step_mm, grid.lo_mm
    a, b = x_range_mm
    xs = np.arange(a, b + 1e-9, step_mm) if b > a else np.array([float(center_local_mm[0])])
    zs = np.arange(lo[2], lo[2] + h * grid.shape[2], 0.25)
    k0 = int(np.argmin(np.abs(zs - center_local_mm[2])))
    reach = int(round(6.0 / 0.25))
    heights = np.zeros((len(xs), len(HEIGHT_POSITIONS)))
    stray = np.zeros_like(heights)
    for i, x in enumerate(xs):
        for j, f in enumerate(HEIGHT_POSITIONS.values()):
            y = yp + f * (ya - yp)
            pts = np.column_stack([np.full_like(zs, x), np.full_like(zs, y), zs])
            v = ndi.map_coordinates(body_f, ((pts - lo) / h).T, order=1, mode="constant", prefilter=False)
            inside = v >= 0.5
            if not inside[k0]:
                continue
            heights[i, j] = _run_length(v, k0, 0.25)
            a_, b_ = true_run(inside, k0)
            up, dn = inside[b_ + 1:b_ + 1 + reach], inside[max(a_ - reach, 0):a_]
            stray[i, j] = 0.25 * ((np.nonzero(up)[0].max() + 1 if up.any() else 0)
                                  + (len(dn) - np.nonzero(dn)[0].min() if dn.any() else 0))
    return heights, stray


def height_reliability(body_f: np.ndarray, grid: LocalGrid, center_local_mm, y_post_mm: float,
                       y_ant_mm: float, heights: dict[str, float], *, x_range_mm: tuple[float, float],
                       voxel_mm: float = 1.0) -> str | None:
    """Why the body ``heights`` (from :func:`body_heights`) cannot be graded, or None.

    The heights are measured again in parasagittal planes every 1 mm over ``x_range_mm``
    (the central half of the body).  On a body outline that follows the endplates they agree
    from plane to plane; a ragged outline (a body partly left unlabelled, a notch cut into an
    endplate) makes them (a) spread by more than ``SPREAD_MM`` (inter-quartile range) at one of
    the three positions, or (b) the plane kept by :func:`body_heights` (the most deformed)
    differ from their median by more than that: one plane's outline would decide the grade;
    or (c) on more than ``STRAY_FRACTION`` of the lines, a piece of the label lies beyond the
    endplate, cut off from the body by an unlabelled gap.  The tolerance is at least
    ``voxel_mm`` + 1 mm (``voxel_mm``: the CT's largest voxel size; on 3 mm voxels the outline
    steps by 3 mm).
    A real wedge or crush fracture involves the whole width of the body and passes.
    """
    if not heights or min(heights.values()) <= 0:
        return None
    inset = min(3.0, 0.1 * (y_ant_mm - y_post_mm))
    yp, ya = y_post_mm + inset, y_ant_mm - inset
    planes, stray = _plane_heights(body_f, grid, center_local_mm, yp, ya, x_range_mm)
    typical = np.median(planes[planes > 0]) if (planes > 0).any() else 0.0
    keep = (planes > 0.6 * typical).all(axis=1)  # planes grazing the body's side: skip
    if keep.sum() < 2:
        return None
    planes, stray = planes[keep], stray[keep]
    tol = max(SPREAD_MM, float(voxel_mm) + 1.0)
    q1, med, q3 = np.percentile(planes, [25, 50, 75], axis=0)
    names = list(HEIGHT_POSITIONS)
    iqr = q3 - q1
    j = int(np.argmax(iqr))
    if iqr[j] > tol:
        return (f"the {names[j]} height varies by {iqr[j]:.1f} mm across the body's width "
                "(ragged body outline)")
    dev = np.array([heights[k] for k in names]) - med
    j = int(np.argmax(np.abs(dev)))
    if abs(dev[j]) > tol:
        return (f"the {names[j]} height ({heights[names[j]]:.1f} mm) of the most deformed plane differs by "
                f"{abs(dev[j]):.1f} mm from the body's typical {med[j]:.1f} mm (ragged body outline)")
    frac = float((stray > 1.0).mean())
    if frac > STRAY_FRACTION:
        return (f"pieces of the body's label lie beyond its endplates on {100 * frac:.0f}% of the height "
                "lines (body partly unlabelled)")
    return None


def genant_grade(heights: dict[str, float]) -> tuple[float | None, int | None]:
    """Height ratio min/max and the Genant-style grade (0 none, 1 mild, 2 moderate, 3 severe)."""
    vals = [v for v in heights.values() if v and v > 0]
    if len(vals) < 2:
        return None, None
    ratio = min(vals) / max(vals)
    loss = 1.0 - ratio
    grade = 0 if loss < 0.20 else 1 if loss < 0.25 else 2 if loss <= 0.40 else 3
    return float(ratio), int(grade)


def posterior_wall_intact(body_local: np.ndarray, hu_local: np.ndarray, grid: LocalGrid,
                          center_x_mm: float, half_width_mm: float) -> tuple[bool | None, float]:
    """Look for a cortical gap in the posterior body wall facing the canal.

    For every (x, z) column of the wall behind the canal, the brightest HU within 3 mm of
    the body's posterior surface is taken; columns darker than the body's cancellous bone are a gap.
    A small gap wholly inside the midline zone of the basivertebral vein (central half of
    the height, 10 mm wide) is normal and ignored; any other gap over 25 mm^2, or gaps over
    15 % of the wall, make the wall "not intact".  Returns (intact or None when not measurable, gap fraction).
    """
    h, lo = grid.step_mm, grid.lo_mm
    x = lo[0] + h * np.arange(grid.shape[0])
    zmask = body_local.any(axis=(0, 1))
    zi = np.nonzero(zmask)[0]
    if len(zi) < 4:
        return None, 0.0
    z0, z1 = zi.min(), zi.max()
    zin = np.arange(z0 + int(0.15 * (z1 - z0)), z1 - int(0.15 * (z1 - z0)) + 1)
    xin = np.nonzero(np.abs(x - center_x_mm) <= max(half_width_mm * 0.8, 4.0))[0]
    if len(zin) < 2 or len(xin) < 2:
        return None, 0.0
    sub = body_local[np.ix_(xin, np.arange(grid.shape[1]), zin)]
    hu = hu_local[np.ix_(xin, np.arange(grid.shape[1]), zin)]
    has = sub.any(axis=1)
    first = np.argmax(sub, axis=1)  # most posterior body voxel per (x, z) column
    band = max(1, int(round(3.0 / h)))
    yy = np.arange(grid.shape[1])[None, :, None]
    win = (yy >= first[:, None, :] - 1) & (yy <= first[:, None, :] + band)
    wall = np.where(win, hu, -1e4).max(axis=1)
    inner = np.where(sub, hu, np.nan)
    cancellous = float(np.nanmedian(inner)) if np.isfinite(inner).any() else 150.0
    # a lytic gap replaces the cortex by soft tissue: darker than the body's own cancellous
    # bone (thin or osteoporotic cortices at coarse resolution stay above that), and never
    # brighter than soft tissue blurred with bone: in dense young bone (cancellous median
    # 270 HU, lidc T11) the thin posterior cortex at 1 mm reads 150-300 HU and is no gap
    thr = min(max(cancellous, 60.0), WALL_GAP_MAX_HU)
    gap = has & (wall < thr)
    zc = (zin - z0) / max(z1 - z0, 1)
    basi = (np.abs(x[xin] - center_x_mm) <= 5.0)[:, None] & (np.abs(zc - 0.5) <= 0.25)[None, :]
    valid = has
    if valid.sum() < 4:
        return None, 0.0
    lab, n = ndi.label(gap)
    sizes = np.bincount(lab.ravel(), minlength=n + 1) * h * h
    sizes[0] = 0.0
    # the basivertebral vein's opening: a small gap wholly inside the midline zone is normal
    for k in range(1, n + 1):
        comp = lab == k
        if sizes[k] < BASIVERTEBRAL_MM2 and not (comp & ~basi).any():
            sizes[k] = 0.0
            gap &= ~comp
    frac = float(gap.sum() / valid.sum())
    return bool(frac < 0.15 and sizes.max() < GAP_MM2), frac
