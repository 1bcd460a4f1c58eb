"""plan / plan_level / evaluate_trajectory: the planner's public entry points."""

from __future__ import annotations

import copy
import datetime as _dt
import threading

import numpy as np

from needleplan.errors import PlanningError
from needleplan.planner._angles import procedure_position
from needleplan.planner._evaluate import evaluate
from needleplan.planner._levels import level_flags, narrow_pedicle, thinner_gauge
from needleplan.planner._pedicle_estimate import with_estimated_pedicles
from needleplan.planner._transpedicular import search_pedicle
from needleplan.planner.model import LevelPlan, Plan, PlanRequest, Trajectory, needle_diameter_mm
from needleplan.segmentation.model import level_label

__all__ = ["plan", "plan_level", "evaluate_trajectory", "default_approach"]

_REQUEST_APPROACHES = ("auto", "transpedicular", "bipedicular", "anterolateral", "parapedicular")
_TRIES = 4
_ANGLE_CHECKS = ("medial_angle", "craniocaudal_angle")
_MEMO = threading.local()   # per-level memo of _best_on_side (the fallback chain asks twice)
_TIGHT_MM = 0.5   # a planned needle with less bone than this around it gets a thinner-gauge alternative
_MIN_AP_COS = float(np.cos(np.radians(50.0)))   # a vertebra rotated beyond this is a segmentation error


def default_approach(level: str) -> str | None:
    """``'transpedicular'`` for T1-L6, ``'anterolateral'`` for C3-C7, None otherwise."""
    if level[0] in "TL":
        return "transpedicular"
    if level in ("C3", "C4", "C5", "C6", "C7"):
        return "anterolateral"
    return None


def _position(volume, approach: str) -> str:
    pp = (volume.meta or {}).get("patient_position") if hasattr(volume, "meta") else None
    return procedure_position(pp, approach)


def evaluate_trajectory(volume, anatomy, level, side: str, approach: str, skin_entry_lps, target_lps, *,
                        gauge: int = 11, needle_length_mm: float | None = None, canal_margin_mm: float = 2.0,
                        midline_limit_mm: float = 5.0, through_lps=None,
                        patient_position: str | None = None) -> Trajectory:
    """Run every safety check on a needle path given by hand.

    The GUI and the trainee mode call this on every drag; after the first call for a
    vertebra (distance maps are cached) it takes a few milliseconds.

    Parameters
    ----------
    volume : Volume
    anatomy : Anatomy
    level : str or int
        ``'L1'`` or its VerSe label.
    side : {'left', 'right', 'midline'}
    approach : {'transpedicular', 'bipedicular', 'parapedicular', 'anterolateral'}
    skin_entry_lps : (3,) array_like or None
        A point on the needle's hub side (usually the skin entry).  The reported skin
        entry is where the line through it and the target crosses the skin.  When None,
        ``through_lps`` gives the hub-side point.
    target_lps : (3,) array_like
        The tip, LPS mm.
    gauge, needle_length_mm, canal_margin_mm, midline_limit_mm
        Needle and limits (see :class:`PlanRequest`); ``needle_length_mm=None`` picks the
        shortest standard needle (10 or 15 cm) that reaches.
    patient_position : str, optional
        DICOM PatientPosition the C-arm angles assume; default: the procedure position
        (:func:`procedure_position`: prone for pedicle routes, supine for anterolateral).

    Returns
    -------
    Trajectory
        With ``checks``, ``status`` (ok / warning / unsafe), clearances, angles, C-arm views
        and ``clearance_profile``.

    Raises
    ------
    ValueError
        Malformed input: unknown level/side/approach/gauge, non-finite points, entry = target.

    Notes
    -----
    ``medial_angle_deg``: in the patient's axial plane, between the needle and the sagittal
    plane, positive when the needle converges toward the midline as it advances.
    ``craniocaudal_angle_deg``: in the sagittal plane, between the needle and the axial
    plane, positive when the hub is cranial to the tip (the bull's-eye view then needs
    CRAN).  ``carm`` holds the bull's-eye and progression views from
    :mod:`needleplan.geometry.carm` for the stated patient position.
    """
    structures = None
    if approach == "anterolateral":
        from needleplan.planner._cervical import neck_structures

        structures = neck_structures(volume, anatomy, level_label(level) if isinstance(level, str) else level)
    return evaluate(volume, anatomy, level, side, approach, skin_entry_lps, target_lps, gauge=gauge,
                    needle_length_mm=needle_length_mm, canal_margin_mm=canal_margin_mm,
                    midline_limit_mm=midline_limit_mm, through_lps=through_lps,
                    patient_position=patient_position or _position(volume, approach), structures=structures,
                    unipedicular=None if approach != "transpedicular" else True)


def _best_on_side(volume, anatomy, label, side, request, *, mode, gauge, para=False):
    """Search one side and fully evaluate the best candidates; the first non-unsafe wins."""
    memo = getattr(_MEMO, "d", None)
    key = (id(anatomy), int(label), side, mode, int(gauge), bool(para))
    if memo is not None and key in memo:
        return copy.copy(memo[key])
    t = _search_side(volume, anatomy, label, side, request, mode=mode, gauge=gauge, para=para)
    if memo is not None:
        memo[key] = copy.copy(t)
    return t


def _search_side(volume, anatomy, label, side, request, *, mode, gauge, para):
    cands = search_pedicle(volume, anatomy, label, side, mode=mode, gauge=gauge,
                           canal_margin_mm=request.canal_margin_mm, para=para)
    if not cands:
        return None
    approach = "parapedicular" if para else ("bipedicular" if mode == "bipedicular" else "transpedicular")
    first = None
    for i, cand in enumerate(cands[:_TRIES]):
        if i > 0 and not cand.feasible:   # the rest fail the search's limits too: the first describes them
            break
        t = evaluate(volume, anatomy, label, side, approach, None, cand.target_lps, through_lps=cand.through_lps,
                     gauge=gauge, needle_length_mm=request.needle_length_mm,
                     canal_margin_mm=request.canal_margin_mm, midline_limit_mm=request.midline_limit_mm,
                     patient_position=_position(volume, approach), unipedicular=mode != "bipedicular")
        if first is None:
            first = t
        # a planned path must be safe, wholly inside the cortex (grade A), at usual angles
        if _usable(t):
            return t
    return first


def _usable(t: Trajectory | None) -> bool:
    """Safe enough to propose: not unsafe and wholly inside the cortex."""
    return (t is not None and t.status != "unsafe" and t.breach_grade in ("A", None)
            and all(c.passed for c in t.checks if c.name in _ANGLE_CHECKS))


def _rank_key(t: Trajectory):
    """Nearest the midline (to 1 mm), then fewest warnings, then most clearance."""
    warnings = sum(1 for c in t.checks if not c.passed)
    clear = min(t.clearance_mm.get("cortex", 0.0), t.clearance_mm.get("canal", 0.0))
    return (round(t.target_to_midline_mm), warnings, -clear)


def _failed(t: Trajectory) -> str:
    bad = [c.message for c in t.checks if not c.passed and c.severity == "unsafe"]
    if not bad:   # not unsafe, but not proposable: a breach or unusual angles
        bad = [c.message for c in t.checks if not c.passed and c.name in ("breach_grade", *_ANGLE_CHECKS)]
    return "; ".join(bad) or "no safe corridor"


def _plan_transpedicular(volume, anatomy, va, request: PlanRequest, force: str | None):
    name = va.name
    label = va.label
    reasons: list[str] = []
    trajs: list[Trajectory] = []
    gauge = int(request.gauge)
    sides = [s for s in ("left", "right") if s in va.pedicles]
    if not sides:
        return "not advised", ["no pedicle found at this level"], []
    narrow = {}
    for side in sides:
        is_narrow, spare = narrow_pedicle(va.pedicles[side], gauge)
        if is_narrow:
            ped = va.pedicles[side]
            narrow[side] = spare
            reasons.append(f"narrow {side} pedicle: isthmus {min(ped.width_mm, ped.height_mm):.1f} mm, "
                           f"{gauge} G needle {needle_diameter_mm(gauge):.2f} mm leaves {spare:.1f} mm "
                           f"(need >= 2 mm)")
    if force == "parapedicular":
        paras = [t for t in (_best_on_side(volume, anatomy, label, s, request, mode="unipedicular", gauge=gauge,
                                           para=True) for s in sides) if t is not None]
        paras.sort(key=lambda t: (t.status == "unsafe", t.target_to_midline_mm))
        if paras and _usable(paras[0]):
            return f"parapedicular {paras[0].side}", [f"parapedicular route requested; the {paras[0].side} needle "
                                                      f"ends {paras[0].target_to_midline_mm:.1f} mm from the midline"
                                                      ] + reasons, paras[:1]
        return "not advised", reasons + [f"parapedicular: {_failed(paras[0])}" if paras else "no pedicle"], paras

    uni = {} if force == "bipedicular" else {
        s: _best_on_side(volume, anatomy, label, s, request, mode="unipedicular", gauge=gauge) for s in sides}
    safe_uni = sorted((t for t in uni.values() if _usable(t)), key=_rank_key)
    lim = request.midline_limit_mm
    if safe_uni and safe_uni[0].target_to_midline_mm <= lim:
        best = safe_uni[0]
        reasons.insert(0, f"single {best.side} needle ends {best.target_to_midline_mm:.1f} mm from the midline "
                          f"(limit {lim:g} mm)")
        trajs.append(best)
        for t in safe_uni[1:]:
            t.role = "alternative"
            trajs.append(t)
        return f"unipedicular {best.side}", reasons, trajs
    bi = {s: _best_on_side(volume, anatomy, label, s, request, mode="bipedicular", gauge=gauge) for s in sides}
    safe_bi = [t for t in bi.values() if _usable(t)]
    if len(safe_bi) == 2:
        if safe_uni:
            reasons.insert(0, f"single needle ends {safe_uni[0].target_to_midline_mm:.1f} mm from the midline; "
                              f"limit {lim:g} mm")
        elif force == "bipedicular":
            reasons.insert(0, "bipedicular approach requested (each tip in the ventral part of its half, "
                              "not at the midline)")
        else:
            reasons.insert(0, "no single needle reaches the midline safely; one needle per pedicle, each tip "
                              "in the ventral part of its half")
        return "bipedicular", reasons, safe_bi
    if safe_uni:
        best = safe_uni[0]
        other = [s for s in sides if s != best.side]
        why = (f"; the {other[0]} pedicle has no safe corridor" if other else
               "; the other pedicle was not found, so no second needle is planned")
        reasons.insert(0, f"single {best.side} needle ends {best.target_to_midline_mm:.1f} mm from the midline "
                          f"(limit {lim:g} mm){why}")
        trajs.append(best)
        return f"unipedicular {best.side}", reasons, trajs
    if safe_bi:
        t = safe_bi[0]
        reasons.insert(0, f"only the {t.side} pedicle has a safe corridor; its needle ends "
                          f"{t.target_to_midline_mm:.1f} mm from the midline")
        return f"unipedicular {t.side}", reasons, [t]
    # nothing safe with this gauge: thinner gauge, then parapedicular
    attempts = [t for t in list(uni.values()) + list(bi.values()) if t is not None]
    if attempts:
        reasons.append(f"{gauge} G transpedicular: {_failed(attempts[0])}")
    alt: list[Trajectory] = []
    for side in sides:
        g = thinner_gauge(va.pedicles[side], gauge)
        if g is None:
            continue
        t = _best_on_side(volume, anatomy, label, side, request, mode="unipedicular", gauge=g)
        if _usable(t):
            alt.append(t)
    if alt:
        alt.sort(key=lambda t: t.target_to_midline_mm)
        t = alt[0]
        reasons.insert(0, f"a thinner {t.gauge} G needle fits the {t.side} pedicle and ends "
                          f"{t.target_to_midline_mm:.1f} mm from the midline (limit {request.midline_limit_mm:g} mm)")
        return f"unipedicular {t.side}", reasons, [t]
    if name.startswith("T"):
        paras = [t for t in (_best_on_side(volume, anatomy, label, s, request, mode="unipedicular", gauge=gauge,
                                           para=True) for s in sides) if t is not None]
        tried = paras
        paras = sorted((t for t in paras if _usable(t)), key=lambda t: t.target_to_midline_mm)
        if not paras:
            reasons.append("parapedicular (intercostovertebral) route: " + (_failed(tried[0]) if tried else
                                                                             "no corridor beside the pedicles"))
        if paras:
            reasons.insert(0, f"parapedicular (intercostovertebral) route offered instead: the {paras[0].side} "
                              f"needle ends {paras[0].target_to_midline_mm:.1f} mm from the midline")
            return f"parapedicular {paras[0].side}", reasons, paras[:1]
    # the best attempts are described in the reasons, not returned as paths to draw
    return "not advised", reasons or ["no safe transpedicular corridor"], []


def _alternatives_for_narrow(volume, anatomy, va, request, trajs, reasons):
    """Offer a thinner gauge and (thoracic) a parapedicular route beside a narrow pedicle."""
    gauge = int(request.gauge)
    out = []
    for side, ped in va.pedicles.items():
        tight = any(t.side == side and t.gauge == gauge and t.approach in ("transpedicular", "bipedicular")
                    and t.clearance_mm.get("cortex", 9.0) < _TIGHT_MM for t in trajs)
        if tight and not narrow_pedicle(ped, gauge)[0]:
            g = next((g for g in (13, 15) if g > gauge), None)
            t = None if g is None else _best_on_side(volume, anatomy, va.label, side, request,
                                                     mode="unipedicular", gauge=g)
            if _usable(t):
                t.role = "alternative"
                out.append(t)
                reasons.append(f"{side}: tight pedicle ({ped.width_mm:.1f} mm); a {g} G needle leaves "
                               f"{t.clearance_mm.get('cortex', 0.0):.1f} mm of bone (alternative)")
            continue
        if not narrow_pedicle(ped, gauge)[0]:
            continue
        if any(t.side == side and t.gauge != gauge for t in trajs):
            continue
        g = thinner_gauge(ped, gauge)
        if g is not None:
            t = _best_on_side(volume, anatomy, va.label, side, request, mode="unipedicular", gauge=g)
            if _usable(t):
                t.role = "alternative"
                out.append(t)
                reasons.append(f"{side}: a thinner {g} G needle fits the pedicle (alternative)")
            else:
                reasons.append(f"{side}: a {g} G needle leaves room in the isthmus but no safe path was found")
        else:
            thin = max(g for g in (13, 15) if g > gauge) if gauge < 15 else gauge
            reasons.append(f"{side}: no thinner needle fits either ({thin} G leaves "
                           f"{narrow_pedicle(ped, thin)[1]:.1f} mm)")
        if va.name.startswith("T") and not any(t.approach == "parapedicular" and t.side == side for t in trajs):
            t = _best_on_side(volume, anatomy, va.label, side, request, mode="unipedicular", gauge=gauge,
                              para=True)
            if _usable(t):
                t.role = "alternative"
                out.append(t)
                reasons.append(f"{side}: parapedicular (intercostovertebral) route possible (alternative)")
    return out


def _plan_one(volume, anatomy, va, request: PlanRequest) -> tuple[LevelPlan, list[Trajectory]]:
    _MEMO.d = {}
    try:
        return _plan_one_level(volume, anatomy, va, request)
    finally:
        _MEMO.d = None


def _plan_one_level(volume, anatomy, va, request: PlanRequest) -> tuple[LevelPlan, list[Trajectory]]:
    name = va.name
    approach = request.approach
    flags, flag_reasons = level_flags(va)
    default = default_approach(name)
    if approach == "auto":
        approach = default
    elif approach in ("transpedicular", "bipedicular", "parapedicular") and default != "transpedicular":
        approach = None
    elif approach == "anterolateral" and default != "anterolateral":
        approach = None
    ap = np.asarray(va.ap_axis_lps, float)
    cos_ap = float(-ap[1] / max(np.linalg.norm(ap), 1e-9))
    if approach is not None and cos_ap < _MIN_AP_COS:
        why = (f"the segmentation's AP axis of {name} points {np.degrees(np.arccos(np.clip(cos_ap, -1, 1))):.0f} deg "
               f"away from the patient's anterior: landmarks implausible, not planned (check the segmentation)")
        lp = LevelPlan(name, "not advised", [why] + flag_reasons, dict(va.body_heights_mm),
                       va.posterior_wall_intact, flags + ["implausible_frame"])
        return lp, []
    if approach is None:
        why = (f"{request.approach} approach is not planned at {name}" if request.approach != "auto"
               else f"no approach is planned at {name} (transpedicular T1-L5, anterolateral C3-C7)")
        lp = LevelPlan(name, "not advised", [why] + flag_reasons, dict(va.body_heights_mm),
                       va.posterior_wall_intact, flags)
        return lp, []
    if approach == "anterolateral":
        from needleplan.planner._cervical import plan_anterolateral

        rec, reasons, trajs = plan_anterolateral(volume, anatomy, va, request)
    else:
        force = approach if approach in ("bipedicular", "parapedicular") else None
        estimated: list[str] = []
        if len(va.pedicles) < 2:
            anatomy, estimated = with_estimated_pedicles(anatomy, va.label)
            va = anatomy.vertebra(va.label)
        rec, reasons, trajs = _plan_transpedicular(volume, anatomy, va, request, force)
        if estimated:
            reasons.append(f"{' and '.join(estimated)} pedicle landmarks estimated by the planner "
                           "(the segmentation found none): check them on the images")
            flags.append("pedicle_estimated")
        if force != "parapedicular":
            trajs = trajs + _alternatives_for_narrow(volume, anatomy, va, request, trajs, reasons)
    if "narrow" in " ".join(reasons):
        flags.append("narrow_pedicle")
    lp = LevelPlan(name, rec, reasons + flag_reasons, dict(va.body_heights_mm), va.posterior_wall_intact, flags)
    return lp, trajs


def plan_level(volume, anatomy, level, request: PlanRequest | None = None) -> tuple[LevelPlan, list[Trajectory]]:
    """Plan one level: its recommendation and trajectories.

    Raises
    ------
    PlanningError
        When the level has no safe corridor (the message gives the reasons).
    ValueError
        Unknown level or one not in the anatomy.
    """
    request = request or PlanRequest()
    _check_request(request)
    va = anatomy.vertebra(level)
    lp, trajs = _plan_one(volume, anatomy, va, request)
    if lp.recommendation == "not advised":
        raise PlanningError(f"{va.name}: no safe needle path: " + "; ".join(lp.reasons))
    return lp, trajs


def _check_request(request: PlanRequest) -> None:
    if request.approach not in _REQUEST_APPROACHES:
        raise ValueError(f"approach {request.approach!r} is not one of {', '.join(_REQUEST_APPROACHES)}")
    needle_diameter_mm(request.gauge)
    if request.needle_length_mm is not None and not (20.0 <= float(request.needle_length_mm) <= 300.0):
        raise ValueError(f"needle_length_mm {request.needle_length_mm!r} must be 20-300 mm")
    if not (0.0 <= float(request.canal_margin_mm) <= 10.0):
        raise ValueError(f"canal_margin_mm {request.canal_margin_mm!r} must be 0-10 mm")


def plan(volume, anatomy, request: PlanRequest | None = None, *, progress=None) -> Plan:
    """Plan every requested level (default: every vertebra in view).

    Parameters
    ----------
    volume : Volume
    anatomy : Anatomy
    request : PlanRequest, optional
    progress : callable, optional
        ``progress(i, n, level_name)`` before each level (e.g. to print on stderr).

    Returns
    -------
    Plan
        Levels without a safe corridor get the recommendation ``"not advised"`` with the
        reasons (the failed checks of the best attempt) and no trajectory.

    Raises
    ------
    ValueError
        Bad request or a requested level that is not in the anatomy.
    """
    request = request or PlanRequest()
    _check_request(request)
    if request.levels:
        vas = [anatomy.vertebra(lv) for lv in request.levels]
    else:
        vas = [va for va in anatomy.sorted_vertebrae() if default_approach(va.name) is not None]
    out = Plan(request=request, created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    for i, va in enumerate(vas):
        if progress is not None:
            progress(i, len(vas), va.name)
        lp, trajs = _plan_one(volume, anatomy, va, request)
        out.levels.append(lp)
        out.trajectories.extend(trajs)
    meta = getattr(volume, "meta", None) or {}
    pp = meta.get("patient_position")
    out.input = {"patient_position": pp or None, "series_uid": meta.get("series_uid"),
                 "shape": [int(x) for x in volume.shape],
                 "spacing_mm": [round(float(x), 4) for x in volume.spacing_mm],
                 "segmentation": getattr(anatomy, "method", None)}
    out.input["procedure_position"] = {"transpedicular": procedure_position(pp, "transpedicular"),
                                       "anterolateral": procedure_position(pp, "anterolateral")}
    return out

