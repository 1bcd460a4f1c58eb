"""Header-only description of a CT input (for ``needleplan info``): no pixel data is read."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from needleplan.errors import InputError, NeedlePlanError
from needleplan.io._dicom_load import prepare_series, select_series
from needleplan.io._dicom_scan import read_header, scan_path
from needleplan.io._itk import image_suffix
from needleplan.io._warnings import DefectLog
from needleplan.io.volume import axis_codes

__all__ = ["describe_path"]


def _geometry(aff: np.ndarray, size) -> dict:
    spacing = np.linalg.norm(aff[:3, :3], axis=0)
    return {
        "size": [int(s) for s in size],
        "spacing_mm": [round(float(s), 6) for s in spacing],
        "axis_codes": "".join(axis_codes(aff)),
        "origin_lps": [round(float(v), 4) for v in aff[:3, 3]],
        "direction": [[round(float(v), 6) for v in row] for row in aff[:3, :3] / spacing],
        "extent_mm": [round(float(s * (n - 1)), 3) for s, n in zip(spacing, size)],
    }


def _describe_image(p: Path) -> dict:
    import SimpleITK as sitk

    if p.stat().st_size == 0:
        raise InputError(f"'{p}' is an empty file (0 bytes)", path=p)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(p))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(f"cannot read '{p}': not a valid {image_suffix(p)} image", path=p) from exc
    size = reader.GetSize()
    dim = len(size)
    selected = {"series_uid": None, "modality": None, "patient_position": None,
                "pixel_type": sitk.GetPixelIDValueAsString(reader.GetPixelID()),
                "warnings": [], "error": None}
    if dim < 3 or (dim > 3 and any(s != 1 for s in size[3:])):
        selected["error"] = f"'{p}' is a {dim}-D image of size {size}; a 3-D volume is needed"
    else:
        d = np.array(reader.GetDirection(), dtype=np.float64).reshape(dim, dim)[:3, :3]
        aff = np.eye(4)
        aff[:3, :3] = d * np.array(reader.GetSpacing()[:3])
        aff[:3, 3] = reader.GetOrigin()[:3]
        selected.update(_geometry(aff, size[:3]))
    return {"path": str(p), "format": (image_suffix(p) or "").lstrip("."), "series": [],
            "skipped_files": [], "selected": selected}


def describe_path(path: str | os.PathLike, *, series_uid: str | None = None) -> dict:
    """Describe the series under ``path`` and the geometry of the one ``load_ct`` would load.

    Returns
    -------
    dict
        ``path``, ``format``, ``series`` (one dict per series: uid, modality, description,
        n_files, rows, cols, problems, selected), ``skipped_files`` ([path, reason] of
        files that are not DICOM) and ``selected`` (size, spacing_mm, axis_codes,
        origin_lps, direction, patient_position, warnings, and ``error``: why it cannot be
        loaded, or None).  JSON-serialisable.

    Raises
    ------
    InputError
        Missing path, empty folder, no DICOM files (as :func:`load_ct`).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"'{p}' does not exist", path=p)
    if p.is_file() and image_suffix(p):
        return _describe_image(p)
    if p.is_file():
        try:
            read_header(p)
        except InputError as exc:
            raise InputError(f"{exc} (expected DICOM, NIfTI .nii/.nii.gz, NRRD or MHA)",
                             path=p) from exc
    scan = scan_path(p)
    out = {"path": str(p), "format": "dicom", "series": [],
           "skipped_files": [[f, r] for f, r in scan.skipped], "selected": None}
    try:
        chosen = select_series(scan, series_uid=series_uid, path=str(p))
    except NeedlePlanError as exc:
        chosen = None
        out["selected"] = {"series_uid": series_uid, "error": str(exc), "warnings": []}
    for s in scan:
        out["series"].append({
            "series_uid": s.series_uid, "modality": s.modality, "description": s.description,
            "n_files": s.n_files, "rows": s.rows, "cols": s.cols,
            "pixel_spacing_mm": list(s.pixel_spacing_mm) if s.pixel_spacing_mm else None,
            "slice_thickness_mm": s.slice_thickness_mm, "transfer_syntax": s.transfer_syntax,
            "problems": list(s.problems), "selected": s is chosen})
    if chosen is None:
        return out
    log = DefectLog(strict=False, path=str(p), series_uid=chosen.series_uid, quiet=True)
    first = chosen.headers[0]
    sel = {"series_uid": chosen.series_uid, "modality": chosen.modality,
           "description": chosen.description, "manufacturer": chosen.manufacturer,
           "patient_position": first.patient_position or None,
           "transfer_syntax": first.transfer_syntax,
           "slice_thickness_mm": first.slice_thickness, "warnings": log.messages, "error": None}
    try:
        geo, _ = prepare_series(chosen, source=str(p), log=log, damaged=scan.damaged)
        sel.update(_geometry(geo.ijk_to_lps, (first.cols, first.rows, geo.n_slices)))
        sel["gantry_tilt_deg"] = round(geo.tilt_deg, 3)
    except NeedlePlanError as exc:
        sel["error"] = str(exc)
    out["selected"] = sel
    return out
