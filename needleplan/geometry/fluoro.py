"""The standard fluoroscopy views of a planned needle, rendered and labelled.

The one place that builds a trajectory's views (:func:`trajectory_views`) and renders them
(:func:`render_trajectory`): ``needleplan render``, the plan folder's PNGs
(:func:`needleplan.report.exports.export_views`), the PDF report and the GUI all use it.
``patient_position`` is the position during the *procedure* (prone for pedicle routes):
callers pass ``traj.procedure_position(scan_position)``.  Trajectories are duck-typed
(anything with ``level``, ``side``, ``skin_entry_lps``, ``bone_entry_lps``,
``target_lps``, ``needle_diameter_mm`` and optionally ``needle_length_mm``, such as
:class:`needleplan.planner.model.Trajectory`), so geometry does not import the planner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from needleplan.geometry import views as _views
from needleplan.geometry.annotate import annotate
from needleplan.geometry.drr import DRR, render_drr
from needleplan.geometry.views import CArmGeometry, CArmView

__all__ = ["RenderedView", "trajectory_views", "overview_views", "render_views", "render_trajectory",
           "needle_of"]


@dataclass(frozen=True, eq=False)
class RenderedView:
    """A rendered, labelled view: ``kind`` ('bullseye', 'progression', 'ap', 'lateral')."""

    kind: str
    drr: DRR
    rgb: np.ndarray

    @property
    def view(self) -> CArmView:
        return self.drr.view


def needle_of(traj) -> tuple[np.ndarray, np.ndarray, float]:
    """``(hub_lps, tip_lps, diameter_mm)`` of a trajectory's needle as drawn."""
    hub, tip = _views.needle_segment(traj.skin_entry_lps, traj.target_lps,
                                     needle_length_mm=getattr(traj, "needle_length_mm", None))
    return hub, tip, float(getattr(traj, "needle_diameter_mm", 3.05) or 3.05)


def trajectory_views(traj, patient_position: str | None, *,
                     geometry: CArmGeometry | None = None) -> dict[str, CArmView]:
    """Bull's-eye (isocentre at the bone entry) and progression (isocentre mid-path) views."""
    name = f"{traj.level} {traj.side}"
    bone = np.asarray(traj.bone_entry_lps, float)
    target = np.asarray(traj.target_lps, float)
    skin = np.asarray(traj.skin_entry_lps, float)
    if np.linalg.norm(bone - target) < 1e-6:
        bone = skin
    side = traj.side if traj.side in ("left", "right") else None
    return {
        "bullseye": _views.bullseye_view(skin, target, patient_position, isocenter_lps=bone,
                                         label=f"{name} - bull's-eye", geometry=geometry),
        "progression": _views.progression_view(bone, target, patient_position, side=side,
                                               label=f"{name} - progression", geometry=geometry),
    }


def overview_views(trajectories, patient_position: str | None, *, center_lps=None,
                   geometry: CArmGeometry | None = None) -> dict[str, CArmView]:
    """AP and left lateral views centred on the targets (or ``center_lps``)."""
    if center_lps is None:
        pts = [np.asarray(t.target_lps, float) for t in trajectories]
        if not pts:
            raise ValueError("overview_views: no trajectories and no centre given")
        center_lps = np.mean(pts, axis=0)
    return {"ap": _views.ap_view(center_lps, patient_position, geometry=geometry, label="AP overview"),
            "lateral": _views.lateral_view(center_lps, patient_position, geometry=geometry,
                                           label="lateral overview")}


def render_views(volume, views_by_kind: dict[str, CArmView], *, needles=(), size: int | None = None,
                 step_mm: float | None = None, extra_lines: tuple[str, ...] = (),
                 annotated: bool = True) -> dict[str, RenderedView]:
    """Render each view with the given needles drawn in.

    ``annotated`` labels the image like a monitor (:func:`~needleplan.geometry.annotate.annotate`);
    False gives the plain display image as RGB (for callers that draw their own labels).
    """
    out = {}
    for kind, view in views_by_kind.items():
        drr = render_drr(volume, view, size=size, step_mm=step_mm, needles=needles)
        rgb = (annotate(drr, extra_lines=extra_lines) if annotated
               else np.repeat(np.asarray(drr.display, np.uint8)[:, :, None], 3, axis=2))
        out[kind] = RenderedView(kind, drr, rgb)
    return out


def render_trajectory(volume, traj, patient_position: str | None, *, size: int | None = None,
                      step_mm: float | None = None, needles=None, extra_lines: tuple[str, ...] = (),
                      annotated: bool = True, geometry: CArmGeometry | None = None) -> dict[str, RenderedView]:
    """The bull's-eye and progression pictures of one trajectory.

    Parameters
    ----------
    volume : Volume
        CT in HU.
    traj : Trajectory-like
        See the module docstring.
    patient_position : str or None
        Position during the procedure (``traj.procedure_position(scan_position)``).
    size : int, optional
        Detector matrix (pixels per side); default the geometry's (512).
    step_mm : float, optional
        Sampling step (see :func:`~needleplan.geometry.drr.render_drr`).
    needles : sequence of (entry_lps, target_lps, diameter_mm), optional
        Default: this trajectory's needle (:func:`needle_of`).
    extra_lines : tuple of str
        Caption lines under the title (annotated images only).
    annotated : bool
        Burn in angles, position and orientation letters.

    Returns
    -------
    dict
        ``{'bullseye': RenderedView, 'progression': RenderedView}``.
    """
    needles = [needle_of(traj)] if needles is None else list(needles)
    return render_views(volume, trajectory_views(traj, patient_position, geometry=geometry), needles=needles,
                        size=size, step_mm=step_mm, extra_lines=extra_lines, annotated=annotated)
