"""NIfTI / NRRD / MHA images through SimpleITK: CT volumes and label maps.

SimpleITK already works in LPS (it converts NIfTI's RAS affine on reading and writing), so
the affine is simply ``direction @ diag(spacing)`` plus the origin.  Arrays: SimpleITK's
``GetArrayFromImage`` is (k, j, i); needleplan's ``voxels[i, j, k]`` is its transpose (a
view, no copy).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from needleplan.errors import GeometryError, InputError, OutputError
from needleplan.io._atomic import atomic_path
from needleplan.io._warnings import DefectLog
from needleplan.io.volume import Volume

__all__ = ["IMAGE_SUFFIXES", "image_suffix", "load_image_volume", "read_label_image",
           "write_label_image", "write_volume"]

#: File suffixes read and written through SimpleITK.
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
_WRITE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


def _sitk():
    """SimpleITK, imported on first use (it adds ~40 MB and 0.2 s to a DICOM-only run)."""
    import SimpleITK

    return SimpleITK


def image_suffix(path: str | os.PathLike) -> str | None:
    """The recognised image suffix of ``path`` (lower case) or None."""
    name = str(path).lower()
    for suf in IMAGE_SUFFIXES:
        if name.endswith(suf):
            return suf
    return None


def _affine_of(img: "sitk.Image") -> np.ndarray:
    d = np.array(img.GetDirection(), dtype=np.float64).reshape(3, 3)
    aff = np.eye(4)
    aff[:3, :3] = d * np.array(img.GetSpacing(), dtype=np.float64)
    aff[:3, 3] = img.GetOrigin()
    return aff


def _grid_of(ijk_to_lps, *, what: str) -> tuple[tuple, tuple, tuple]:
    """(spacing, direction, origin) for SimpleITK; refuses sheared affines."""
    aff = np.asarray(ijk_to_lps, dtype=np.float64)
    if aff.shape != (4, 4) or not np.isfinite(aff).all():
        raise GeometryError(f"{what}: ijk_to_lps must be a finite (4, 4) matrix")
    spacing = np.linalg.norm(aff[:3, :3], axis=0)
    if (spacing <= 0).any():
        raise GeometryError(f"{what}: ijk_to_lps has a zero-length axis")
    direction = aff[:3, :3] / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        raise GeometryError(f"{what}: ijk_to_lps is not orthogonal (sheared); NIfTI/NRRD/MHA "
                            "cannot store it")
    return tuple(spacing), tuple(direction.ravel()), tuple(aff[:3, 3])


def _to_sitk(array: np.ndarray, ijk_to_lps, *, what: str) -> "sitk.Image":
    sitk = _sitk()
    spacing, direction, origin = _grid_of(ijk_to_lps, what=what)
    img = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(array).transpose(2, 1, 0)))
    img.SetSpacing(spacing)
    img.SetDirection(direction)
    img.SetOrigin(origin)
    return img


def _read(path: Path, *, max_bytes: int | None = None) -> "sitk.Image":
    sitk = _sitk()
    if not path.exists():
        raise InputError(f"'{path}' does not exist", path=path)
    if path.is_dir():
        raise InputError(f"'{path}' is a folder, expected an image file", path=path)
    if path.stat().st_size == 0:
        raise InputError(f"'{path}' is an empty file (0 bytes)", path=path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        size = reader.GetSize()
        if len(size) < 3 or (len(size) > 3 and any(s != 1 for s in size[3:])):
            raise InputError(f"'{path}' is a {len(size)}-D image of size {size}; a 3-D volume "
                             "is needed", path=path)
        if reader.GetNumberOfComponents() != 1:
            raise InputError(f"'{path}' has {reader.GetNumberOfComponents()} components per "
                             "voxel; a scalar volume is needed", path=path)
        if max_bytes is not None:
            need = int(np.prod(size, dtype=np.float64)) * 4
            if need > max_bytes:
                raise InputError(f"'{path}' claims a {'x'.join(map(str, size))} image "
                                 f"({need / 1024**3:.1f} GB), more than the "
                                 f"{max_bytes / 1024**3:.1f} GB available; refusing to load it",
                                 path=path)
        img = reader.Execute()
    except RuntimeError as exc:
        first = next((ln.strip() for ln in str(exc).splitlines()
                      if ln.strip() and "sitk::ERROR" in ln), "")
        detail = first.split("sitk::ERROR:")[-1].strip()[:150] or "unreadable image"
        raise InputError(f"cannot read '{path}': {detail}", path=path) from exc
    if img.GetDimension() > 3:
        img = img[:, :, :, 0]
    return img


def load_image_volume(path: str | os.PathLike, *, strict: bool = False,
                      progress: Callable[[int, int, str], None] | None = None) -> Volume:
    """Read a NIfTI / NRRD / MHA CT volume into a :class:`Volume` (HU, LPS affine).

    Voxels are int16 when all values are integers in the int16 range, else float32.
    """
    sitk = _sitk()
    from needleplan.io._dicom_load import memory_limit_bytes

    path = Path(path).expanduser()
    log = DefectLog(strict=strict, path=str(path))
    if progress:
        progress(0, 1, "reading image")
    img = _read(path, max_bytes=memory_limit_bytes())
    aff = _affine_of(img)
    spacing = np.array(img.GetSpacing())
    if not (np.isfinite(aff).all() and (spacing > 0).all()):
        raise GeometryError(f"'{path}' has an invalid spacing {tuple(spacing)}", path=path)
    arr = sitk.GetArrayFromImage(img)  # (k, j, i)
    del img
    if arr.dtype != np.int16:
        if np.issubdtype(arr.dtype, np.integer):
            lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
            arr = arr.astype(np.int16) if -32768 <= lo and hi <= 32767 else arr.astype(np.float32)
        else:
            if not np.isfinite(arr).all():
                log.fixable(f"'{path}': non-finite voxel values replaced by -1024 HU",
                            error_cls=InputError)
                arr = np.where(np.isfinite(arr), arr, -1024)
            lo, hi = float(arr.min()), float(arr.max())
            if -32768 <= lo and hi <= 32767 and np.array_equal(arr, np.round(arr)):
                arr = arr.astype(np.int16)
            else:
                arr = arr.astype(np.float32, copy=False)
    if progress:
        progress(1, 1, "reading image")
    meta = {
        "format": image_suffix(path).lstrip(".") if image_suffix(path) else "image",
        "source": os.path.abspath(path),
        "series_uid": None,
        "study_uid": None,
        "modality": "CT",
        "patient_position": None,
        "description": path.name,
        "manufacturer": "",
        "transfer_syntax": None,
        "n_slices": int(arr.shape[0]),
        "warnings": list(log.messages),
    }
    return Volume(voxels=arr.transpose(2, 1, 0), ijk_to_lps=aff, meta=meta, phi={})


def _check_out_suffix(path: Path) -> None:
    name = str(path).lower()
    if not any(name.endswith(s) for s in _WRITE_SUFFIXES):
        raise OutputError(f"cannot write '{path}': use one of {', '.join(_WRITE_SUFFIXES)}",
                          path=path)


def _write(img: "sitk.Image", path: Path) -> None:
    sitk = _sitk()
    _check_out_suffix(path)
    with atomic_path(path) as tmp:
        try:
            sitk.WriteImage(img, str(tmp), useCompression=True)
        except RuntimeError as exc:
            raise OutputError(f"cannot write '{path}': SimpleITK failed", path=path) from exc


def _label_dtype(labels: np.ndarray, what: str) -> np.ndarray:
    if labels.dtype == bool:
        return labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.array_equal(labels, np.round(labels)):
            raise ValueError(f"{what}: labels must be integers, got {labels.dtype} with "
                             "fractional values")
    if labels.size == 0:
        return labels.astype(np.uint8)
    lo, hi = int(labels.min()), int(labels.max())
    if lo >= 0 and hi < 256:
        return labels.astype(np.uint8, copy=False)
    if lo >= 0 and hi < 65536:
        return labels.astype(np.uint16, copy=False)
    return labels.astype(np.int32, copy=False)


def write_label_image(labels: np.ndarray, ijk_to_lps: np.ndarray,
                      path: str | os.PathLike) -> Path:
    """Write a label map (``labels[i, j, k]``) as NIfTI (.nii/.nii.gz), NRRD or MHA.

    Parameters
    ----------
    labels : (I, J, K) array_like of int or bool
        Stored as uint8 when the labels fit, else uint16 / int32.
    ijk_to_lps : (4, 4) array_like
        Voxel-centre to LPS mm affine (must be orthogonal).
    path : str or os.PathLike
        Output file; written atomically (temporary file, then rename).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputError
        Unknown suffix, or the folder cannot be written.
    GeometryError
        Sheared affine.
    """
    path = Path(path)
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be a 3-D array, got shape {labels.shape}")
    img = _to_sitk(_label_dtype(labels, str(path)), ijk_to_lps, what=f"'{path}'")
    _write(img, path)
    return path


def write_volume(volume: Volume, path: str | os.PathLike) -> Path:
    """Write a :class:`Volume`'s voxels and geometry as NIfTI, NRRD or MHA (atomically)."""
    path = Path(path)
    img = _to_sitk(volume.voxels, volume.ijk_to_lps, what=f"'{path}'")
    _write(img, path)
    return path


def _same_grid(shape, aff, like: Volume) -> bool:
    return tuple(shape) == tuple(like.shape) and np.allclose(aff, like.ijk_to_lps, atol=1e-3)


def read_label_image(path: str | os.PathLike, *, like: Volume | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Read a label map; with ``like``, resample it (nearest neighbour) onto that CT's grid.

    Parameters
    ----------
    path : str or os.PathLike
        NIfTI / NRRD / MHA label image.
    like : Volume, optional
        Target grid.  Voxels outside the label image get label 0.

    Returns
    -------
    labels : (I, J, K) ndarray of integer dtype
        ``labels[i, j, k]`` in the file's (or ``like``'s) IJK order.
    ijk_to_lps : (4, 4) ndarray

    Raises
    ------
    InputError
        Missing or unreadable file, not 3-D, or not integer-valued.
    """
    sitk = _sitk()
    path = Path(path).expanduser()
    img = _read(path)
    arr = sitk.GetArrayViewFromImage(img)
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.array_equal(arr, np.round(arr)):
            raise InputError(f"'{path}' is not a label map (it has fractional values)",
                             path=path)
        img = sitk.Cast(img, sitk.sitkInt32)
    aff = _affine_of(img)
    size = img.GetSize()
    if like is not None and not _same_grid(size, aff, like):
        ref = sitk.Image(list(like.shape), sitk.sitkUInt8)
        sp, d, o = _grid_of(like.ijk_to_lps, what="like")
        ref.SetSpacing(sp)
        ref.SetDirection(d)
        ref.SetOrigin(o)
        img = sitk.Resample(img, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                            img.GetPixelID())
        aff = like.ijk_to_lps.copy()
    labels = sitk.GetArrayFromImage(img).transpose(2, 1, 0)
    if not np.issubdtype(labels.dtype, np.integer):  # pragma: no cover - cast above
        labels = labels.astype(np.int32)
    return labels, aff
