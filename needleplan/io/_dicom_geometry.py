"""Geometry of a DICOM slice stack: clean the slice list, sort, check spacing, build the affine.

The affine convention (see :class:`needleplan.io.volume.Volume`): column ``i`` steps along
``IOP[0:3]`` by ``PixelSpacing[1]``, row ``j`` along ``IOP[3:6]`` by ``PixelSpacing[0]``, slice
``k`` along the slice normal ``IOP[0:3] x IOP[3:6]`` by the distance between positions; the
origin is the centre of the first voxel of the slice with the lowest position along the
normal.  Slices are never ordered by InstanceNumber or file name.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from needleplan.errors import DicomSeriesError, GeometryError
from needleplan.io._dicom_scan import SliceHeader
from needleplan.io._warnings import DefectLog

__all__ = ["StackGeometry", "plan_stack"]

#: Largest number of consecutive missing slices that is filled by interpolation.
MAX_GAP_SLICES = 3
#: Largest gantry tilt (degrees) that is corrected by shifting the slices.
MAX_TILT_DEG = 30.0


@dataclass
class StackGeometry:
    """Slices in geometric order and where each goes in the output volume.

    Attributes
    ----------
    headers : list of SliceHeader
        Slices to read, sorted along the normal.
    k_index : (N,) ndarray of int
        Output slice index of each header (gaps leave indices without a header).
    n_slices : int
        Output slice count (including interpolated gap slices).
    ijk_to_lps : (4, 4) ndarray
    shear_ij : (2,) ndarray
        In-plane shift in voxels (i, j) per slice caused by gantry tilt; zeros if none.
    tilt_deg : float
    """

    headers: list[SliceHeader]
    k_index: np.ndarray
    n_slices: int
    ijk_to_lps: np.ndarray
    shear_ij: np.ndarray
    tilt_deg: float


def _name(path: str) -> str:
    return f"'{path}'"


def _clean(headers: list[SliceHeader], log: DefectLog, where: str) -> list[SliceHeader]:
    """Drop localizers, slices of another orientation or size, and duplicates."""
    hs = list(headers)
    loc = [h for h in hs if h.is_localizer]
    if loc and len(loc) < len(hs):
        log.fixable(f"{where}: dropped {len(loc)} localizer image(s) mixed into the series")
        hs = [h for h in hs if not h.is_localizer]

    missing = [h for h in hs if h.ipp is None or h.iop is None]
    if missing:
        what = "ImagePositionPatient" if missing[0].ipp is None else "ImageOrientationPatient"
        raise GeometryError(f"{where}: {len(missing)} of {len(hs)} slice(s) lack {what} "
                            f"(e.g. {_name(missing[0].path)}); cannot place the slices in space",
                            path=log.path, series_uid=log.series_uid)

    # group by orientation: cosines within 1e-3 of a group's first member (no rounding edges)
    reps: list[np.ndarray] = []
    group = []
    for h in hs:
        v = np.asarray(h.iop, dtype=np.float64)
        for g, rep in enumerate(reps):
            if np.abs(v - rep).max() < 1e-3:
                group.append(g)
                break
        else:
            reps.append(v)
            group.append(len(reps) - 1)
    if len(reps) > 1:
        counts = Counter(group)
        main, count = counts.most_common(1)[0]
        odd = [h for h, g in zip(hs, group) if g != main]
        if count <= len(hs) // 2:
            raise GeometryError(f"{where}: slices have {len(reps)} different orientations; "
                                "cannot build one volume", path=log.path,
                                series_uid=log.series_uid)
        log.fixable(f"{where}: dropped {len(odd)} slice(s) of another orientation "
                    f"(e.g. {_name(odd[0].path)}, likely localizers)")
        hs = [h for h, g in zip(hs, group) if g == main]

    sizes = Counter((h.rows, h.cols) for h in hs)
    if len(sizes) > 1:
        (rows, cols), count = sizes.most_common(1)[0]
        odd = [h for h in hs if (h.rows, h.cols) != (rows, cols)]
        if count <= len(hs) // 2:
            raise DicomSeriesError(f"{where}: slices have {len(sizes)} different image sizes; "
                                   "cannot build one volume", path=log.path,
                                   series_uid=log.series_uid)
        log.fixable(f"{where}: dropped {len(odd)} slice(s) of size {odd[0].cols}x{odd[0].rows} "
                    f"(the series is {cols}x{rows}), e.g. {_name(odd[0].path)}")
        hs = [h for h in hs if (h.rows, h.cols) == (rows, cols)]
    return hs


def _orientation(h: SliceHeader, where: str, log: DefectLog):
    iop = np.asarray(h.iop, dtype=np.float64)
    row_dir, col_dir = iop[:3], iop[3:]
    nr, nc = np.linalg.norm(row_dir), np.linalg.norm(col_dir)
    if nr < 1e-6 or nc < 1e-6:
        raise GeometryError(f"{where}: ImageOrientationPatient {list(iop)} has a zero vector",
                            path=log.path, series_uid=log.series_uid)
    row_dir, col_dir = row_dir / nr, col_dir / nc
    dot = float(row_dir @ col_dir)
    if abs(dot) > 1e-3 or abs(nr - 1) > 1e-2 or abs(nc - 1) > 1e-2:
        angle = np.degrees(np.arccos(np.clip(dot, -1, 1)))
        raise GeometryError(f"{where}: ImageOrientationPatient is not orthonormal (row and "
                            f"column axes {angle:.2f} deg apart); cannot build a volume",
                            path=log.path, series_uid=log.series_uid)
    # re-orthogonalise the tiny residue so the affine is exactly a rotation times spacing
    col_dir = col_dir - (col_dir @ row_dir) * row_dir
    col_dir /= np.linalg.norm(col_dir)
    normal = np.cross(row_dir, col_dir)
    return row_dir, col_dir, normal


def plan_stack(headers: list[SliceHeader], *, log: DefectLog, where: str) -> StackGeometry:
    """Check a series' slices and compute the output geometry.

    Parameters
    ----------
    headers : list of SliceHeader
        All files of one series.
    log : DefectLog
        Receives fixable defects (warn or raise in strict mode).
    where : str
        Series description for messages (names the path).

    Returns
    -------
    StackGeometry

    Raises
    ------
    GeometryError, DicomSeriesError
    """
    hs = _clean(headers, log, where)
    row_dir, col_dir, normal = _orientation(hs[0], where, log)

    ps = hs[0].pixel_spacing
    if ps is None:
        raise GeometryError(f"{where}: PixelSpacing is missing", path=log.path,
                            series_uid=log.series_uid)
    if not (np.isfinite(ps).all() and min(ps) > 0):
        raise GeometryError(f"{where}: PixelSpacing {list(ps)} is not positive; cannot measure "
                            "in mm", path=log.path, series_uid=log.series_uid)
    if any(h.pixel_spacing is None or not np.allclose(h.pixel_spacing, ps, rtol=1e-4, atol=1e-4)
           for h in hs):
        raise GeometryError(f"{where}: PixelSpacing differs between slices", path=log.path,
                            series_uid=log.series_uid)
    row_sp, col_sp = float(ps[0]), float(ps[1])

    ipp = np.array([h.ipp for h in hs], dtype=np.float64)
    if not np.isfinite(ipp).all():
        raise GeometryError(f"{where}: ImagePositionPatient is not a number in some slices",
                            path=log.path, series_uid=log.series_uid)
    dist = ipp @ normal
    order = np.argsort(dist, kind="stable")
    hs = [hs[i] for i in order]
    ipp, dist = ipp[order], dist[order]

    # duplicates: same position along the normal
    tol_dup = 1e-2
    keep = [0]
    n_dup = 0
    for idx in range(1, len(hs)):
        if dist[idx] - dist[keep[-1]] < tol_dup:
            n_dup += 1
        else:
            keep.append(idx)
    if n_dup:
        same_uid = sum(1 for a, b in zip(hs, hs[1:]) if a.sop_instance_uid == b.sop_instance_uid)
        kind = "copies of the same image" if same_uid >= n_dup else "images at the same position"
        log.fixable(f"{where}: dropped {n_dup} duplicate slice(s) ({kind})")
        hs = [hs[i] for i in keep]
        ipp, dist = ipp[keep], dist[keep]

    if len(hs) < 2:
        raise GeometryError(f"{where}: only {len(hs)} usable slice(s); a CT volume needs at "
                            "least 2", path=log.path, series_uid=log.series_uid)

    steps = np.diff(dist)
    nominal = float(np.median(steps))
    tol = max(0.02, 0.02 * nominal)
    ratio = steps / nominal
    k_steps = np.rint(ratio).astype(int)
    regular = np.abs(steps - k_steps * nominal) <= tol * np.maximum(k_steps, 1)
    if not regular.all() or (k_steps < 1).any():
        raise GeometryError(f"{where}: slice spacing varies {steps.min():.3g}-{steps.max():.3g} mm "
                            f"(not a regular stack); cannot build one volume",
                            path=log.path, series_uid=log.series_uid)
    gaps = k_steps > 1
    if gaps.any():
        worst = int(k_steps.max()) - 1
        n_missing = int((k_steps - 1).sum())
        first = int(np.argmax(gaps))
        at = f"after {_name(hs[first].path)} at {dist[first]:.2f} mm"
        if worst > MAX_GAP_SLICES:
            raise GeometryError(f"{where}: {worst} consecutive slices missing {at} "
                                f"(spacing {nominal:.3g} mm); cannot build one volume",
                                path=log.path, series_uid=log.series_uid)
        log.fixable(f"{where}: {n_missing} missing slice(s) ({at}); filled by linear "
                    "interpolation", error_cls=GeometryError)
    k_index = np.concatenate([[0], np.cumsum(k_steps)])
    n_slices = int(k_index[-1]) + 1

    # gantry tilt: the positions move within the image plane from slice to slice
    step_vec = (ipp[-1] - ipp[0]) / k_index[-1]
    resid = ipp - (ipp[0] + np.outer(k_index, step_vec))
    if np.abs(resid).max() > max(0.05, 0.05 * nominal):
        raise GeometryError(f"{where}: slice positions do not lie on a straight line "
                            f"(off by up to {np.abs(resid).max():.2f} mm)", path=log.path,
                            series_uid=log.series_uid)
    slice_sp = float(step_vec @ normal)
    inplane = step_vec - slice_sp * normal
    shear_ij = np.array([inplane @ row_dir / col_sp, inplane @ col_dir / row_sp])
    tilt_deg = float(np.degrees(np.arctan2(np.linalg.norm(inplane), slice_sp)))
    if np.abs(shear_ij).max() * (n_slices - 1) < 0.05:
        shear_ij = np.zeros(2)
    else:
        hdr_tilt = hs[0].gantry_tilt_deg
        note = f" (GantryDetectorTilt {hdr_tilt:g} deg)" if hdr_tilt else ""
        if tilt_deg > MAX_TILT_DEG:
            raise GeometryError(f"{where}: gantry tilt of {tilt_deg:.1f} deg{note} is too large "
                                "to correct", path=log.path, series_uid=log.series_uid)
        log.fixable(f"{where}: gantry tilt of {tilt_deg:.1f} deg{note}; slices shifted onto an "
                    "orthogonal grid", error_cls=GeometryError)

    aff = np.eye(4)
    aff[:3, 0] = row_dir * col_sp
    aff[:3, 1] = col_dir * row_sp
    aff[:3, 2] = normal * slice_sp
    aff[:3, 3] = ipp[0]
    return StackGeometry(headers=hs, k_index=k_index, n_slices=n_slices, ijk_to_lps=aff,
                         shear_ij=shear_ij, tilt_deg=tilt_deg if shear_ij.any() else 0.0)
