"""Tiny synthetic DICOM CT series built from pydicom Datasets (16x16 pixels, a few slices)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

ROOT_UID = "1.2.826.0.1.3680043.10.1234."


def expected_raw(rows: int, cols: int, k: int) -> np.ndarray:
    """Stored value of slice k: row j, column i -> 16*j + i + 300*k (distinct per voxel)."""
    j, i = np.mgrid[0:rows, 0:cols]
    return (16 * j + i + 300 * k).astype(np.int16)


def ct_dataset(k: int, *, rows=16, cols=16, pixel_spacing=(0.5, 0.75), slice_mm=2.0,
               iop=(1, 0, 0, 0, 1, 0), origin=(-4.0, -6.0, 10.0), series_uid="1.2.3.4",
               study_uid="1.2.3", modality="CT", slope=1, intercept=-1024,
               patient_position="HFS", position=None, pixels=None, instance=None) -> Dataset:
    """One CT slice as a pydicom Dataset (explicit VR little endian)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    sop_uid = generate_uid(prefix=ROOT_UID)
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.Modality = modality
    ds.PatientName = "Test^Patient"
    ds.PatientID = "ID123"
    ds.PatientBirthDate = "19700101"
    ds.PatientPosition = patient_position
    ds.SeriesDescription = "synthetic"
    ds.Manufacturer = "needleplan-tests"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceNumber = instance if instance is not None else k + 1
    ds.ImageOrientationPatient = [float(v) for v in iop]
    iop_a = np.asarray(iop, dtype=float)
    normal = np.cross(iop_a[:3], iop_a[3:])
    if position is None:
        position = np.asarray(origin, dtype=float) + k * slice_mm * normal
    ds.ImagePositionPatient = [round(float(v), 6) for v in position]
    ds.PixelSpacing = [float(v) for v in pixel_spacing]
    ds.SliceThickness = slice_mm
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    if pixels is None:
        pixels = expected_raw(rows, cols, k)
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<i2").tobytes()
    return ds


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def make_ct_series(tmp_path):
    """Factory: ``make_ct_series(name="ct", n=6, **ct_dataset options, edit=None)`` -> folder.

    Files are named in *reverse* geometric order with scrambled InstanceNumbers, so a
    loader that sorts by name or InstanceNumber gets the volume upside down.
    ``edit(ds, k)`` may modify (or return a replacement for) each dataset before saving;
    returning False drops that slice.
    """

    def make(name: str = "ct", n: int = 6, *, edit=None, folder: Path | None = None,
             prefix: str = "", **kw) -> Path:
        out = folder or (tmp_path / name)
        out.mkdir(parents=True, exist_ok=True)
        order = np.random.default_rng(n).permutation(n)
        for k in range(n):
            ds = ct_dataset(k, instance=int(order[k]) + 1, **kw)
            if edit is not None:
                res = edit(ds, k)
                if res is False:
                    continue
                if isinstance(res, Dataset):
                    ds = res
            save(ds, out / f"{prefix}IM{n - k:04d}.dcm")
        return out

    return make


def read_ds(path: Path) -> Dataset:
    return pydicom.dcmread(path)
