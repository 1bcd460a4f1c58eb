"""Write a :class:`~needleplan.io.volume.Volume` as a DICOM CT series (one file per slice).

Output is bit-for-bit reproducible: UIDs come from a seed through
:func:`pydicom.uid.generate_uid` with ``entropy_srcs``, dates and times are fixed, and the
file meta names needleplan rather than the pydicom version.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

from needleplan.errors import OutputError
from needleplan.io._atomic import atomic_path, prepare_out_dir

__all__ = ["write_dicom_series", "IMPLEMENTATION_CLASS_UID", "FIXED_DATE", "FIXED_TIME"]

#: needleplan's own implementation class UID (stable across pydicom versions).
IMPLEMENTATION_CLASS_UID = generate_uid(entropy_srcs=["needleplan", "implementation-class"])
FIXED_DATE = "20240102"
FIXED_TIME = "101500"
_SYNTAXES = {"RLELossless": RLELossless, "ExplicitVRLittleEndian": ExplicitVRLittleEndian,
             str(RLELossless): RLELossless, str(ExplicitVRLittleEndian): ExplicitVRLittleEndian}
_PHI_DEFAULTS = {
    "PatientName": "", "PatientID": "", "PatientBirthDate": "", "PatientSex": "",
    "AccessionNumber": "", "ReferringPhysicianName": "", "StudyID": "1",
}


def _uid(seed, *parts) -> str:
    return generate_uid(entropy_srcs=[str(seed), *map(str, parts)])


def _geometry(volume):
    aff = np.asarray(volume.ijk_to_lps, float)
    sp = np.linalg.norm(aff[:3, :3], axis=0)
    if np.any(sp <= 0):
        raise OutputError("write_dicom_series: the volume has a zero voxel size")
    d = aff[:3, :3] / sp
    if abs(d[:, 0] @ d[:, 1]) > 1e-4 or abs(np.linalg.norm(np.cross(d[:, 0], d[:, 1]) - d[:, 2])) > 1e-4:
        raise OutputError("write_dicom_series: the volume's axes are not orthogonal and right-handed "
                          "(slice axis = row x column); resample it first")
    return aff, sp, d


def _ds_str(v: float) -> str:
    """A DS value (<= 16 chars) that round-trips to within 1e-6 mm."""
    s = f"{float(v):.6f}".rstrip("0").rstrip(".")
    if s in ("-0", ""):
        s = "0"
    return s[:16]


def write_dicom_series(volume, folder, *, patient: dict | None = None,
                       series_description: str | None = None,
                       transfer_syntax: str = "RLELossless", uid_seed=None,
                       series_number: int = 2, file_prefix: str = "IM") -> list[Path]:
    """Write ``volume`` as a CT Image Storage series, one file per slice (``k``).

    Parameters
    ----------
    volume : Volume
        HU values (int16 or float, rounded); any orthogonal right-handed axis-aligned or
        oblique affine whose third axis is the slice normal.
    folder : path
        Output folder (created if missing).  Files are ``IM0001.dcm`` ... in slice order.
    patient : dict, optional
        Identifying fields (``PatientName``, ``PatientID``, ``PatientBirthDate``,
        ``PatientSex``, ...) overriding ``volume.phi``.
    series_description : str, optional
        Default: ``volume.meta['description']``.
    transfer_syntax : {'RLELossless', 'ExplicitVRLittleEndian'}
    uid_seed : str or int, optional
        Seed of every UID.  Default: the volume's ``series_uid`` (or ``'needleplan'``);
        the study, series and frame-of-reference UIDs of ``volume.meta`` are kept then.
    series_number : int
    file_prefix : str

    Returns
    -------
    list of Path
        The files written, in slice order.

    Raises
    ------
    OutputError
        When the folder cannot be written or the geometry cannot be expressed in DICOM.
    """
    ts = _SYNTAXES.get(str(transfer_syntax))
    if ts is None:
        raise OutputError(f"write_dicom_series: transfer_syntax {transfer_syntax!r} must be "
                          "'RLELossless' or 'ExplicitVRLittleEndian'")
    folder = prepare_out_dir(folder)
    aff, sp, d = _geometry(volume)
    meta = dict(volume.meta or {})
    phi = {**_PHI_DEFAULTS, **dict(volume.phi or {}), **dict(patient or {})}
    if uid_seed is None:
        seed = meta.get("series_uid") or "needleplan"
        study_uid = meta.get("study_uid") or _uid(seed, "study")
        series_uid = meta.get("series_uid") or _uid(seed, "series")
        frame_uid = meta.get("frame_of_reference_uid") or _uid(seed, "frame")
    else:
        seed = uid_seed
        study_uid, series_uid, frame_uid = (_uid(seed, k) for k in ("study", "series", "frame"))
    vox = np.asarray(volume.voxels)
    hu = np.rint(vox).astype(np.int32) if vox.dtype.kind == "f" else vox.astype(np.int32)
    lo, hi = (int(hu.min()), int(hu.max())) if hu.size else (0, 0)
    if lo >= -1024 and hi <= 65535 - 1024:
        intercept, stored, signed = -1024, hu + 1024, False
        bits = 12 if hi + 1024 <= 4095 else 16
    else:
        intercept, stored, signed = 0, np.clip(hu, -32768, 32767), True
        bits = 16
    stored = stored.astype(np.int16 if signed else np.uint16)
    desc = series_description if series_description is not None else meta.get("description", "CT")
    nk = vox.shape[2]
    written: list[Path] = []
    for k in range(nk):
        ds = _slice_dataset(k, nk, aff, sp, d, meta, phi, study_uid, series_uid, frame_uid, seed,
                            bits, signed, intercept, desc, series_number)
        frame = np.ascontiguousarray(stored[:, :, k].T)  # rows = j, columns = i
        ds.Rows, ds.Columns = frame.shape
        fm = FileMetaDataset()
        fm.MediaStorageSOPClassUID = CTImageStorage
        fm.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        fm.TransferSyntaxUID = ExplicitVRLittleEndian
        fm.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
        fm.ImplementationVersionName = "NEEDLEPLAN"
        ds.file_meta = fm
        ds.PixelData = frame.tobytes()
        if ts == RLELossless:
            ds.compress(RLELossless, frame, encoding_plugin="pydicom", generate_instance_uid=False)
        path = folder / f"{file_prefix}{k + 1:04d}.dcm"
        try:
            with atomic_path(path) as tmp:
                ds.save_as(tmp, enforce_file_format=True)
        except OSError as exc:
            raise OutputError(f"cannot write '{path}': {exc.strerror}", path=path) from None
        written.append(path)
    return written


def _slice_dataset(k, nk, aff, sp, d, meta, phi, study_uid, series_uid, frame_uid, seed, bits, signed,
                   intercept, desc, series_number) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = _uid(seed, series_uid, "instance", k)
    for tag in ("Study", "Series", "Acquisition", "Content"):
        setattr(ds, f"{tag}Date", FIXED_DATE)
        setattr(ds, f"{tag}Time", FIXED_TIME)
    ds.StudyDate = phi.get("StudyDate", FIXED_DATE) or FIXED_DATE
    ds.StudyTime = phi.get("StudyTime", FIXED_TIME) or FIXED_TIME
    ds.AccessionNumber = phi.get("AccessionNumber", "")
    ds.Modality = "CT"
    ds.Manufacturer = meta.get("manufacturer", "needleplan")
    if phi.get("InstitutionName"):
        ds.InstitutionName = phi["InstitutionName"]
    ds.ReferringPhysicianName = phi.get("ReferringPhysicianName", "")
    ds.StudyDescription = "SPINE CT"
    ds.SeriesDescription = str(desc)[:64]
    ds.ManufacturerModelName = "synthetic"
    ds.PatientName = phi.get("PatientName", "")
    ds.PatientID = phi.get("PatientID", "")
    ds.PatientBirthDate = phi.get("PatientBirthDate", "")
    ds.PatientSex = phi.get("PatientSex", "")
    if phi.get("PatientAge"):
        ds.PatientAge = phi["PatientAge"]
    ds.BodyPartExamined = "SPINE"
    ds.SliceThickness = _ds_str(sp[2])
    ds.KVP = "120"
    ds.SpacingBetweenSlices = _ds_str(sp[2])
    ds.PatientPosition = meta.get("patient_position") or "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = phi.get("StudyID", "1") or "1"
    ds.SeriesNumber = int(series_number)
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = k + 1
    ipp = aff[:3, :3] @ np.array([0.0, 0.0, float(k)]) + aff[:3, 3]
    ds.ImagePositionPatient = [_ds_str(v) for v in ipp]
    ds.ImageOrientationPatient = [_ds_str(v) for v in np.concatenate([d[:, 0], d[:, 1]])]
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = _ds_str(ipp @ d[:, 2])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelSpacing = [_ds_str(sp[1]), _ds_str(sp[0])]  # row spacing (j), column spacing (i)
    ds.BitsAllocated = 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.WindowCenter = ["40", "400"]
    ds.WindowWidth = ["400", "1800"]
    ds.RescaleIntercept = str(intercept)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    return ds

