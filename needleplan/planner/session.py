"""The GUI's session model: study, anatomy, plan, selection and undo/redo (no Qt here).

:class:`PlanSession` is the single source of truth of the desktop application.  Views
subscribe to its events with :meth:`PlanSession.connect` and redraw; they never keep
their own copy of the plan.  Every edit goes through the session so that it is checked
(the same checks as the CLI planner), undoable and marks the plan as modified.

Events (callback arguments in brackets):

``study_changed`` ()
    A new volume (and possibly anatomy and plan) was loaded.
``anatomy_changed`` ()
    The segmentation or a level name changed.
``plan_changed`` ()
    Trajectories were added, deleted, replaced or re-evaluated (undo/redo too).
``trajectory_changed`` (index)
    One trajectory moved or was re-checked.
``selection_changed`` (index or None)
``history_changed`` ()
    The undo/redo availability or the modified flag changed.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np

from needleplan.planner._angles import carm_views, clinical_angles_deg, procedure_position
from needleplan.planner.model import LevelPlan, Plan, Trajectory, needle_diameter_mm

__all__ = ["PlanSession", "EVENTS", "geometric_update"]

log = logging.getLogger(__name__)

EVENTS = ("study_changed", "anatomy_changed", "plan_changed", "trajectory_changed",
          "selection_changed", "history_changed")

#: The two points of a trajectory the user can drag.
HANDLES = ("entry", "target")

Evaluator = Callable[..., Trajectory]


def geometric_update(traj: Trajectory, *, patient_position: str | None = None) -> Trajectory:
    """Recompute the pure-geometry fields of a trajectory (clinical and C-arm angles).

    Used when no checking is possible (no segmentation); clearances and checks are kept
    but the caller marks them stale in ``notes``.  ``patient_position`` is the position
    of the scan; the C-arm angles are given for the procedure position.
    """
    t = copy.deepcopy(traj)
    side = t.side if t.side in ("left", "right") else None
    try:
        t.medial_angle_deg, t.craniocaudal_angle_deg = clinical_angles_deg(
            t.skin_entry_lps, t.target_lps, side=side)
        t.carm = carm_views(t.skin_entry_lps, t.target_lps, side=side,
                            patient_position=procedure_position(patient_position, t.approach))
    except ValueError:
        pass
    return t


def _default_evaluator() -> Evaluator:
    from needleplan.planner._plan import evaluate_trajectory

    return evaluate_trajectory


@dataclasses.dataclass
class _Snapshot:
    trajectories: list
    levels: list
    anatomy: object
    selected: int | None


class PlanSession:
    """Study + anatomy + plan + selection + undo/redo, with change events.

    Parameters
    ----------
    volume : Volume or None
    anatomy : Anatomy or None
    plan : Plan or None
    evaluator : callable or None
        ``evaluator(volume, anatomy, level, side, approach, skin_entry_lps, target_lps,
        gauge=...) -> Trajectory`` re-checks an edited trajectory; default
        :func:`needleplan.planner.evaluate_trajectory` when available, otherwise only the
        geometry (angles, C-arm angles) is updated.
    max_undo : int
        Number of undo steps kept.
    """

    def __init__(self, volume=None, anatomy=None, plan: Plan | None = None, *,
                 evaluator: Evaluator | None = None, max_undo: int = 200):
        self._callbacks: dict[str, list[Callable]] = defaultdict(list)
        self.volume = volume
        self.anatomy = anatomy
        self.plan: Plan = plan if plan is not None else Plan()
        self.selected: int | None = 0 if self.plan.trajectories else None
        self.plan_path: Path | None = None
        self.modified = False
        self.evaluator = evaluator if evaluator is not None else _default_evaluator()
        self.max_undo = int(max_undo)
        self._undo: list[_Snapshot] = []
        self._redo: list[_Snapshot] = []
        self._edit_open = False
        self.last_error: str | None = None

    # ------------------------------------------------------------------ events
    def connect(self, event: str, callback: Callable) -> None:
        """Call ``callback`` on ``event`` (one of :data:`EVENTS`)."""
        if event not in EVENTS:
            raise ValueError(f"unknown session event {event!r}; use one of {', '.join(EVENTS)}")
        self._callbacks[event].append(callback)

    def disconnect(self, event: str, callback: Callable) -> None:
        try:
            self._callbacks[event].remove(callback)
        except ValueError:
            pass

    def _emit(self, event: str, *args) -> None:
        for cb in list(self._callbacks[event]):
            cb(*args)

    # ------------------------------------------------------------------ study
    def set_study(self, volume, anatomy=None, plan: Plan | None = None, *, plan_path=None) -> None:
        """Replace everything (a newly opened study); clears the undo history."""
        self.volume = volume
        self.anatomy = anatomy
        self.plan = plan if plan is not None else Plan()
        self.plan_path = None if plan_path is None else Path(plan_path)
        self.selected = 0 if self.plan.trajectories else None
        self._undo.clear()
        self._redo.clear()
        self.modified = False
        self._emit("study_changed")
        self._emit("anatomy_changed")
        self._emit("plan_changed")
        self._emit("selection_changed", self.selected)
        self._emit("history_changed")

    def set_anatomy(self, anatomy) -> None:
        """Use a (new) segmentation of the current study."""
        if anatomy is not None and self.volume is not None and \
                tuple(anatomy.labels.shape) != tuple(self.volume.shape):
            raise ValueError(f"segmentation grid {tuple(anatomy.labels.shape)} does not match the study "
                             f"{tuple(self.volume.shape)}")
        self.anatomy = anatomy
        self._emit("anatomy_changed")

    def set_plan(self, plan: Plan, *, plan_path=None, undoable: bool = False) -> None:
        """Show a new plan (from the planner or a file)."""
        if undoable:
            self._push_undo()
        else:
            self._undo.clear()
            self._redo.clear()
        self.plan = plan
        self.plan_path = None if plan_path is None else Path(plan_path)
        self.modified = undoable
        self.selected = 0 if plan.trajectories else None
        self._emit("plan_changed")
        self._emit("selection_changed", self.selected)
        self._emit("history_changed")

    def merge_plan(self, plan: Plan) -> None:
        """Replace only the levels planned in ``plan``; other levels' trajectories stay (undoable).

        Used when the user plans a few chosen levels of a study that already has a plan.
        Trajectories and level entries are kept in cranio-caudal order.
        """
        new_levels = {lv.level for lv in plan.levels} | {t.level for t in plan.trajectories}
        keep_t = [t for t in self.plan.trajectories if t.level not in new_levels]
        keep_l = [lv for lv in self.plan.levels if lv.level not in new_levels]
        merged = dataclasses.replace(
            plan, trajectories=sorted(keep_t + list(plan.trajectories), key=lambda t: _level_order(t.level)),
            levels=sorted(keep_l + list(plan.levels), key=lambda lv: _level_order(lv.level)),
            input={**self.plan.input, **plan.input})
        self.set_plan(merged, plan_path=self.plan_path, undoable=True)
        first = next((i for i, t in enumerate(merged.trajectories) if t.level in new_levels), None)
        if first is not None:
            self.select(first)

    @property
    def patient_position(self) -> str | None:
        pp = None
        if self.volume is not None:
            pp = self.volume.meta.get("patient_position")
        return pp or self.plan.input.get("patient_position")

    # ------------------------------------------------------------------ selection
    @property
    def trajectories(self) -> list[Trajectory]:
        return self.plan.trajectories

    @property
    def selected_trajectory(self) -> Trajectory | None:
        if self.selected is None or not (0 <= self.selected < len(self.plan.trajectories)):
            return None
        return self.plan.trajectories[self.selected]

    def select(self, index: int | None) -> None:
        if index is not None and not (0 <= index < len(self.plan.trajectories)):
            raise IndexError(f"no trajectory {index} (plan has {len(self.plan.trajectories)})")
        if index != self.selected:
            self.selected = index
            self._emit("selection_changed", index)

    # ------------------------------------------------------------------ undo/redo
    def _snapshot(self) -> _Snapshot:
        return _Snapshot(copy.deepcopy(self.plan.trajectories), copy.deepcopy(self.plan.levels),
                         self.anatomy, self.selected)

    def _restore(self, snap: _Snapshot) -> None:
        self.plan.trajectories = snap.trajectories
        self.plan.levels = snap.levels
        if snap.anatomy is not self.anatomy:  # a level rename (anatomies are never modified in place)
            self.anatomy = snap.anatomy
            self._emit("anatomy_changed")
        n = len(self.plan.trajectories)
        self.selected = snap.selected if snap.selected is not None and snap.selected < n else (0 if n else None)

    def _push_undo(self) -> None:
        self._undo.append(self._snapshot())
        del self._undo[:-self.max_undo]
        self._redo.clear()

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> bool:
        """Go back one edit; False when there is nothing to undo."""
        self.end_edit()
        if not self._undo:
            return False
        self._redo.append(self._snapshot())
        self._restore(self._undo.pop())
        self._changed_all()
        return True

    def redo(self) -> bool:
        self.end_edit()
        if not self._redo:
            return False
        self._undo.append(self._snapshot())
        self._restore(self._redo.pop())
        self._changed_all()
        return True

    def _changed_all(self) -> None:
        self.modified = True
        self._emit("plan_changed")
        self._emit("selection_changed", self.selected)
        self._emit("history_changed")

    def begin_edit(self) -> None:
        """Start a group of edits (a mouse drag) that undo reverts in one step."""
        if not self._edit_open:
            self._push_undo()
            self._edit_open = True

    def end_edit(self) -> None:
        """Close the group opened by :meth:`begin_edit` (no-op when none is open)."""
        if self._edit_open:
            self._edit_open = False
            self._emit("history_changed")

    def _before_edit(self) -> None:
        if not self._edit_open:
            self._push_undo()

    def _after_edit(self) -> None:
        self.modified = True
        if not self._edit_open:
            self._emit("history_changed")

    # ------------------------------------------------------------------ edits
    def evaluate(self, traj: Trajectory, *, full: bool = True) -> Trajectory:
        """Re-check ``traj`` with the planner's checks (``full``) or only its geometry."""
        self.last_error = None
        if full and self.evaluator is not None and self.volume is not None and self.anatomy is not None:
            try:
                req = self.plan.request
                new = self.evaluator(self.volume, self.anatomy, traj.level, traj.side, traj.approach,
                                     traj.skin_entry_lps, traj.target_lps, gauge=traj.gauge,
                                     needle_length_mm=req.needle_length_mm,
                                     canal_margin_mm=req.canal_margin_mm, midline_limit_mm=req.midline_limit_mm)
                if hasattr(traj, "role") and hasattr(new, "role"):
                    new.role = traj.role
                return new
            except (ValueError, RuntimeError) as exc:  # NeedlePlanError subclasses both
                self.last_error = " ".join(str(exc).split())
                log.debug("evaluation of %s failed: %s", traj.name, self.last_error)
        new = geometric_update(traj, patient_position=self.patient_position)
        if full and self.evaluator is not None and self.last_error:
            new.status = "unsafe"
            new.notes = [f"not checked: {self.last_error}"]
        elif full and self.anatomy is None:
            new.notes = ["not re-checked: no segmentation yet (run Segment)"]
        return new

    def move_point(self, index: int, handle: str, point_lps, *, full: bool = True) -> Trajectory:
        """Move the skin entry (``handle='entry'``) or the target of trajectory ``index``.

        ``full=False`` updates only the geometry (fast, for mouse-move previews); call
        again with ``full=True`` (e.g. on release) to run all checks.
        """
        if handle not in HANDLES:
            raise ValueError(f"handle must be one of {HANDLES}, got {handle!r}")
        old = self.plan.trajectories[index]
        p = np.asarray(point_lps, dtype=np.float64)
        other = old.target_lps if handle == "entry" else old.skin_entry_lps
        if np.linalg.norm(p - other) < 1.0:
            raise ValueError("entry and target must be at least 1 mm apart")
        self._before_edit()
        t = copy.deepcopy(old)
        if handle == "entry":
            # keep the bone entry at the same fraction of the path until re-checked
            frac = _fraction_along(old.skin_entry_lps, old.target_lps, old.bone_entry_lps)
            t.skin_entry_lps = p
            t.bone_entry_lps = p + frac * (t.target_lps - p)
        else:
            frac = _fraction_along(old.skin_entry_lps, old.target_lps, old.bone_entry_lps)
            t.target_lps = p
            t.bone_entry_lps = t.skin_entry_lps + frac * (p - t.skin_entry_lps)
        new = self.evaluate(t, full=full)
        self.plan.trajectories[index] = new
        self._after_edit()
        self._emit("trajectory_changed", index)
        return new

    def recheck(self, index: int) -> Trajectory:
        """Run the full checks on trajectory ``index`` without an undo step."""
        new = self.evaluate(self.plan.trajectories[index], full=True)
        self.plan.trajectories[index] = new
        self._emit("trajectory_changed", index)
        return new

    def set_gauge(self, index: int, gauge: int) -> Trajectory:
        d = needle_diameter_mm(gauge)
        self._before_edit()
        t = copy.deepcopy(self.plan.trajectories[index])
        t.gauge, t.needle_diameter_mm = int(gauge), d
        self.plan.trajectories[index] = self.evaluate(t)
        self._after_edit()
        self._emit("trajectory_changed", index)
        return self.plan.trajectories[index]

    def add_trajectory(self, traj: Trajectory, *, evaluate: bool = True) -> int:
        """Append a trajectory (checked first) and select it; returns its index."""
        self._before_edit()
        self.plan.trajectories.append(self.evaluate(traj) if evaluate else traj)
        self._after_edit()
        self.selected = len(self.plan.trajectories) - 1
        self._emit("plan_changed")
        self._emit("selection_changed", self.selected)
        return self.selected

    def new_trajectory(self, level: str, side: str) -> int:
        """Add a straight-down default trajectory through the pedicle of ``level``/``side``."""
        if self.anatomy is None:
            raise ValueError("no segmentation: segment the study before adding a trajectory")
        v = self.anatomy.vertebra(level)
        ped = v.pedicles.get(side)
        if ped is not None:
            axis = np.asarray(ped.axis_lps, float)
            target = np.asarray(ped.isthmus_center_lps, float) + axis * 0.55 * (
                v.body_depth_mm if np.isfinite(v.body_depth_mm) else 30.0)
            entry = np.asarray(ped.isthmus_center_lps, float) - axis * 60.0
        else:  # no pedicle found: a parasagittal path beside the canal, to be dragged into place
            sign = 1.0 if side == "left" else -1.0
            left = np.asarray(v.left_lps, float)
            back = -np.asarray(v.ap_axis_lps, float)
            target = np.asarray(v.body_center_lps, float) + sign * 6.0 * left
            entry = target + 90.0 * back + sign * 30.0 * left
        gauge = self.plan.request.gauge
        t = Trajectory(level=v.name, side=side, approach="transpedicular", skin_entry_lps=entry,
                       bone_entry_lps=(entry + target) / 2, target_lps=target, gauge=gauge,
                       needle_diameter_mm=needle_diameter_mm(gauge),
                       needle_length_mm=self.plan.request.needle_length_mm)
        return self.add_trajectory(t)

    def delete_trajectory(self, index: int) -> None:
        if not (0 <= index < len(self.plan.trajectories)):
            raise IndexError(f"no trajectory {index}")
        self._before_edit()
        del self.plan.trajectories[index]
        self._after_edit()
        n = len(self.plan.trajectories)
        self.selected = min(index, n - 1) if n else None
        self._emit("plan_changed")
        self._emit("selection_changed", self.selected)

    def rename_level(self, old: str, new: str) -> None:
        """Correct a level name (e.g. the segmentation called L1 what is T12).

        Renames that vertebra in the anatomy, in the level list and in every trajectory.
        Other vertebrae keep their names; renaming onto an existing name is refused.
        """
        from needleplan.segmentation.model import level_label, level_name

        new_lab = level_label(new)
        new_name = level_name(new_lab)
        old_lab = level_label(old)
        old_name = level_name(old_lab)
        if new_name == old_name:
            return
        if self.anatomy is not None:
            if old_lab not in self.anatomy.vertebrae:
                raise ValueError(f"level {old_name} is not in the segmentation")
            if new_lab in self.anatomy.vertebrae:
                raise ValueError(f"level {new_name} already exists; rename that one first")
        self._before_edit()
        if self.anatomy is not None:
            mapping = {k: (new_lab if k == old_lab else k) for k in self.anatomy.vertebrae}
            self._relabel_anatomy(mapping)
        for t in self.plan.trajectories:
            if t.level == old_name:
                t.level = new_name
        for lv in self.plan.levels:
            if lv.level == old_name:
                lv.level = new_name
        self._after_edit()
        self._emit("anatomy_changed")
        self._emit("plan_changed")
        self._emit("selection_changed", self.selected)

    def _relabel_anatomy(self, mapping: dict[int, int]) -> None:
        """Apply ``{current label: wanted label}``; the session gets a new Anatomy object
        (the one it was given, possibly shared, is not modified)."""
        a = self.anatomy
        lut = np.arange(256, dtype=np.uint8)
        verts = {}
        for cur, want in mapping.items():
            if cur not in a.vertebrae:
                continue
            lut[cur] = want
            v = copy.copy(a.vertebrae[cur])
            v.label = int(want)
            verts[int(want)] = v
        self.anatomy = dataclasses.replace(a, labels=lut[a.labels], vertebrae=dict(sorted(verts.items())))

    # ------------------------------------------------------------------ files
    def save(self, path=None) -> Path:
        """Write the plan as plan.json (atomically) and clear the modified flag."""
        from needleplan.io import write_plan_json  # type: ignore[attr-defined]

        path = Path(path) if path is not None else self.plan_path
        if path is None:
            raise ValueError("no file name for the plan: choose one with Save As")
        self.end_edit()
        if self.volume is not None:
            self.plan.input.setdefault("series_uid", self.volume.meta.get("series_uid"))
            self.plan.input.setdefault("patient_position", self.volume.meta.get("patient_position"))
        write_plan_json(self.plan, path)
        self.plan_path = path
        self.modified = False
        self._emit("history_changed")
        return path

    def open_plan(self, path) -> Plan:
        """Read a plan.json for the current study (keeps the study, clears undo)."""
        from needleplan.io import read_plan_json  # type: ignore[attr-defined]

        plan = read_plan_json(path)
        if not isinstance(plan, Plan):
            plan = Plan.from_dict(plan)
        self.set_plan(plan, plan_path=path)
        return plan

    def level_plan(self, level: str) -> LevelPlan | None:
        for lv in self.plan.levels:
            if lv.level == level:
                return lv
        return None


def _fraction_along(a, b, p) -> float:
    a, b, p = (np.asarray(x, float) for x in (a, b, p))
    d = b - a
    n2 = float(d @ d)
    if n2 == 0:
        return 0.5
    return float(np.clip((p - a) @ d / n2, 0.0, 1.0))


def _level_order(name: str) -> int:
    """Cranio-caudal rank of a level name (unknown names last)."""
    from needleplan.segmentation.model import level_label

    try:
        return level_label(name)
    except ValueError:
        return 10_000
