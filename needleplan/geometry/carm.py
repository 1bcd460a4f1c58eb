"""C-arm angle conventions (no rendering here; see :mod:`needleplan.geometry.drr`).

A C-arm view is described by the unit vector ``detector_lps`` from the isocentre toward
the detector (image intensifier); the X-ray source sits on the opposite side, so the beam
travels along ``-detector_lps``.  Angles follow the usual two rotations of a C-arm:

* ``lao_deg`` -- rotation about the patient's head-foot axis: positive when the detector
  moves toward the patient's **left** (LAO), negative toward the right (RAO);
* ``cran_deg`` -- tilt toward the patient's head: positive when the detector moves toward
  the head (CRAN), negative toward the feet (CAUD).

Both are measured from the reference view of the table position: the detector above the
patient, i.e. on the **posterior** side for a prone patient (``HFP``/``FFP``) and on the
**anterior** side for a supine patient (``HFS``/``FFS``).  With
``r`` the reference direction, ``L`` patient left and ``S`` superior (LPS unit vectors)::

    detector = cos(cran) * (cos(lao) * r + sin(lao) * L) + sin(cran) * S

For a prone patient the "LAO" side is anatomically a posterior oblique; the names are
kept so that the sign reads the same in every position: positive = detector to the
patient's left.

For a bull's-eye view of a needle the detector sits on the needle's axis behind its hub,
``detector_lps = (entry - target) / |entry - target|``: a needle going straight down into
a prone patient gives 0/0, a needle whose hub leans 15 deg toward the head gives CRAN 15.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "reference_direction_lps",
    "carm_angles_deg",
    "detector_direction_lps",
    "bullseye_detector_lps",
    "progression_detector_lps",
    "format_carm_angles",
]

_LEFT = np.array([1.0, 0.0, 0.0])
_POSTERIOR = np.array([0.0, 1.0, 0.0])
_SUPERIOR = np.array([0.0, 0.0, 1.0])


def _is_prone(patient_position: str | None) -> bool:
    pp = (patient_position or "HFS").upper()
    return pp.endswith("P") and not pp.endswith("DP")  # HFP, FFP (not HFDL/decubitus)


def reference_direction_lps(patient_position: str | None) -> np.ndarray:
    """Detector direction (LPS unit vector) of the 0/0 view: up from the table.

    Posterior ``(0, 1, 0)`` for a prone patient, anterior ``(0, -1, 0)`` otherwise
    (supine is assumed when the position is unknown or decubitus).
    """
    return _POSTERIOR.copy() if _is_prone(patient_position) else -_POSTERIOR


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v)
    if not np.isfinite(n) or n == 0:
        raise ValueError(f"direction {v!r} has zero length")
    return v / n


def carm_angles_deg(detector_lps, patient_position: str | None) -> tuple[float, float]:
    """C-arm angles ``(lao_deg, cran_deg)`` of a detector direction.

    Parameters
    ----------
    detector_lps : (3,) array_like
        Direction from isocentre toward the detector, LPS (need not be unit length).
    patient_position : str or None
        DICOM PatientPosition (``HFP``, ``HFS``, ``FFS`` ...).

    Returns
    -------
    lao_deg, cran_deg : float
        Negative LAO is RAO; negative CRAN is CAUD.

    Examples
    --------
    >>> carm_angles_deg([0, 1, 0], "HFP")
    (0.0, 0.0)
    >>> [round(a, 6) for a in carm_angles_deg([0, np.cos(np.radians(15)), np.sin(np.radians(15))], "HFP")]
    [0.0, 15.0]
    """
    d = _unit(detector_lps)
    r = reference_direction_lps(patient_position)
    cran = np.degrees(np.arcsin(np.clip(d @ _SUPERIOR, -1.0, 1.0)))
    lao = np.degrees(np.arctan2(d @ _LEFT, d @ r))
    return float(lao) + 0.0, float(cran) + 0.0


def detector_direction_lps(lao_deg: float, cran_deg: float, patient_position: str | None) -> np.ndarray:
    """Inverse of :func:`carm_angles_deg`: the LPS unit detector direction for two angles."""
    r = reference_direction_lps(patient_position)
    a, c = np.radians(lao_deg), np.radians(cran_deg)
    return np.cos(c) * (np.cos(a) * r + np.sin(a) * _LEFT) + np.sin(c) * _SUPERIOR


def bullseye_detector_lps(entry_lps, target_lps) -> np.ndarray:
    """Detector direction of the bull's-eye view: along the needle, behind its hub."""
    return _unit(np.asarray(entry_lps, float) - np.asarray(target_lps, float))


def progression_detector_lps(entry_lps, target_lps, *, side: str | None = None) -> np.ndarray:
    """Detector direction of the progression view: perpendicular to the needle, near-lateral.

    The patient's left-right axis projected onto the plane perpendicular to the needle.
    Of the two perpendicular directions, the one on the hub's side of the patient is taken
    (posterior for a needle entering the back, anterior for one entering the neck), so the
    detector stays above the table: a medially angled transpedicular needle is watched
    from a contralateral oblique, as in the suite.  ``side`` ('left', 'right') breaks the
    tie when the needle is vertical (the detector then goes on that side); patient left
    when None.  Falls back to the superior axis when the needle runs left-right.
    """
    entry = np.asarray(entry_lps, float)
    n = _unit(np.asarray(target_lps, float) - entry)
    lateral = -_LEFT if side == "right" else _LEFT
    d = lateral - (lateral @ n) * n
    if np.linalg.norm(d) < 1e-6:
        d = _SUPERIOR - (_SUPERIOR @ n) * n
    d = _unit(d)
    hub_ap = -n @ _POSTERIOR  # > 0: the hub is posterior of the tip
    if d @ _POSTERIOR * hub_ap < -1e-9:
        d = -d
    return d


def format_carm_angles(lao_deg: float, cran_deg: float) -> str:
    """Human-readable angles, e.g. ``'LAO 12°  CAUD 5°'``."""
    side = "LAO" if lao_deg >= 0 else "RAO"
    tilt = "CRAN" if cran_deg >= 0 else "CAUD"
    return f"{side} {abs(lao_deg):.0f}°  {tilt} {abs(cran_deg):.0f}°"
