"""Load one DICOM CT series (chosen from a header scan) into a :class:`Volume` in HU."""

from __future__ import annotations

import functools
import os
from typing import Callable

import numpy as np
import pydicom
import pydicom.uid
from pydicom.pixels import pixel_array as _pixel_array

from needleplan.errors import DicomSeriesError
from needleplan.io._dicom_geometry import StackGeometry, plan_stack
from needleplan.io._dicom_scan import ScanResult, SeriesInfo, SliceHeader, map_threads
from needleplan.io._warnings import DefectLog
from needleplan.io.volume import Volume

__all__ = ["load_dicom_series", "prepare_series", "select_series", "memory_limit_bytes"]

#: Never allocate more than this for one volume, whatever the free memory.
HARD_CAP_BYTES = 16 * 1024**3
_NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}  # little endian, uncompressed


def memory_limit_bytes() -> int:
    """Largest volume we agree to allocate: 80 % of available memory, at most 16 GiB."""
    try:
        import psutil

        avail = int(psutil.virtual_memory().available * 0.8)
    except Exception:  # pragma: no cover - psutil is a dependency
        avail = 4 * 1024**3
    return min(avail, HARD_CAP_BYTES)


def select_series(scan: ScanResult, *, series_uid: str | None, path: str) -> SeriesInfo:
    """Pick ``series_uid`` or, by default, the CT series with the most files."""
    if series_uid:
        for s in scan:
            if s.series_uid == series_uid:
                return s
        found = ", ".join(s.series_uid for s in scan[:5])
        raise DicomSeriesError(f"'{path}' has no series {series_uid} (found: {found})",
                               path=path, series_uid=series_uid)
    cts = [s for s in scan if s.is_ct]
    if not cts:
        found = "; ".join(s.summary() for s in scan[:3])
        raise DicomSeriesError(f"'{path}' holds no CT series (found {found}); needleplan needs "
                               "CT in Hounsfield units", path=path)
    return cts[0]


def _check_pixels_supported(s: SeriesInfo, where: str, log: DefectLog) -> None:
    """Reject what cannot be decoded or is not CT (always errors, also when not strict)."""
    if not s.is_ct:
        raise DicomSeriesError(f"{where}: modality is {s.modality or 'unknown'}, not CT; "
                               "needleplan needs CT in Hounsfield units",
                               path=log.path, series_uid=s.series_uid)
    for ts in sorted({h.transfer_syntax for h in s.headers}):
        if ts in _NATIVE:
            continue
        uid = pydicom.uid.UID(ts)
        name = uid.name if uid.is_valid else ts
        if ts in ("1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"):
            continue  # big endian / deflated: pydicom reads them natively
        try:
            from pydicom.pixels.decoders.base import get_decoder

            ok = get_decoder(uid).is_available
        except (NotImplementedError, ValueError):
            ok = False
        if not ok:
            raise DicomSeriesError(f"{where}: transfer syntax {name} ({ts}) is not supported "
                                   "(convert it, e.g. `gdcmconv --raw IN OUT`)",
                                   path=log.path, series_uid=s.series_uid)
    for h in s.headers:
        if h.n_frames > 1:
            raise DicomSeriesError(f"{where}: '{h.path}' is a multi-frame image "
                                   f"({h.n_frames} frames); only single-slice files are read",
                                   path=log.path, series_uid=s.series_uid)
        if h.samples_per_pixel != 1:
            raise DicomSeriesError(f"{where}: '{h.path}' is a colour image, not CT",
                                   path=log.path, series_uid=s.series_uid)
        if h.rows is None or h.cols is None or h.rows < 1 or h.cols < 1:
            raise DicomSeriesError(f"{where}: '{h.path}' has no image size (Rows/Columns)",
                                   path=log.path, series_uid=s.series_uid)
        if h.bits_allocated not in (8, 16, 32):
            raise DicomSeriesError(f"{where}: '{h.path}' has BitsAllocated {h.bits_allocated}; "
                                   "only 8, 16 or 32 are supported",
                                   path=log.path, series_uid=s.series_uid)
        if h.slope == 0 or not np.isfinite([h.slope, h.intercept]).all():
            raise DicomSeriesError(f"{where}: '{h.path}' has RescaleSlope {h.slope:g}; cannot "
                                   "convert to HU", path=log.path, series_uid=s.series_uid)


def _pixel_bytes_ok(h: SliceHeader) -> bool:
    """False when a file holds fewer pixel bytes than its header says (or, for compressed
    data, lacks the closing delimiter)."""
    if not h.pixels_complete:
        return False
    if h.transfer_syntax not in _NATIVE or h.pixel_offset is None:
        return True
    need = h.rows * h.cols * h.bits_allocated // 8
    have = h.file_size - h.pixel_offset - h.pixel_header_bytes
    if h.pixel_length is not None:
        have = min(have, h.pixel_length)
    return have >= need


def prepare_series(series: SeriesInfo, *, source: str, log: DefectLog,
                   damaged: list[str] | None = None) -> tuple[StackGeometry, type]:
    """All header checks of :func:`load_dicom_series`, without reading pixels.

    Returns the stack geometry and the output dtype (int16 or float32).
    """
    where = f"series {series.series_uid or '(no UID)'} in '{source}'"
    _check_pixels_supported(series, where, log)
    headers = series.headers
    big = max(headers, key=lambda h: h.rows * h.cols)
    _check_memory(big.rows * big.cols * len(headers) * 2, where, source, series,
                  f"{big.cols}x{big.rows}x{len(headers)}")
    if damaged:
        log.fixable(f"'{source}': skipped {len(damaged)} damaged DICOM file(s) "
                    f"(e.g. '{damaged[0]}')")
    short = [h for h in headers if not _pixel_bytes_ok(h)]
    if short:
        if len(short) == len(headers):
            raise DicomSeriesError(f"{where}: every file has truncated pixel data "
                                   f"(e.g. '{short[0].path}'); the files are damaged",
                                   path=source, series_uid=series.series_uid)
        log.fixable(f"{where}: dropped {len(short)} file(s) with truncated pixel data "
                    f"(e.g. '{short[0].path}')")
        headers = [h for h in headers if _pixel_bytes_ok(h)]
    geo = plan_stack(headers, log=log, where=where)
    hs = geo.headers
    integral = all(float(h.slope).is_integer() and float(h.intercept).is_integer() for h in hs)
    dtype = np.int16 if integral else np.float32
    _check_memory(hs[0].rows * hs[0].cols * geo.n_slices * np.dtype(dtype).itemsize, where,
                  source, series, f"{hs[0].cols}x{hs[0].rows}x{geo.n_slices}")
    return geo, dtype


def _check_memory(need: int, where: str, source: str, series: SeriesInfo, size: str) -> None:
    limit = memory_limit_bytes()
    if need > limit:
        raise DicomSeriesError(f"{where}: the image would need {need / 1024**3:.1f} GB "
                               f"({size}), more than the {limit / 1024**3:.1f} GB available; "
                               "refusing to load it", path=source, series_uid=series.series_uid)


@functools.lru_cache(maxsize=None)
def _safe_plugins(transfer_syntax: str) -> tuple[str, ...]:
    """Decoding plugins to try, in order; ``""`` means pydicom's default choice.

    GDCM aborts the whole process (an uncaught C++ exception) on some corrupt JPEG 2000
    data, so it is used only when no other plugin can decode this transfer syntax.
    """
    uid = pydicom.uid.UID(transfer_syntax)
    if not uid.is_compressed:
        return ("",)
    try:
        from pydicom.pixels.decoders.base import get_decoder

        names = list(get_decoder(uid).available_plugins)
    except (NotImplementedError, ValueError):
        return ("",)
    safe = sorted((n for n in names if n != "gdcm"), key=lambda n: n != "pylibjpeg")
    return tuple(safe or names or [""])


def _raw_dtype(h: SliceHeader) -> np.dtype:
    kind = "i" if h.pixel_representation == 1 else "u"
    return np.dtype(f"<{kind}{h.bits_allocated // 8}")


def _read_raw(h: SliceHeader) -> np.ndarray:
    """Stored pixel values of one slice, shape (rows, cols)."""
    n = h.rows * h.cols
    fast = (h.transfer_syntax in _NATIVE and h.pixel_offset is not None
            and (h.bits_stored == h.bits_allocated or h.pixel_representation == 0))
    if fast:
        with open(h.path, "rb") as fp:
            fp.seek(h.pixel_offset + h.pixel_header_bytes)
            buf = fp.read(n * h.bits_allocated // 8)
        raw = np.frombuffer(buf, dtype=_raw_dtype(h))
        if raw.size != n:
            raise DicomSeriesError(f"'{h.path}' has truncated pixel data", path=h.path)
        return raw.reshape(h.rows, h.cols)
    try:
        ds = pydicom.dcmread(h.path)
    except Exception as exc:  # pydicom raises many types on corrupt input
        msg = " ".join(str(exc).split())[:150]
        raise DicomSeriesError(f"cannot read '{h.path}': {msg}", path=h.path) from exc
    plugins = _safe_plugins(h.transfer_syntax)
    errors = []
    arr = None
    for name in plugins:
        try:
            arr = _pixel_array(ds, decoding_plugin=name) if name else ds.pixel_array
            break
        except Exception as exc:  # decoder errors come in many types
            errors.append(f"{name or 'pydicom'}: {' '.join(str(exc).split())[-120:]}")
    if arr is None:
        raise DicomSeriesError(f"cannot decode the pixel data of '{h.path}' "
                               f"({'; '.join(errors)})", path=h.path)
    if arr.shape != (h.rows, h.cols):
        raise DicomSeriesError(f"'{h.path}' decodes to shape {arr.shape}, expected "
                               f"{(h.rows, h.cols)}", path=h.path)
    return arr


class _NeedsFloat(Exception):
    pass


def _to_hu(raw: np.ndarray, h: SliceHeader, out: np.ndarray) -> None:
    """Write HU of one slice into ``out`` (a (rows, cols) view), int16 or float32."""
    if out.dtype == np.int16:
        lo, hi = int(raw.min()), int(raw.max())
        slope, icpt = int(h.slope), int(h.intercept)
        if slope * lo + icpt < -32768 or slope * hi + icpt > 32767 or \
                slope * hi + icpt < -32768 or slope * lo + icpt > 32767:
            raise _NeedsFloat
        if slope == 1 and raw.dtype.itemsize <= 2 and max(abs(lo), abs(hi)) <= 32767:
            out[...] = raw
            if icpt:
                out += np.int16(icpt)
        else:
            out[...] = raw.astype(np.int32) * slope + icpt
    else:
        np.multiply(raw, np.float32(h.slope), out=out, casting="unsafe")
        out += np.float32(h.intercept)


def _fill_gaps(stack: np.ndarray, k_index: np.ndarray) -> None:
    for a, b in zip(k_index[:-1], k_index[1:]):
        for k in range(a + 1, b):
            w = (k - a) / (b - a)
            vals = (1 - w) * stack[a].astype(np.float32) + w * stack[b].astype(np.float32)
            stack[k] = np.rint(vals) if stack.dtype == np.int16 else vals


def _unshear(stack: np.ndarray, shear_ij: np.ndarray) -> None:
    from scipy import ndimage

    fill = -1024 if stack.dtype == np.int16 else np.float32(-1024)
    for k in range(1, stack.shape[0]):
        shift = (k * shear_ij[1], k * shear_ij[0])  # (row j, column i)
        sl = ndimage.shift(stack[k].astype(np.float32), shift, order=1, mode="constant",
                           cval=float(fill))
        stack[k] = np.rint(sl) if stack.dtype == np.int16 else sl


def load_dicom_series(series: SeriesInfo, *, source: str, strict: bool = False,
                      progress: Callable[[int, int, str], None] | None = None,
                      other_series: list[SeriesInfo] | None = None,
                      damaged: list[str] | None = None) -> Volume:
    """Read the pixels of one scanned series into a :class:`Volume` (HU, LPS affine).

    Parameters
    ----------
    series : SeriesInfo
        From :func:`needleplan.io.scan_path`.
    source : str
        The path the user gave (named in messages, stored in ``meta["source"]``).
    strict : bool
        Raise on fixable defects instead of repairing them with a warning.
    progress : callable, optional
        ``progress(done, total, what)``.
    other_series : list of SeriesInfo, optional
        The other series found next to this one (noted in ``meta``).
    damaged : list of str, optional
        Damaged DICOM files found by the scan (reported as a defect).

    Returns
    -------
    Volume
        ``voxels`` int16 when the HU fit, else float32; shape (columns, rows, slices).
    """
    log = DefectLog(strict=strict, path=source, series_uid=series.series_uid)
    geo, dtype = prepare_series(series, source=source, log=log, damaged=damaged)
    hs = geo.headers
    rows, cols = hs[0].rows, hs[0].cols
    while True:
        stack = np.empty((geo.n_slices, rows, cols), dtype=dtype)
        try:
            _read_all(hs, geo.k_index, stack, progress)
            break
        except _NeedsFloat:
            del stack
            dtype = np.float32
    if geo.n_slices != len(hs):
        _fill_gaps(stack, geo.k_index)
    if geo.shear_ij.any():
        _unshear(stack, geo.shear_ij)

    first = hs[0]
    meta = {
        "format": "dicom",
        "source": os.path.abspath(source),
        "series_uid": series.series_uid or None,
        "study_uid": series.study_uid,
        "modality": series.modality or "CT",
        "patient_position": first.patient_position or None,
        "description": series.description,
        "manufacturer": series.manufacturer,
        "transfer_syntax": first.transfer_syntax,
        "n_slices": geo.n_slices,
        "n_files": len(hs),
        "slice_thickness_mm": first.slice_thickness,
        "gantry_tilt_deg": geo.tilt_deg,
        "other_series": [s.series_uid for s in (other_series or []) if s is not series],
        "warnings": list(log.messages),
    }
    return Volume(voxels=stack.transpose(2, 1, 0), ijk_to_lps=geo.ijk_to_lps, meta=meta,
                  phi=dict(first.phi))


def _read_all(hs, k_index, stack, progress) -> None:
    n = len(hs)

    def work(idx):
        raw = _read_raw(hs[idx])
        _to_hu(raw, hs[idx], stack[k_index[idx]])
        return idx

    compressed = hs[0].transfer_syntax not in _NATIVE
    workers = min(os.cpu_count() or 2, 4) if (compressed or n > 32) else 1
    done = 0
    if workers > 1:
        for _ in map_threads(work, range(n), workers):
            done += 1
            if progress and (done % 50 == 0 or done == n):
                progress(done, n, "reading slices")
    else:
        for idx in range(n):
            work(idx)
            done += 1
            if progress and (done % 50 == 0 or done == n):
                progress(done, n, "reading slices")

