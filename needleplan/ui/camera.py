"""Camera poses for the 3-D view as plain numbers (no VTK here; see view3d.apply_camera)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CameraPose", "needle_camera", "overview_camera"]


@dataclass(frozen=True)
class CameraPose:
    """Where the camera is, what it looks at and which way is up (LPS mm / unit vectors)."""

    position_lps: np.ndarray
    focal_point_lps: np.ndarray
    view_up_lps: np.ndarray
    view_angle_deg: float = 30.0


def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    n = np.linalg.norm(v)
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError("zero-length direction")
    return v / n


def needle_camera(entry_lps, target_lps, *, distance_mm: float = 250.0, up_lps=(0.0, 0.0, 1.0),
                  view_angle_deg: float = 20.0) -> CameraPose:
    """Look down the needle: the camera sits behind the hub on the needle's axis.

    The needle axis then projects to a single point (the image centre); ``up`` is the
    given direction (default superior) made perpendicular to the axis.
    """
    e = np.asarray(entry_lps, float)
    t = np.asarray(target_lps, float)
    d = _unit(t - e)
    up = np.asarray(up_lps, float)
    up = up - (up @ d) * d
    if np.linalg.norm(up) < 1e-6:
        up = np.array([0.0, -1.0, 0.0]) - d[1] * d
    return CameraPose(e - d * float(distance_mm), t.copy(), _unit(up), float(view_angle_deg))


def overview_camera(center_lps, *, patient_position: str | None = None, distance_mm: float = 600.0,
                    view_angle_deg: float = 30.0) -> CameraPose:
    """A posterior-oblique overview of the spine (head up), good for prone planning."""
    c = np.asarray(center_lps, float)
    d = _unit(np.array([-0.55, 1.0, 0.15]))  # camera behind and to the right of the patient
    return CameraPose(c + d * distance_mm, c.copy(), np.array([0.0, 0.0, 1.0]), view_angle_deg)
