"""The :class:`Volume`: a CT image in HU with its exact voxel-to-LPS affine."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Volume", "apply_affine", "axis_codes", "flip_to_lps"]

#: DICOM attributes that identify the patient; kept apart so exports can drop them.
PHI_KEYS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "OtherPatientIDs",
    "AccessionNumber",
    "InstitutionName",
    "ReferringPhysicianName",
    "StudyDate",
    "StudyTime",
    "StudyID",
)


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) homogeneous affine to points.

    Parameters
    ----------
    affine : (4, 4) array_like
    points : (..., 3) array_like

    Returns
    -------
    (..., 3) ndarray of float64

    Examples
    --------
    >>> apply_affine(np.diag([2.0, 3.0, 4.0, 1.0]), [1, 1, 1])
    array([2., 3., 4.])
    """
    affine = np.asarray(affine, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    return points @ affine[:3, :3].T + affine[:3, 3]


def axis_codes(ijk_to_lps: np.ndarray) -> tuple[str, str, str]:
    """Patient-axis letters that each array axis points toward (nibabel's ``aff2axcodes``).

    For a head-first supine axial CT with ``IOP = 1,0,0,0,1,0`` and slices sorted by
    ascending position this is ``('L', 'P', 'S')``.
    """
    pos = ("L", "P", "S")
    neg = ("R", "A", "I")
    rot = np.asarray(ijk_to_lps, dtype=np.float64)[:3, :3]
    codes = []
    for col in rot.T:
        ax = int(np.argmax(np.abs(col)))
        codes.append(pos[ax] if col[ax] > 0 else neg[ax])
    return tuple(codes)  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class Volume:
    """A CT volume in Hounsfield units with its geometry.

    Attributes
    ----------
    voxels : (I, J, K) ndarray, int16 or float32
        ``voxels[i, j, k]``: ``i`` is the column index, ``j`` the row index and ``k``
        the slice index of the source images (ITK/Slicer IJK order).  For DICOM this is
        ``pixel_array.T`` stacked along the slice normal.
    ijk_to_lps : (4, 4) ndarray of float64
        Maps voxel *centres* (i, j, k) to patient LPS millimetres (+x patient left,
        +y posterior, +z superior).  Column ``c`` of the 3x3 part is the step in mm of
        array axis ``c``.
    meta : dict
        Non-identifying metadata: ``series_uid``, ``study_uid``, ``modality``,
        ``patient_position`` (DICOM PatientPosition, e.g. ``"HFS"``), ``description``,
        ``source`` (path), ``manufacturer``, ``warnings`` (list of str) ...
    phi : dict
        Identifying DICOM fields (PatientName, PatientID, ...) kept apart so that
        anonymised exports simply do not read them.
    """

    voxels: np.ndarray
    ijk_to_lps: np.ndarray
    meta: dict = field(default_factory=dict)
    phi: dict = field(default_factory=dict)

    def __post_init__(self):
        vox = np.asarray(self.voxels)
        if vox.ndim != 3:
            raise ValueError(f"Volume voxels must be a 3-D array, got shape {vox.shape}")
        aff = np.asarray(self.ijk_to_lps, dtype=np.float64)
        if aff.shape != (4, 4):
            raise ValueError(f"ijk_to_lps must be (4, 4), got {aff.shape}")
        object.__setattr__(self, "voxels", vox)
        object.__setattr__(self, "ijk_to_lps", aff)

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(I, J, K)``."""
        return tuple(self.voxels.shape)  # type: ignore[return-value]

    @property
    def spacing_mm(self) -> np.ndarray:
        """(3,) voxel size in mm along array axes i, j, k."""
        return np.linalg.norm(self.ijk_to_lps[:3, :3], axis=0)

    @property
    def direction(self) -> np.ndarray:
        """(3, 3) unit direction cosines; column ``c`` is array axis ``c`` in LPS."""
        return self.ijk_to_lps[:3, :3] / self.spacing_mm

    @property
    def origin_lps(self) -> np.ndarray:
        """(3,) LPS mm of the centre of voxel (0, 0, 0)."""
        return self.ijk_to_lps[:3, 3].copy()

    @property
    def lps_to_ijk(self) -> np.ndarray:
        """(4, 4) inverse of :attr:`ijk_to_lps`."""
        return np.linalg.inv(self.ijk_to_lps)

    @property
    def axis_codes(self) -> tuple[str, str, str]:
        """Patient-axis letters of the array axes, e.g. ``('L', 'P', 'S')``."""
        return axis_codes(self.ijk_to_lps)

    def to_lps(self, ijk) -> np.ndarray:
        """Voxel indices ``(..., 3)`` (i, j, k; may be fractional) to LPS mm ``(..., 3)``."""
        return apply_affine(self.ijk_to_lps, ijk)

    def to_ijk(self, points_lps) -> np.ndarray:
        """LPS mm ``(..., 3)`` to float voxel indices ``(..., 3)``; rounding is the caller's."""
        return apply_affine(self.lps_to_ijk, points_lps)

    def bounds_lps(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned LPS bounding box ``(min (3,), max (3,))`` of the voxel centres."""
        corners = np.array(
            [[i, j, k] for i in (0, self.shape[0] - 1) for j in (0, self.shape[1] - 1)
             for k in (0, self.shape[2] - 1)],
            dtype=np.float64,
        )
        pts = self.to_lps(corners)
        return pts.min(axis=0), pts.max(axis=0)

    @property
    def series_uid(self) -> str | None:
        return self.meta.get("series_uid")

    @property
    def patient_position(self) -> str | None:
        """DICOM PatientPosition (``HFS``, ``HFP``, ``FFS`` ...) or None when unknown."""
        return self.meta.get("patient_position")

    def with_voxels(self, voxels: np.ndarray) -> "Volume":
        """A copy on the same grid with other voxel values (e.g. a resampled or masked array)."""
        return dataclasses.replace(self, voxels=voxels)

    def __repr__(self) -> str:
        sp = ", ".join(f"{s:.3g}" for s in self.spacing_mm)
        return (f"Volume(shape={self.shape}, spacing_mm=({sp}), axes={''.join(self.axis_codes)}, "
                f"dtype={self.voxels.dtype}, series_uid={self.series_uid!r})")


def flip_to_lps(volume: Volume) -> Volume:
    """The same voxels with array axes flipped so that they point to L, P and S.

    Only flips (no resampling, no axis permutation): for tools that ignore direction
    cosines, such as ``plastimatch drr``.  The result's ``ijk_to_lps`` is diagonal with
    positive spacings and maps every voxel to the same LPS point as before.

    Raises
    ------
    needleplan.errors.GeometryError
        The volume's axes are oblique or permuted (not a diagonal affine).
    """
    from needleplan.errors import GeometryError

    aff = volume.ijk_to_lps.copy()
    rot = aff[:3, :3]
    if not np.allclose(rot, np.diag(np.diag(rot))):
        raise GeometryError(f"{volume!r} has oblique or permuted axes; flip_to_lps needs a diagonal affine")
    arr = volume.voxels
    for ax in range(3):
        if aff[ax, ax] < 0:
            arr = np.flip(arr, ax)
            aff[:3, 3] += aff[:3, ax] * (arr.shape[ax] - 1)
            aff[:3, ax] *= -1
    return dataclasses.replace(volume, voxels=arr, ijk_to_lps=aff)

