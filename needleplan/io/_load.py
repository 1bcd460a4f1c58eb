"""``load_ct``: one entry point for a DICOM folder, a DICOM file, or a NIfTI/NRRD/MHA file.

Bad-input policy
----------------
Rejected (a one-line :class:`~needleplan.errors.InputError` subclass naming the path):
missing path, empty folder, folder without DICOM, a single file that is not DICOM / empty /
cut short, no CT series (or the chosen series is not CT), fewer than 2 usable slices,
irregular slice spacing, more than 3 consecutive missing slices, non-orthonormal
orientation, missing ImagePositionPatient / ImageOrientationPatient / PixelSpacing, zero
pixel spacing, zero rescale slope, an image larger than the memory limit (checked from the
headers, before allocating), every file with truncated pixel data, undecodable or
unsupported transfer syntax, multi-frame or colour images, gantry tilt above 30 degrees.

Repaired with a :class:`~needleplan.io.NeedlePlanWarning`, also listed in
``meta["warnings"]`` (errors when ``strict=True``): damaged DICOM files in a folder
(skipped), files with truncated pixel data (dropped), up to 3 consecutive missing slices
(linear interpolation), duplicate slices (dropped), slices of another size or orientation
and localizers (dropped), gantry tilt (slices shifted onto an orthogonal grid).

Not a defect: foreign files in a folder (skipped), several series in one folder
(interleaved or not: the CT series with most files is loaded, ``series_uid`` picks another).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from needleplan.errors import InputError
from needleplan.io._dicom_load import load_dicom_series, select_series
from needleplan.io._dicom_scan import read_header, scan_path
from needleplan.io._itk import image_suffix, load_image_volume
from needleplan.io.volume import Volume

__all__ = ["load_ct"]


def load_ct(path: str | os.PathLike, *, series_uid: str | None = None, strict: bool = False,
            progress: Callable[[int, int, str], None] | None = None) -> Volume:
    """Load a CT volume in Hounsfield units with its exact voxel-to-LPS affine.

    Parameters
    ----------
    path : str or os.PathLike
        A DICOM folder (searched recursively; with several series the CT series with the
        most slices is taken unless ``series_uid`` is given), one DICOM file of a series
        (its whole series is loaded from that file's folder), or a NIfTI (``.nii``,
        ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``) or MetaImage (``.mha``, ``.mhd``) file.
    series_uid : str, optional
        SeriesInstanceUID to load from a DICOM folder.
    strict : bool
        Turn fixable defects (localizers or odd-sized slices mixed in, duplicate or missing
        slices, gantry tilt) into errors instead of repairing them with a
        :class:`~needleplan.io.NeedlePlanWarning`.
    progress : callable, optional
        ``progress(done, total, what)``, called during long steps.

    Returns
    -------
    Volume
        ``voxels[i, j, k]`` (column, row, slice) int16 HU when the values fit, else
        float32; ``ijk_to_lps`` maps voxel centres to patient LPS mm.  For DICOM the slices
        are sorted along the slice normal and their spacing comes from the positions;
        ``meta["warnings"]`` lists every repaired defect.

    Raises
    ------
    needleplan.errors.InputError
        Missing path, empty folder, no DICOM, unreadable file.
    needleplan.errors.DicomSeriesError
        No CT series, unsupported transfer syntax, truncated pixels, image too large ...
    needleplan.errors.GeometryError
        Unusable geometry (non-orthogonal orientation, irregular spacing, no position ...).

    Notes
    -----
    NIfTI affines are RAS; SimpleITK converts them, so the result is LPS for every format.
    ``voxels`` is the transposed view of a C-ordered ``(K, J, I)`` array (Fortran order
    in ``(I, J, K)``), so ``voxels.transpose(2, 1, 0)`` hands SimpleITK / VTK a contiguous
    array without copying.  Only headers are read before the memory check, so a header that
    claims a gigantic image is refused before anything is allocated.  ``meta`` holds
    ``format``, ``source``, ``series_uid``, ``study_uid``, ``modality``, ``patient_position``,
    ``description``, ``manufacturer``, ``transfer_syntax``, ``n_slices``, ``n_files``,
    ``slice_thickness_mm`` (header value; the spacing comes from the positions),
    ``gantry_tilt_deg``, ``other_series`` (UIDs of the other series found) and ``warnings``.

    Examples
    --------
    >>> vol = load_ct("ct_folder")  # doctest: +SKIP
    >>> vol.axis_codes  # head-first supine axial series  # doctest: +SKIP
    ('L', 'P', 'S')
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"'{p}' does not exist", path=p)
    if p.is_file() and image_suffix(p):
        return load_image_volume(p, strict=strict, progress=progress)
    if p.is_file():
        try:
            read_header(p)
        except InputError as exc:
            raise InputError(f"{exc} (expected DICOM, NIfTI .nii/.nii.gz, NRRD or MHA)",
                             path=p) from exc
    scan = scan_path(p, progress=progress)
    chosen = select_series(scan, series_uid=series_uid, path=str(p))
    return load_dicom_series(chosen, source=str(p), strict=strict, progress=progress,
                             other_series=list(scan), damaged=scan.damaged)
