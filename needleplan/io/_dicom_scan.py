"""Header-only scan of DICOM files and folders: which series are there, and what is wrong.

No pixel data is read here, so a folder with thousands of files lists quickly.  Each file
becomes a :class:`SliceHeader` (plain Python values); files of one SeriesInstanceUID are
grouped into a :class:`SeriesInfo`.
"""

from __future__ import annotations

import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError

from needleplan.errors import InputError
from needleplan.io.volume import PHI_KEYS

__all__ = ["SliceHeader", "SeriesInfo", "ScanResult", "scan_path", "read_header", "list_files"]

#: Localizer / scout markers in ImageType.
LOCALIZER_TYPES = {"LOCALIZER", "SCOUT", "TOPOGRAM", "SURVIEW", "SCANOGRAM"}
CT_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1"}
_PIXEL_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010) little endian
_SEQ_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # (FFFE,E0DD), length 0
_SKIP_NAMES = {"DICOMDIR", ".DS_Store", "Thumbs.db"}


@dataclass
class SliceHeader:
    """What needleplan needs from one DICOM file's header (no pixels)."""

    path: str
    file_size: int
    transfer_syntax: str
    sop_class_uid: str
    sop_instance_uid: str
    series_uid: str
    study_uid: str
    modality: str
    rows: int | None
    cols: int | None
    pixel_spacing: tuple[float, float] | None  # (row spacing, column spacing) mm
    iop: tuple[float, ...] | None
    ipp: tuple[float, float, float] | None
    slice_thickness: float | None
    slope: float
    intercept: float
    bits_allocated: int | None
    bits_stored: int | None
    pixel_representation: int
    samples_per_pixel: int
    photometric: str
    n_frames: int
    instance_number: int | None
    acquisition_number: int | None
    image_type: tuple[str, ...]
    gantry_tilt_deg: float | None
    description: str
    manufacturer: str
    patient_position: str
    pixel_offset: int | None  # byte offset of the (7FE0,0010) element, None if absent
    pixel_header_bytes: int  # 8 (implicit VR) or 12 (explicit VR) when pixel_offset is set
    pixel_length: int | None  # declared length; None when encapsulated (undefined length)
    pixels_complete: bool = True  # False when encapsulated data lacks its end delimiter
    phi: dict = field(default_factory=dict, repr=False)

    @property
    def is_localizer(self) -> bool:
        return bool(LOCALIZER_TYPES.intersection(t.upper() for t in self.image_type))


@dataclass
class SeriesInfo:
    """One DICOM series found by :func:`scan_path` (header information only).

    Attributes
    ----------
    series_uid, study_uid, modality, description, manufacturer, patient_position : str
    n_files : int
        Number of readable files of this series.
    rows, cols : int or None
        Image size of the most common slice size.
    pixel_spacing_mm : tuple of float or None
        (row spacing, column spacing) of the first file.
    slice_thickness_mm : float or None
    transfer_syntax : str
        UID of the first file's transfer syntax.
    files : list of str
        The files, in the order found (not sorted geometrically).
    problems : list of str
        Defects seen in the headers (localizers, odd sizes, truncated pixel data ...).
    headers : list of SliceHeader
        Parsed headers, for the loader.
    """

    series_uid: str
    study_uid: str
    modality: str
    description: str
    manufacturer: str
    patient_position: str
    n_files: int
    rows: int | None
    cols: int | None
    pixel_spacing_mm: tuple[float, float] | None
    slice_thickness_mm: float | None
    transfer_syntax: str
    files: list[str] = field(repr=False)
    problems: list[str] = field(default_factory=list)
    headers: list[SliceHeader] = field(default_factory=list, repr=False)

    @property
    def is_ct(self) -> bool:
        return self.modality == "CT" or (not self.modality and any(
            h.sop_class_uid in CT_SOP_CLASSES for h in self.headers))

    def summary(self) -> str:
        size = f"{self.cols}x{self.rows}" if self.rows else "?"
        desc = f" '{self.description}'" if self.description else ""
        return f"{self.modality or '?'} {self.series_uid}{desc}: {self.n_files} files, {size}"


class ScanResult(list):
    """A ``list`` of :class:`SeriesInfo` (most CT slices first) with ``skipped`` files.

    ``skipped`` is a list of ``(path, reason)`` for files that are not readable DICOM;
    ``damaged`` lists those of them that are DICOM files cut short or corrupt.
    """

    def __init__(self, series: Iterable[SeriesInfo] = (), skipped=None, root: str = "",
                 damaged=None):
        super().__init__(series)
        self.skipped: list[tuple[str, str]] = list(skipped or [])
        self.damaged: list[str] = list(damaged or [])
        self.root = root


# --------------------------------------------------------------------------- parsing
# keyword -> (tag, kind): 's' text, 'n' decimal/integer string (DS/IS), 'u' binary US
_TAGS = {
    "SOPClassUID": (0x00080016, "s"), "SOPInstanceUID": (0x00080018, "s"),
    "StudyInstanceUID": (0x0020000D, "s"), "SeriesInstanceUID": (0x0020000E, "s"),
    "Modality": (0x00080060, "s"), "ImageType": (0x00080008, "s"),
    "Manufacturer": (0x00080070, "s"), "SeriesDescription": (0x0008103E, "s"),
    "PatientPosition": (0x00185100, "s"), "PhotometricInterpretation": (0x00280004, "s"),
    "Rows": (0x00280010, "u"), "Columns": (0x00280011, "u"),
    "BitsAllocated": (0x00280100, "u"), "BitsStored": (0x00280101, "u"),
    "PixelRepresentation": (0x00280103, "u"), "SamplesPerPixel": (0x00280002, "u"),
    "PixelSpacing": (0x00280030, "n"), "ImageOrientationPatient": (0x00200037, "n"),
    "ImagePositionPatient": (0x00200032, "n"), "SliceThickness": (0x00180050, "n"),
    "RescaleSlope": (0x00281053, "n"), "RescaleIntercept": (0x00281052, "n"),
    "NumberOfFrames": (0x00280008, "n"), "InstanceNumber": (0x00200013, "n"),
    "AcquisitionNumber": (0x00200012, "n"), "GantryDetectorTilt": (0x00181120, "n"),
    "PatientName": (0x00100010, "s"), "PatientID": (0x00100020, "s"),
    "PatientBirthDate": (0x00100030, "s"), "PatientSex": (0x00100040, "s"),
    "PatientAge": (0x00101010, "s"), "OtherPatientIDs": (0x00101000, "s"),
    "AccessionNumber": (0x00080050, "s"), "InstitutionName": (0x00080080, "s"),
    "ReferringPhysicianName": (0x00080090, "s"), "StudyDate": (0x00080020, "s"),
    "StudyTime": (0x00080030, "s"), "StudyID": (0x00200010, "s"),
}


class _Values:
    """Read the few attributes we need straight from pydicom's raw elements.

    Converting every element through pydicom's value machinery (DSfloat, IS ...) costs
    more than parsing the file; the raw bytes of these simple VRs are easy to decode.
    """

    def __init__(self, ds):
        self.ds = ds
        # pydicom keeps elements (raw until first access) in ``_dict``; reading it directly
        # skips the per-access conversion.  Fall back to the public get_item otherwise.
        self._elems = getattr(ds, "_dict", None)

    def raw(self, key: str):
        tag, kind = _TAGS[key]
        try:
            if isinstance(self._elems, dict):
                elem = self._elems.get(tag)
            else:  # pragma: no cover - other pydicom versions
                elem = self.ds.get_item(tag)
        except (KeyError, ValueError, TypeError):  # pragma: no cover - defensive
            return None
        if elem is None:
            return None
        if not isinstance(elem, RawDataElement):
            value = elem.value
            if value is None or value == "":
                return None
            if kind == "u":
                return value
            if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
                return "\\".join(str(v) for v in value)
            return str(value)
        val = elem.value
        if not val:
            return None
        if kind == "u":
            if len(val) < 2:
                return None
            return struct.unpack("<H" if elem.is_little_endian else ">H", val[:2])[0]
        try:
            text = val.decode("utf-8")
        except UnicodeDecodeError:
            text = val.decode("latin-1")
        text = text.strip(" \x00")
        return text or None

    def str(self, key: str) -> str:
        v = self.raw(key)
        return "" if v is None else str(v).strip()

    def strs(self, key: str) -> tuple[str, ...]:
        v = self.raw(key)
        return () if v is None else tuple(t.strip() for t in str(v).split("\\"))

    def nums(self, key: str, n: int | None = None):
        v = self.raw(key)
        if v is None:
            return None
        try:
            vals = tuple(float(t) for t in str(v).split("\\"))
        except ValueError:
            return None
        if n is not None and len(vals) != n:
            return None
        return vals

    def num(self, key: str):
        vals = self.nums(key, 1)
        return None if vals is None else vals[0]

    def int(self, key: str):
        v = self.raw(key)
        if isinstance(v, int):
            return v
        x = self.num(key)
        return None if x is None or x != x else int(round(x))


def _looks_like_raw_dicom(head: bytes) -> bool:
    """A DICOM stream without preamble starts with a group 0x0002 or 0x0008 tag."""
    return len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00")


def _encapsulated_complete(fp, pos: int, size: int) -> bool:
    """Walk the items of encapsulated pixel data from ``pos``; True if the closing
    sequence delimiter is reached inside the file (cheap: a few 8-byte reads)."""
    for _ in range(100_000):
        if pos + 8 > size:
            return False
        fp.seek(pos)
        head = fp.read(8)
        if len(head) < 8:
            return False
        if head[:4] == _SEQ_DELIMITER[:4]:
            return True
        if head[:4] != b"\xfe\xff\x00\xe0":  # not an item: malformed
            return False
        length = struct.unpack("<I", head[4:])[0]
        if length == 0xFFFFFFFF:
            return False
        pos += 8 + length
    return False


def _error(message: str, path: str, *, damaged: bool) -> InputError:
    exc = InputError(message, path=path)
    exc.damaged = damaged  # a DICOM file that is cut short or corrupt (not a foreign file)
    return exc


def read_header(path: str | os.PathLike) -> SliceHeader:
    """Parse one file's header (stops before the pixel data).

    Raises
    ------
    InputError
        Not a DICOM file, empty, truncated before the pixel data, or unreadable; the
        message names the file.  ``exc.damaged`` is True for DICOM files that are cut
        short or corrupt, False for foreign files.
    """
    path = str(path)
    try:
        size = os.path.getsize(path)
        if size == 0:
            raise _error(f"'{path}' is an empty file (0 bytes)", path, damaged=False)
        with open(path, "rb") as fp:
            head = fp.read(132)
            fp.seek(0)
            force = False
            if head[128:132] != b"DICM":
                if not _looks_like_raw_dicom(head):
                    raise _error(f"'{path}' is not a DICOM file (no DICM marker)", path,
                                 damaged=False)
                force = True
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=force)
            stop = fp.tell()
            fp.seek(stop)
            tag = fp.read(12)
            complete = (len(tag) == 12 and tag[:4] == _PIXEL_TAG and tag[8:] == b"\xff" * 4
                        and _encapsulated_complete(fp, stop + 12, size))
    except InputError:
        raise
    except OSError as exc:
        raise _error(f"cannot read '{path}': {exc.strerror or exc}", path, damaged=True) from exc
    except Exception as exc:  # pydicom raises many types on corrupt input
        msg = " ".join(str(exc).split())[:120] or type(exc).__name__
        if isinstance(exc, InvalidDicomError) or not msg.isprintable():
            msg = type(exc).__name__
        raise _error(f"'{path}' is not a readable DICOM file ({msg})", path,
                     damaged=not force) from exc

    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not ts:
        ts = "1.2.840.10008.1.2"  # raw stream without meta: implicit VR little endian
    v = _Values(ds)
    sop_class = v.str("SOPClassUID")
    if not sop_class and meta is not None:
        sop_class = str(meta.get("MediaStorageSOPClassUID", "")).strip()
    rows = v.int("Rows")
    ipp = v.nums("ImagePositionPatient", 3)
    if not v.raw("SOPInstanceUID") and not v.raw("SeriesInstanceUID") and not rows:
        raise _error(f"'{path}' is a damaged DICOM file (cut short, no image attributes)", path,
                     damaged=True)

    pixel_offset = None
    pixel_header = 8
    pixel_length = None
    if len(tag) >= 8 and tag[:4] == _PIXEL_TAG:
        pixel_offset = stop
        if ts != "1.2.840.10008.1.2":  # explicit VR: tag, VR, 2 reserved, 4-byte length
            pixel_header = 12
            length = struct.unpack("<I", tag[8:12])[0] if len(tag) == 12 else None
        else:
            length = struct.unpack("<I", tag[4:8])[0]
        pixel_length = None if length in (None, 0xFFFFFFFF) else int(length)
        # encapsulated (compressed) pixel data ends with a sequence delimiter item
        pixels_complete = pixel_length is not None or complete
    else:
        pixels_complete = False

    if pixel_offset is None:
        if rows or ipp or sop_class in CT_SOP_CLASSES:
            raise _error(f"'{path}' is a damaged DICOM file (cut short before the pixel data)",
                         path, damaged=True)
        raise _error(f"'{path}' is a DICOM file without an image", path, damaged=False)

    phi = {key: v.str(key) for key in PHI_KEYS if key in _TAGS and v.raw(key) is not None}
    slope = v.num("RescaleSlope")
    intercept = v.num("RescaleIntercept")
    return SliceHeader(
        path=path,
        file_size=size,
        transfer_syntax=ts,
        sop_class_uid=sop_class,
        sop_instance_uid=v.str("SOPInstanceUID"),
        series_uid=v.str("SeriesInstanceUID"),
        study_uid=v.str("StudyInstanceUID"),
        modality=v.str("Modality").upper(),
        rows=rows,
        cols=v.int("Columns"),
        pixel_spacing=v.nums("PixelSpacing", 2),
        iop=v.nums("ImageOrientationPatient", 6),
        ipp=ipp,
        slice_thickness=v.num("SliceThickness"),
        slope=1.0 if slope is None else slope,
        intercept=0.0 if intercept is None else intercept,
        bits_allocated=v.int("BitsAllocated"),
        bits_stored=v.int("BitsStored"),
        pixel_representation=v.int("PixelRepresentation") or 0,
        samples_per_pixel=v.int("SamplesPerPixel") or 1,
        photometric=v.str("PhotometricInterpretation").upper() or "MONOCHROME2",
        n_frames=v.int("NumberOfFrames") or 1,
        instance_number=v.int("InstanceNumber"),
        acquisition_number=v.int("AcquisitionNumber"),
        image_type=v.strs("ImageType"),
        gantry_tilt_deg=v.num("GantryDetectorTilt"),
        description=v.str("SeriesDescription"),
        manufacturer=v.str("Manufacturer"),
        patient_position=v.str("PatientPosition").upper(),
        pixel_offset=pixel_offset,
        pixel_header_bytes=pixel_header,
        pixel_length=pixel_length,
        pixels_complete=pixels_complete,
        phi=phi,
    )


# --------------------------------------------------------------------------- folders
def map_threads(fn, items, workers: int):
    """``map(fn, items)`` on a thread pool, in order; pending work is cancelled as soon as
    the consumer (e.g. a progress callback after Cancel) or a task raises."""
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        yield from pool.map(fn, items)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def list_files(path: Path) -> list[str]:
    """All regular files under ``path`` (recursive, sorted, hidden files and DICOMDIR skipped)."""
    out = []
    for root, dirs, files in os.walk(path, onerror=None, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or name in _SKIP_NAMES:
                continue
            full = os.path.join(root, name)
            if os.path.isfile(full):
                out.append(full)
    return out


def _try_header(path: str):
    try:
        return read_header(path)
    except InputError as exc:
        return exc


def _group(headers: list[SliceHeader]) -> list[SeriesInfo]:
    groups: dict[str, list[SliceHeader]] = {}
    for h in headers:
        groups.setdefault(h.series_uid, []).append(h)
    series = []
    for uid, hs in groups.items():
        first = hs[0]
        sizes: dict[tuple, int] = {}
        for h in hs:
            sizes[(h.rows, h.cols)] = sizes.get((h.rows, h.cols), 0) + 1
        rows, cols = max(sizes, key=sizes.get)
        problems = _header_problems(hs, rows, cols)
        series.append(SeriesInfo(
            series_uid=uid, study_uid=first.study_uid, modality=first.modality,
            description=first.description, manufacturer=first.manufacturer,
            patient_position=first.patient_position, n_files=len(hs), rows=rows, cols=cols,
            pixel_spacing_mm=first.pixel_spacing, slice_thickness_mm=first.slice_thickness,
            transfer_syntax=first.transfer_syntax, files=[h.path for h in hs],
            problems=problems, headers=hs))
    series.sort(key=lambda s: (not s.is_ct, -s.n_files, s.series_uid))
    return series


def _header_problems(hs: list[SliceHeader], rows, cols) -> list[str]:
    """Cheap header-level findings shown by ``needleplan info`` (the loader re-checks)."""
    out = []
    n_loc = sum(h.is_localizer for h in hs)
    if n_loc:
        out.append(f"{n_loc} localizer image(s)")
    n_odd = sum((h.rows, h.cols) != (rows, cols) for h in hs)
    if n_odd:
        out.append(f"{n_odd} file(s) of another image size")
    if any(h.ipp is None for h in hs):
        out.append("ImagePositionPatient missing in some files")
    uids = [h.sop_instance_uid for h in hs if h.sop_instance_uid]
    if len(set(uids)) < len(uids):
        out.append(f"{len(uids) - len(set(uids))} duplicate SOPInstanceUID(s)")
    if any(h.n_frames > 1 for h in hs):
        out.append("multi-frame images")
    if len(hs) == 1:
        out.append("only one slice")
    for h in hs:
        if not h.pixels_complete:
            out.append(f"truncated pixel data in '{h.path}'")
            break
        if h.rows and h.cols and h.bits_allocated and h.pixel_length is not None:
            need = h.rows * h.cols * h.n_frames * h.samples_per_pixel * h.bits_allocated // 8
            have = h.file_size - (h.pixel_offset or 0) - h.pixel_header_bytes
            if min(have, h.pixel_length) < need:
                out.append(f"truncated pixel data in '{h.path}'")
                break
    return out


def scan_path(path: str | os.PathLike, *, recursive: bool = True,
              progress: Callable[[int, int, str], None] | None = None,
              workers: int | None = None) -> ScanResult:
    """List the DICOM series under a folder (or the series of one file) from headers only.

    Parameters
    ----------
    path : str or os.PathLike
        A folder (searched recursively) or one DICOM file.  For a file, the other files
        of its folder are scanned too and only the file's own series is returned.
    recursive : bool
        Descend into sub-folders (folders only).
    progress : callable, optional
        ``progress(done, total, what)`` called while scanning.
    workers : int, optional
        Reader threads (default 2 for large folders: parsing is GIL-bound, threads only
        overlap file I/O).

    Returns
    -------
    ScanResult
        A list of :class:`SeriesInfo`, CT series with most files first; ``.skipped``
        lists ``(path, reason)`` of files that are not readable DICOM.

    Raises
    ------
    InputError
        The path is missing, an empty folder, holds no DICOM file, or a single file that
        is not DICOM.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"'{p}' does not exist", path=p)
    if p.is_file():
        first = read_header(p)
        files = [f for f in list_files(p.parent) if os.path.dirname(f) == str(p.parent)]
        files = [str(p)] + [f for f in files if os.path.abspath(f) != os.path.abspath(p)]
    elif p.is_dir():
        first = None
        files = list_files(p) if recursive else [
            str(f) for f in sorted(p.iterdir()) if f.is_file() and not f.name.startswith(".")]
        if not files:
            raise InputError(f"'{p}' is an empty folder (no files)", path=p)
    else:
        raise InputError(f"'{p}' is neither a file nor a folder", path=p)

    n = len(files)
    results: list = []
    if workers is None:
        # parsing holds the GIL: 2 threads only overlap file I/O (cold cache, network disks)
        workers = 1 if n < 64 else 2
    if workers > 1:
        for i, r in enumerate(map_threads(_try_header, files, workers)):
            results.append(r)
            if progress and (i % 200 == 0 or i == n - 1):
                progress(i + 1, n, "reading DICOM headers")
    else:
        for i, f in enumerate(files):
            results.append(_try_header(f))
            if progress and (i % 200 == 0 or i == n - 1):
                progress(i + 1, n, "reading DICOM headers")

    headers = [r for r in results if isinstance(r, SliceHeader)]
    skipped = [(r.path, str(r)) for r in results if not isinstance(r, SliceHeader)]
    if first is not None:
        headers = [h for h in headers if h.series_uid == first.series_uid]
    if not headers:
        images = [f for f in files if f.lower().endswith((".nii", ".nii.gz", ".nrrd", ".mha",
                                                           ".mhd", ".nhdr"))]
        hint = (f"; to load an image file pass it directly, e.g. '{images[0]}'" if images
                else "")
        raise InputError(f"'{p}' holds no DICOM files ({len(files)} file(s) checked){hint}",
                         path=p)
    damaged = [r.path for r in results
               if not isinstance(r, SliceHeader) and getattr(r, "damaged", False)]
    return ScanResult(_group(headers), skipped=skipped, root=str(p), damaged=damaged)
