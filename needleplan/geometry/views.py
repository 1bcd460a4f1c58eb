"""The perspective C-arm model: geometry, views (poses) and exact pinhole projection.

Conventions
-----------
A view is given by the isocentre, the unit vector ``detector_lps`` from the isocentre
toward the detector (the angle convention of :mod:`needleplan.geometry.carm`) and the
image "up" direction ``up_lps`` (perpendicular to ``detector_lps``).  The X-ray source
sits at ``isocenter - source_to_isocenter_mm * detector_lps``; the detector plane is
perpendicular to ``detector_lps`` at ``source_to_detector_mm`` from the source.

**Image orientation** (what the monitor shows): the image is seen from the detector
looking toward the source, with ``up_lps`` at the top.  By default ``up_lps`` is the
patient's head (superior) projected onto the detector plane, so the head is up in AP,
lateral, oblique and bull's-eye views; image right is ``up x detector``.  This gives the
familiar pictures: supine AP -> patient left on the image right (face to face); prone
PA (detector over the back) -> patient right on the image right (as seen standing over
the patient); left lateral -> posterior on the image right.  Rendered images carry
orientation letters (:func:`orientation_letters`) so nobody has to remember this.

**Pixel coordinates** are ``(col, row)`` with ``(0, 0)`` the centre of the top-left
pixel, columns increasing to the image right and rows downward.  The central ray (source
through isocentre) hits the centre of the detector, pixel ``((cols-1)/2, (rows-1)/2)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from needleplan.geometry import carm
from needleplan.geometry.lines import unit

__all__ = [
    "CArmGeometry",
    "CArmView",
    "CArmPose",
    "default_up_lps",
    "view_for_angles",
    "view_for_direction",
    "bullseye_view",
    "progression_view",
    "ap_view",
    "lateral_view",
    "needle_segment",
    "project_points",
    "pixel_rays",
    "orientation_letters",
]

_L = np.array([1.0, 0.0, 0.0])
_P = np.array([0.0, 1.0, 0.0])
_S = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class CArmGeometry:
    """Fixed dimensions of the C-arm (mm) and the detector matrix.

    Attributes
    ----------
    source_to_isocenter_mm : float
        Source-to-axis distance (SAD).
    source_to_detector_mm : float
        Source-to-image distance (SID); must exceed ``source_to_isocenter_mm``.
    detector_size_mm : float
        Side of the square detector.
    detector_pixels : int
        Pixels per side of the detector matrix.
    """

    source_to_isocenter_mm: float = 800.0
    source_to_detector_mm: float = 1200.0
    detector_size_mm: float = 300.0
    detector_pixels: int = 512

    def __post_init__(self):
        if not (0 < self.source_to_isocenter_mm < self.source_to_detector_mm):
            raise ValueError("C-arm geometry: need 0 < source_to_isocenter_mm < source_to_detector_mm, "
                             f"got {self.source_to_isocenter_mm} and {self.source_to_detector_mm}")
        if not self.detector_size_mm > 0 or int(self.detector_pixels) < 2:
            raise ValueError("C-arm geometry: detector_size_mm must be > 0 and detector_pixels >= 2")
        object.__setattr__(self, "detector_pixels", int(self.detector_pixels))

    @property
    def pixel_mm(self) -> float:
        """Detector pixel pitch (mm)."""
        return self.detector_size_mm / self.detector_pixels

    @property
    def magnification(self) -> float:
        """Magnification of the isocentre plane, ``SID / SAD``."""
        return self.source_to_detector_mm / self.source_to_isocenter_mm

    @property
    def field_of_view_mm(self) -> float:
        """Side of the field covered at the isocentre (mm)."""
        return self.detector_size_mm / self.magnification

    def with_pixels(self, n: int | None) -> "CArmGeometry":
        """The same geometry with another detector matrix (same physical size)."""
        if n is None or int(n) == self.detector_pixels:
            return self
        return dataclasses.replace(self, detector_pixels=int(n))


@dataclass(frozen=True, eq=False)
class CArmView:
    """One C-arm pose: where the isocentre is and where the detector looks from.

    Attributes
    ----------
    isocenter_lps : (3,) ndarray
    detector_lps : (3,) ndarray
        Unit vector isocentre -> detector (beam travels along it).
    up_lps : (3,) ndarray
        Unit vector perpendicular to ``detector_lps``: the top of the image.
    patient_position : str or None
        DICOM PatientPosition the C-arm angles refer to (``HFP``, ``HFS`` ...).
    label : str
        E.g. ``"L1 left bull's-eye"``.
    geometry : CArmGeometry
    """

    isocenter_lps: np.ndarray
    detector_lps: np.ndarray
    up_lps: np.ndarray
    patient_position: str | None = None
    label: str = ""
    geometry: CArmGeometry = field(default_factory=CArmGeometry)

    def __post_init__(self):
        iso = np.asarray(self.isocenter_lps, dtype=np.float64).reshape(3)
        d = unit(self.detector_lps)
        up = np.asarray(self.up_lps, dtype=np.float64)
        up = unit(up - (up @ d) * d)
        for name, val in (("isocenter_lps", iso), ("detector_lps", d), ("up_lps", up)):
            object.__setattr__(self, name, val)

    # ---------------------------------------------------------------- frame
    @property
    def right_lps(self) -> np.ndarray:
        """Unit vector toward the image right (``up x detector``)."""
        return np.cross(self.up_lps, self.detector_lps)

    @property
    def source_lps(self) -> np.ndarray:
        return self.isocenter_lps - self.geometry.source_to_isocenter_mm * self.detector_lps

    @property
    def detector_center_lps(self) -> np.ndarray:
        g = self.geometry
        return self.isocenter_lps + (g.source_to_detector_mm - g.source_to_isocenter_mm) * self.detector_lps

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape ``(rows, cols)``."""
        n = self.geometry.detector_pixels
        return n, n

    # ---------------------------------------------------------------- angles
    @property
    def angles_deg(self) -> tuple[float, float]:
        """``(lao_deg, cran_deg)`` of this view (:func:`carm.carm_angles_deg`)."""
        return carm.carm_angles_deg(self.detector_lps, self.patient_position)

    @property
    def angles_text(self) -> str:
        """E.g. ``'RAO 12°  CAUD 5°'``."""
        return carm.format_carm_angles(*self.angles_deg)

    def with_geometry(self, geometry: CArmGeometry) -> "CArmView":
        return dataclasses.replace(self, geometry=geometry)

    def with_pixels(self, n: int | None) -> "CArmView":
        """The same pose with another detector matrix."""
        return self if n is None else self.with_geometry(self.geometry.with_pixels(n))

    def project(self, points_lps) -> np.ndarray:
        """Shortcut for :func:`project_points`."""
        return project_points(self, points_lps)


#: The brief's other name for a view.
CArmPose = CArmView


def default_up_lps(detector_lps, patient_position: str | None = None) -> np.ndarray:
    """Image-up direction: the patient's head projected onto the detector plane.

    When the beam runs (almost) head-foot, the ceiling direction of the table position
    (posterior for prone, anterior otherwise) is used instead.
    """
    d = unit(detector_lps)
    up = _S - (_S @ d) * d
    if np.linalg.norm(up) < 0.1:  # beam within ~6 deg of the body axis
        r = carm.reference_direction_lps(patient_position)
        up = r - (r @ d) * d
    return unit(up)


def view_for_direction(isocenter_lps, detector_lps, *, patient_position: str | None = None,
                       up_lps=None, label: str = "", geometry: CArmGeometry | None = None) -> CArmView:
    """A view from an isocentre and a detector direction (up defaults to :func:`default_up_lps`)."""
    d = unit(detector_lps)
    up = default_up_lps(d, patient_position) if up_lps is None else up_lps
    return CArmView(np.asarray(isocenter_lps, float), d, up, patient_position, label,
                    geometry or CArmGeometry())


def view_for_angles(isocenter_lps, lao_deg: float, cran_deg: float, patient_position: str | None, *,
                    label: str = "", geometry: CArmGeometry | None = None) -> CArmView:
    """The view with the given C-arm angles (negative LAO = RAO, negative CRAN = CAUD)."""
    d = carm.detector_direction_lps(lao_deg, cran_deg, patient_position)
    return view_for_direction(isocenter_lps, d, patient_position=patient_position, label=label,
                              geometry=geometry)


def bullseye_view(entry_lps, target_lps, patient_position: str | None, *, isocenter_lps=None,
                  label: str = "bull's-eye", geometry: CArmGeometry | None = None) -> CArmView:
    """Beam along the needle (detector behind the hub): the needle projects to a dot.

    The isocentre defaults to ``entry_lps`` (pass the bone entry point to centre the
    pedicle); any point on the needle's line keeps the dot at the image centre.
    """
    d = carm.bullseye_detector_lps(entry_lps, target_lps)
    iso = entry_lps if isocenter_lps is None else isocenter_lps
    return view_for_direction(iso, d, patient_position=patient_position, label=label, geometry=geometry)


def progression_view(entry_lps, target_lps, patient_position: str | None, *, side: str | None = None,
                     isocenter_lps=None, label: str = "progression",
                     geometry: CArmGeometry | None = None) -> CArmView:
    """Perpendicular to the needle, near-lateral on the needle's side (watch the depth).

    The isocentre defaults to the midpoint of ``entry`` and ``target``.
    """
    e = np.asarray(entry_lps, float)
    t = np.asarray(target_lps, float)
    d = carm.progression_detector_lps(e, t, side=side)
    iso = 0.5 * (e + t) if isocenter_lps is None else isocenter_lps
    return view_for_direction(iso, d, patient_position=patient_position, label=label, geometry=geometry)


def ap_view(isocenter_lps, patient_position: str | None, *, geometry: CArmGeometry | None = None,
            label: str = "AP") -> CArmView:
    """The 0/0 view: detector above the table (PA beam for a prone patient)."""
    return view_for_angles(isocenter_lps, 0.0, 0.0, patient_position, label=label, geometry=geometry)


def lateral_view(isocenter_lps, patient_position: str | None, *, side: str = "left",
                 geometry: CArmGeometry | None = None, label: str = "lateral") -> CArmView:
    """True lateral view with the detector on the patient's ``side`` (``'left'``/``'right'``)."""
    d = _L if side != "right" else -_L
    return view_for_direction(isocenter_lps, d, patient_position=patient_position, label=label,
                              geometry=geometry)


def needle_segment(skin_entry_lps, target_lps, *,
                   needle_length_mm: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The needle as drawn: from its hub to its tip at the target.

    The hub lies ``needle_length_mm`` back from the target along the path (the part
    outside the skin shows in the progression view), or at the skin entry when the
    needle is shorter than the path or no length is given.
    """
    e = np.asarray(skin_entry_lps, dtype=np.float64)
    t = np.asarray(target_lps, dtype=np.float64)
    path = float(np.linalg.norm(t - e))
    if needle_length_mm is None or not np.isfinite(needle_length_mm) or needle_length_mm <= path or path == 0:
        return e, t
    return t + (e - t) * (float(needle_length_mm) / path), t


# ------------------------------------------------------------------------- projection
def project_points(view: CArmView, points_lps) -> np.ndarray:
    """Exact pinhole projection of LPS points to detector pixels ``(col, row)``.

    Parameters
    ----------
    view : CArmView
    points_lps : (..., 3) array_like

    Returns
    -------
    (..., 2) ndarray of float64
        ``(col, row)`` pixel coordinates (see the module docstring); NaN for points at
        or behind the source.

    Examples
    --------
    >>> v = ap_view([0, 0, 0], "HFS")
    >>> project_points(v, [[0, 0, 0]]).tolist()
    [[255.5, 255.5]]
    """
    g = view.geometry
    p = np.asarray(points_lps, dtype=np.float64)
    rel = p - view.source_lps
    depth = rel @ view.detector_lps
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(depth > 1e-9, g.source_to_detector_mm / depth, np.nan) / g.pixel_mm
    c0 = (g.detector_pixels - 1) / 2.0
    col = c0 + (rel @ view.right_lps) * scale
    row = c0 - (rel @ view.up_lps) * scale
    return np.stack([col, row], axis=-1)


def pixel_rays(view: CArmView, cols=None, rows=None) -> np.ndarray:
    """LPS positions on the detector of pixel centres.

    With ``cols``/``rows`` None, the whole detector: returns ``(rows, cols, 3)``;
    otherwise the points for the given (broadcast) pixel coordinates ``(..., 3)``.  The
    ray of a pixel runs from :attr:`CArmView.source_lps` to its point.
    """
    g = view.geometry
    c0 = (g.detector_pixels - 1) / 2.0
    if cols is None and rows is None:
        idx = np.arange(g.detector_pixels, dtype=np.float64)
        rows, cols = np.meshgrid(idx, idx, indexing="ij")
    cols = np.asarray(cols, dtype=np.float64)
    rows = np.asarray(rows, dtype=np.float64)
    x = (cols - c0) * g.pixel_mm
    y = (c0 - rows) * g.pixel_mm
    return (view.detector_center_lps + x[..., None] * view.right_lps + y[..., None] * view.up_lps)


def orientation_letters(direction_lps, *, threshold: float = 0.38) -> str:
    """Patient-direction letters of an image direction, e.g. ``'L'``, ``'H'``, ``'PR'``.

    Letters: L/R (left/right), A/P (anterior/posterior), H/F (head/feet), the dominant
    first; a secondary axis is added when its component exceeds ``threshold``
    (about 22 deg).
    """
    d = unit(direction_lps)
    names = (("L", "R"), ("P", "A"), ("H", "F"))
    order = np.argsort(-np.abs(d))
    out = []
    for i, ax in enumerate(order):
        if i == 0 or abs(d[ax]) >= threshold:
            out.append(names[ax][0] if d[ax] > 0 else names[ax][1])
    return "".join(out)
