"""Data model of the segmented spine: :class:`Anatomy` and its per-vertebra landmarks.

All points and vectors are float64 arrays in patient LPS millimetres.  Label maps are
on the CT grid (same shape and ``ijk_to_lps`` as the :class:`~needleplan.io.Volume`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "VERSE_NAMES",
    "PART_BODY",
    "PART_PEDICLE_LEFT",
    "PART_PEDICLE_RIGHT",
    "PART_ARCH",
    "level_name",
    "level_label",
    "Plane",
    "PedicleLandmarks",
    "VertebraAnatomy",
    "Anatomy",
]

#: VerSe label number -> level name (1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 26 sacrum, 28 T13).
VERSE_NAMES: dict[int, str] = {
    **{i: f"C{i}" for i in range(1, 8)},
    **{i + 7: f"T{i}" for i in range(1, 13)},
    **{i + 19: f"L{i}" for i in range(1, 7)},
    26: "S",
    28: "T13",
}
_NAME_TO_LABEL = {v: k for k, v in VERSE_NAMES.items()}
_NAME_TO_LABEL["S1"] = 26
_NAME_TO_LABEL["SACRUM"] = 26

#: Values of :attr:`Anatomy.parts`.
PART_BODY = 1
PART_PEDICLE_LEFT = 2
PART_PEDICLE_RIGHT = 3
PART_ARCH = 4  # lamina, spinous/transverse/articular processes: the rest of the vertebra


def level_name(label: int) -> str:
    """VerSe label number to level name (``20 -> 'L1'``)."""
    try:
        return VERSE_NAMES[int(label)]
    except KeyError:
        raise ValueError(f"{label} is not a VerSe vertebra label (1-26, 28)") from None


def level_label(name: str) -> int:
    """Level name to VerSe label number (``'L1' -> 20``; case-insensitive)."""
    try:
        return _NAME_TO_LABEL[str(name).strip().upper()]
    except KeyError:
        raise ValueError(f"unknown vertebral level {name!r}; use C1-C7, T1-T13, L1-L6 or S") from None


def _vec(a) -> list[float]:
    return [round(float(x), 4) for x in np.asarray(a, dtype=np.float64).ravel()]


@dataclass
class Plane:
    """A plane through ``point_lps`` with unit ``normal_lps`` (LPS mm)."""

    point_lps: np.ndarray
    normal_lps: np.ndarray

    def signed_distance_mm(self, points_lps) -> np.ndarray:
        """Signed distance (mm) of ``(..., 3)`` LPS points, positive on the normal's side."""
        p = np.asarray(points_lps, dtype=np.float64)
        return (p - self.point_lps) @ self.normal_lps

    def to_dict(self) -> dict:
        return {"point_lps": _vec(self.point_lps), "normal_lps": _vec(self.normal_lps)}


@dataclass
class PedicleLandmarks:
    """One pedicle.

    Attributes
    ----------
    side : {'left', 'right'}
        The patient's side.
    isthmus_center_lps : (3,) ndarray
        Centre of the narrowest cross-section, LPS mm.
    axis_lps : (3,) ndarray
        Unit pedicle axis pointing from posterior (entry) to anterior (into the body).
    width_mm, height_mm : float
        Isthmus size perpendicular to the axis: transverse width and craniocaudal height.
    """

    side: str
    isthmus_center_lps: np.ndarray
    axis_lps: np.ndarray
    width_mm: float
    height_mm: float

    def to_dict(self) -> dict:
        return {
            "side": self.side,
            "isthmus_center_lps": _vec(self.isthmus_center_lps),
            "axis_lps": _vec(self.axis_lps),
            "width_mm": round(float(self.width_mm), 3),
            "height_mm": round(float(self.height_mm), 3),
        }


@dataclass
class VertebraAnatomy:
    """Landmarks and measurements of one vertebra (LPS mm).

    Attributes
    ----------
    label : int
        VerSe label number (``name`` follows from it).
    body_center_lps : (3,) ndarray
        Centroid of the vertebral body.
    ap_axis_lps : (3,) ndarray
        Unit vector of the body's antero-posterior axis, pointing anterior.
    left_lps : (3,) ndarray
        Unit vector toward the patient's left, normal of the midsagittal plane.
    superior_endplate, inferior_endplate : Plane or None
        Endplate planes; normals point cranially (+S-ish) for both.
    body_depth_mm : float
        Antero-posterior depth of the body along ``ap_axis_lps``.
    posterior_wall_lps, anterior_wall_lps : (3,) ndarray
        Where the AP axis through the body centre meets the posterior/anterior cortex.
    pedicles : dict
        ``{'left': PedicleLandmarks, 'right': PedicleLandmarks}``; a side is absent when
        that pedicle was not found.
    body_heights_mm : dict
        ``{'anterior', 'middle', 'posterior'}`` heights at 15/50/85 % of the AP depth,
        edge to edge (the body's physical height there).
    body_heights_report_mm : dict
        The same heights as TotalSegmentator's spine report counts them: the span between
        the first and last samples inside the body when the line is sampled every half
        voxel from the body's centre (multiples of half a voxel; on average half a voxel
        shorter than ``body_heights_mm``).  For comparison with that report.
    height_ratio : float or None
        min/max of the three heights; < 0.8 suggests a fracture.
    genant_grade : int or None
        0 normal, 1 mild (20-25 % loss), 2 moderate (25-40 %), 3 severe (> 40 %).
    posterior_wall_intact : bool or None
    confidence : float
        0..1 confidence in the level name.
    flags : list of str
        Free-text findings for the planner and the report.
    """

    label: int
    body_center_lps: np.ndarray
    ap_axis_lps: np.ndarray
    left_lps: np.ndarray
    superior_endplate: Plane | None = None
    inferior_endplate: Plane | None = None
    body_depth_mm: float = float("nan")
    posterior_wall_lps: np.ndarray | None = None
    anterior_wall_lps: np.ndarray | None = None
    pedicles: dict[str, PedicleLandmarks] = field(default_factory=dict)
    body_heights_mm: dict[str, float] = field(default_factory=dict)
    height_ratio: float | None = None
    body_heights_report_mm: dict[str, float] = field(default_factory=dict)
    genant_grade: int | None = None
    posterior_wall_intact: bool | None = None
    confidence: float = 1.0
    flags: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return level_name(self.label)

    @property
    def midsagittal_plane(self) -> Plane:
        """The body's midsagittal plane (normal toward patient left)."""
        return Plane(np.asarray(self.body_center_lps, float), np.asarray(self.left_lps, float))

    def to_dict(self) -> dict:
        d = {
            "label": int(self.label),
            "level": self.name,
            "body_center_lps": _vec(self.body_center_lps),
            "ap_axis_lps": _vec(self.ap_axis_lps),
            "left_lps": _vec(self.left_lps),
            "superior_endplate": self.superior_endplate.to_dict() if self.superior_endplate else None,
            "inferior_endplate": self.inferior_endplate.to_dict() if self.inferior_endplate else None,
            "body_depth_mm": None if not np.isfinite(self.body_depth_mm) else round(float(self.body_depth_mm), 3),
            "posterior_wall_lps": None if self.posterior_wall_lps is None else _vec(self.posterior_wall_lps),
            "anterior_wall_lps": None if self.anterior_wall_lps is None else _vec(self.anterior_wall_lps),
            "pedicles": {k: p.to_dict() for k, p in self.pedicles.items()},
            "body_heights_mm": {k: round(float(v), 3) for k, v in self.body_heights_mm.items()},
            "body_heights_report_mm": {k: round(float(v), 3) for k, v in self.body_heights_report_mm.items()},
            "height_ratio": None if self.height_ratio is None else round(float(self.height_ratio), 4),
            "genant_grade": self.genant_grade,
            "posterior_wall_intact": self.posterior_wall_intact,
            "confidence": round(float(self.confidence), 3),
            "flags": list(self.flags),
        }
        return d


@dataclass
class Anatomy:
    """The segmented spine on the CT grid.

    Attributes
    ----------
    labels : (I, J, K) ndarray of uint8
        Vertebra label map with VerSe numbers (0 = background).
    parts : (I, J, K) ndarray of uint8
        Per-voxel part inside its vertebra: :data:`PART_BODY`, :data:`PART_PEDICLE_LEFT`,
        :data:`PART_PEDICLE_RIGHT`, :data:`PART_ARCH` (0 outside vertebrae).  The pedicles of
        vertebra ``v`` are ``(labels == v) & (parts == PART_PEDICLE_LEFT)``.
    canal : (I, J, K) ndarray of bool
        The spinal canal (space enclosed by the vertebral foramina), continuous across levels.
    ijk_to_lps : (4, 4) ndarray
        The CT grid's affine (same as the Volume's).
    vertebrae : dict
        ``{label: VertebraAnatomy}`` for every vertebra wholly or partly in view.
    method : str
        How it was made: ``"classical"``, ``"imported:<file>"``, ``"phantom-truth"`` ...
    naming_confidence : float
        0..1 confidence in the level names as a whole.
    messages : list of str
        Findings worth showing the user (e.g. "no sacrum in view: levels counted from T12 rib").
    """

    labels: np.ndarray
    parts: np.ndarray
    canal: np.ndarray
    ijk_to_lps: np.ndarray
    vertebrae: dict[int, VertebraAnatomy] = field(default_factory=dict)
    method: str = "classical"
    naming_confidence: float = 1.0
    messages: list[str] = field(default_factory=list)

    def vertebra(self, level: str | int) -> VertebraAnatomy:
        """Look up a vertebra by name (``'L1'``) or VerSe label (20)."""
        lab = level if isinstance(level, (int, np.integer)) else level_label(level)
        try:
            return self.vertebrae[int(lab)]
        except KeyError:
            have = ", ".join(v.name for v in self.sorted_vertebrae()) or "none"
            raise ValueError(f"level {level_name(int(lab))} is not in the segmentation (found: {have})") from None

    def sorted_vertebrae(self) -> list[VertebraAnatomy]:
        """Vertebrae from cranial to caudal."""
        return [self.vertebrae[k] for k in sorted(self.vertebrae)]

    def vertebra_mask(self, label: int) -> np.ndarray:
        return self.labels == int(label)

    def pedicle_mask(self, label: int, side: str) -> np.ndarray:
        part = PART_PEDICLE_LEFT if side == "left" else PART_PEDICLE_RIGHT
        return (self.labels == int(label)) & (self.parts == part)

    def body_mask(self, label: int) -> np.ndarray:
        return (self.labels == int(label)) & (self.parts == PART_BODY)

    def to_dict(self) -> dict:
        """JSON-ready summary (anatomy.json); label maps are written separately as NIfTI."""
        return {
            "schema": "needleplan.anatomy/1",
            "coordinate_system": "LPS",
            "units": "mm",
            "method": self.method,
            "naming_confidence": round(float(self.naming_confidence), 3),
            "messages": list(self.messages),
            "ijk_to_lps": np.asarray(self.ijk_to_lps, float).round(6).tolist(),
            "vertebrae": [v.to_dict() for v in self.sorted_vertebrae()],
        }
