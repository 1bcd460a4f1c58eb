"""Import external vertebra label maps (TotalSegmentator, VerSe) onto the CT grid.

Supported inputs
----------------
- TotalSegmentator v2 "total" multi-label NIfTI: vertebrae_S1 = 26, L5 = 27 ... L1 = 31,
  T12 = 32 ... T1 = 43, C7 = 44 ... C1 = 50, sacrum = 25 (other organs are ignored).
- A TotalSegmentator output folder with one ``vertebrae_<level>.nii.gz`` mask per level.
- A VerSe label NIfTI: 1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 26 sacrum, 28 T13.

The format is read from the label names stored in the NIfTI header extension when
TotalSegmentator wrote them, else from the ids present, else from ``labels_format``.
Labels are resampled onto the CT grid with nearest neighbour.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from needleplan.errors import InputError, PlanFileError
from needleplan.segmentation.model import VERSE_NAMES, level_label

__all__ = ["import_labels", "TOTALSEG_TO_VERSE", "LABEL_FORMATS"]

#: TotalSegmentator v2 "total" class id -> VerSe label number.
TOTALSEG_TO_VERSE: dict[int, int] = {
    25: 26,  # sacrum
    26: 26,  # vertebrae_S1
    **{27 + i: 24 - i for i in range(5)},    # L5 ... L1 -> 24 ... 20
    **{32 + i: 19 - i for i in range(12)},   # T12 ... T1 -> 19 ... 8
    **{44 + i: 7 - i for i in range(7)},     # C7 ... C1 -> 7 ... 1
}

LABEL_FORMATS = ("auto", "totalseg", "verse", "folder")

_NAME_RE = re.compile(r'Key="(\d+)"[^>]*>\s*<!\[CDATA\[([^\]]*)\]\]>')


def _name_to_verse(name: str) -> int | None:
    n = name.strip().lower()
    if n in ("sacrum", "vertebrae_s1", "s1"):
        return 26
    m = re.fullmatch(r"(?:vertebrae?_)?([ctl])(\d+)", n)
    if not m:
        return None
    try:
        return level_label(f"{m.group(1).upper()}{int(m.group(2))}")
    except ValueError:
        return None


def _header_names(path: Path) -> dict[int, str]:
    """Label names TotalSegmentator stores in the NIfTI-1 header extension (may be empty).

    Reads only the header and its extensions (NIfTI-1: 348-byte header, 4-byte extender,
    then ``esize, ecode, data`` blocks up to ``vox_offset``); never raises.
    """
    import gzip
    import struct

    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as f:
            head = f.read(352)
            if len(head) < 352:
                return {}
            endian = "<" if struct.unpack("<i", head[:4])[0] == 348 else ">"
            if struct.unpack(endian + "i", head[:4])[0] != 348 or head[348] == 0:
                return {}
            vox_offset = int(struct.unpack(endian + "f", head[108:112])[0])
            blob = f.read(max(0, min(vox_offset, 4 * 1024 * 1024) - 352))
    except (OSError, EOFError, struct.error, ValueError):
        return {}
    out: dict[int, str] = {}
    pos = 0
    while pos + 8 <= len(blob):
        esize = struct.unpack(endian + "i", blob[pos:pos + 4])[0]
        if esize < 8 or pos + esize > len(blob):
            break
        text = blob[pos + 8:pos + esize].decode("utf-8", "replace")
        out.update({int(k): v for k, v in _NAME_RE.findall(text)})
        pos += esize
    return out


def _to_ct_grid(path: Path, volume) -> np.ndarray:
    """Read a label image and resample it (nearest neighbour) onto the CT grid -> (I, J, K)."""
    from needleplan.io import read_label_image
    arr, _ = read_label_image(path, like=volume)
    if arr.size and (arr.min() < 0 or arr.max() > 65535):
        raise PlanFileError(f"{path}: values {int(arr.min())}..{int(arr.max())} are not vertebra labels", path=path)
    return arr.astype(np.uint16, copy=False)


def _map_values(arr: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    lut = np.zeros(max(int(arr.max()), max(mapping)) + 1, dtype=np.uint8)
    for k, v in mapping.items():
        lut[k] = v
    return lut[arr]


def _detect(ids: set[int], names: dict[int, str], fmt: str, path: Path) -> dict[int, int]:
    """Mapping file id -> VerSe label."""
    if names and fmt == "auto":
        mapping = {k: v for k, n in names.items() if (v := _name_to_verse(n)) is not None}
        if mapping:
            return mapping
    if fmt == "auto":
        fmt = "totalseg" if any(i > 28 for i in ids) else "verse"
    if fmt == "totalseg":
        return dict(TOTALSEG_TO_VERSE)
    if fmt == "verse":
        bad = sorted(i for i in ids if i and i not in VERSE_NAMES)
        if bad:
            raise PlanFileError(f"{path}: values {bad[:8]} are not VerSe vertebra labels (1-26, 28); "
                                "for a TotalSegmentator file use --labels-format totalseg", path=path)
        return {k: k for k in VERSE_NAMES}
    raise InputError(f"unknown labels format {fmt!r}; use one of {', '.join(LABEL_FORMATS)}")


def import_labels(path, volume, *, labels_format: str = "auto") -> tuple[np.ndarray, str]:
    """Read an external vertebra label map and put it on the CT grid in VerSe numbering.

    Parameters
    ----------
    path : str or Path
        A NIfTI/NRRD/MHA label file or a folder of ``vertebrae_*.nii.gz`` masks.
    volume : Volume
        The CT whose grid the labels are resampled onto (nearest neighbour).
    labels_format : {'auto', 'totalseg', 'verse', 'folder'}
        Force the interpretation of the ids when they are ambiguous.

    Returns
    -------
    labels : (I, J, K) ndarray of uint8
        VerSe numbers on the CT grid.
    source : str
        A short description (format, file, levels found) for ``Anatomy.method``.

    Raises
    ------
    InputError
        Missing path, no overlap with the CT, unknown format.
    PlanFileError
        Corrupt or unreadable label file, or values that fit no known format.
    """
    path = Path(path)
    if labels_format not in LABEL_FORMATS:
        raise InputError(f"unknown labels format {labels_format!r}; use one of {', '.join(LABEL_FORMATS)}")
    if not path.exists():
        raise InputError(f"{path}: label file or folder not found", path=path)
    if path.is_dir():
        return _import_folder(path, volume)
    if labels_format == "folder":
        raise InputError(f"{path}: --labels-format folder needs a folder of vertebrae_*.nii.gz masks", path=path)
    arr = _to_ct_grid(path, volume)
    ids = {int(v) for v in np.unique(arr)} - {0}
    names = _header_names(path) if path.name.lower().endswith((".nii", ".nii.gz")) else {}
    mapping = _detect(ids, names, labels_format, path)
    fmt = "TotalSegmentator" if mapping.get(31) == 20 or mapping.get(27) == 24 else "VerSe"
    out = _map_values(arr, mapping) if ids else np.zeros(arr.shape, np.uint8)
    found = sorted(int(v) for v in np.unique(out) if v)
    if not found:
        raise PlanFileError(f"{path}: no vertebra labels inside the CT's field of view "
                            f"(values found: {sorted(ids)[:10]})", path=path)
    names_found = "-".join([VERSE_NAMES[found[0]], VERSE_NAMES[found[-1]]]) if len(found) > 1 else VERSE_NAMES[found[0]]
    return out, f"imported:{fmt}:{path.name} ({names_found})"


def _import_folder(folder: Path, volume) -> tuple[np.ndarray, str]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and re.match(r"(vertebrae_[a-z]\d+|sacrum)\.(nii|nii\.gz|nrrd|mha)$", p.name, re.I))
    if not files:
        raise InputError(f"{folder}: no vertebrae_<level>.nii.gz masks in this folder", path=folder)
    out = np.zeros(tuple(volume.shape), dtype=np.uint8)
    for f in files:
        stem = f.name.split(".")[0]
        lab = _name_to_verse(stem)
        if lab is None:
            continue
        arr = _to_ct_grid(f, volume)
        sel = arr > 0
        if lab == 26:
            out[sel & (out == 0)] = 26  # sacrum / S1 never overwrite a lumbar level
        else:
            out[sel] = lab
    found = sorted(int(v) for v in np.unique(out) if v)
    if not found:
        raise PlanFileError(f"{folder}: the vertebra masks are empty inside the CT's field of view", path=folder)
    return out, f"imported:TotalSegmentator-masks:{folder.name} ({VERSE_NAMES[found[0]]}-{VERSE_NAMES[found[-1]]})"
