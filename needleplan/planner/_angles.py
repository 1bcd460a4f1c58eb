"""Clinical needle angles and C-arm views of a trajectory.

Conventions (patient LPS: +x left, +y posterior, +z superior)
-------------------------------------------------------------
``medial_angle_deg``
    Angle, in the patient's axial plane, between the needle and the sagittal plane.
    Positive when the needle *converges toward the midline* as it advances (the usual
    transpedicular inclination), negative when it diverges.  A needle going straight
    antero-posterior is 0.
``craniocaudal_angle_deg``
    Angle, in the patient's sagittal plane, between the needle and the axial plane.
    Positive when the hub is *cranial* to the tip (the C-arm then needs CRAN to look
    down the needle), negative when the hub is caudal (CAUD).

Both are measured in the patient frame (the CT axes), because that is the frame the
C-arm and the table share.  ``carm`` views come from :mod:`needleplan.geometry.carm`.
"""

from __future__ import annotations

import numpy as np

from needleplan.geometry.carm import (bullseye_detector_lps, carm_angles_deg, format_carm_angles,
                                      progression_detector_lps)

__all__ = ["unit", "clinical_angles_deg", "carm_views", "procedure_position"]

_LEFT = np.array([1.0, 0.0, 0.0])
_POST = np.array([0.0, 1.0, 0.0])
_SUP = np.array([0.0, 0.0, 1.0])


def procedure_position(scan_position: str | None, approach: str) -> str:
    """Patient position on the table during the procedure, as a DICOM PatientPosition.

    C-arm angles must be given for the position the patient has in the suite, not the one
    of the diagnostic CT: transpedicular and parapedicular needles are placed prone,
    anterolateral (cervical) ones supine.  Head- or feet-first is kept from the scan
    (head first when unknown).  A CT acquired in the procedure position (e.g. prone for
    CT guidance) therefore keeps its own position.

    Examples
    --------
    >>> procedure_position("HFS", "transpedicular"), procedure_position("FFS", "bipedicular")
    ('HFP', 'FFP')
    >>> procedure_position(None, "anterolateral"), procedure_position("HFP", "anterolateral")
    ('HFS', 'HFS')
    """
    head = "FF" if (scan_position or "").upper().startswith("FF") else "HF"
    return head + ("S" if approach == "anterolateral" else "P")


def unit(v) -> np.ndarray:
    """``v / |v|``; ValueError for a zero or non-finite vector."""
    v = np.asarray(v, dtype=np.float64)
    n = float(np.linalg.norm(v))
    if not np.isfinite(n) or n < 1e-12:
        raise ValueError(f"direction {v!r} has zero length")
    return v / n


def clinical_angles_deg(entry_lps, target_lps, *, midline_x_mm: float | None = None,
                        side: str | None = None) -> tuple[float, float]:
    """Medial and craniocaudal angles (degrees) of the needle ``entry -> target``.

    Parameters
    ----------
    entry_lps, target_lps : (3,) array_like
        Hub-side point and tip, LPS mm.
    midline_x_mm : float, optional
        Patient x (LPS) of the midsagittal plane; decides which way is "medial" when
        ``side`` is not given.  Default: the target's x.
    side : {'left', 'right'}, optional
        Side of the entry; medial is toward the patient's right for ``'left'``.

    Returns
    -------
    medial_deg, craniocaudal_deg : float

    Examples
    --------
    >>> clinical_angles_deg([0, 80, 0], [0, 10, 0])
    (0.0, 0.0)
    >>> m, c = clinical_angles_deg([20, 80, 0], [0, 10, 0])  # left entry, converging
    >>> round(m, 3), c
    (15.945, 0.0)
    """
    e = np.asarray(entry_lps, float)
    t = np.asarray(target_lps, float)
    d = unit(t - e)
    if side in ("left", "right"):
        medial = -_LEFT if side == "left" else _LEFT
    else:
        mid = float(t[0]) if midline_x_mm is None else float(midline_x_mm)
        off = e[0] - mid
        medial = -_LEFT * np.sign(off) if abs(off) > 1e-6 else -_LEFT
    ap = abs(float(d @ _POST))
    med = float(np.degrees(np.arctan2(float(d @ medial), ap)))
    cc = float(np.degrees(np.arctan2(-float(d @ _SUP), ap)))
    return med + 0.0, cc + 0.0


def carm_views(entry_lps, target_lps, *, side: str | None, patient_position: str) -> dict:
    """The ``carm`` dict of a trajectory: bull's-eye and progression views.

    ``{"bullseye": {"lao_deg", "cran_deg", "detector_lps", "label"}, "progression": {...},
    "patient_position": "HFP"}``.
    """
    out: dict = {"patient_position": patient_position}
    for name, det in (("bullseye", bullseye_detector_lps(entry_lps, target_lps)),
                      ("progression", progression_detector_lps(entry_lps, target_lps, side=side))):
        lao, cran = carm_angles_deg(det, patient_position)
        out[name] = {"lao_deg": round(lao, 2), "cran_deg": round(cran, 2),
                     "detector_lps": [round(float(x), 5) for x in det],
                     "label": format_carm_angles(lao, cran)}
    return out
