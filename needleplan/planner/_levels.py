"""Per-level findings from the anatomy: leakage risk, height loss, osteolysis, narrow pedicles."""

from __future__ import annotations

import numpy as np

from needleplan.planner.model import NEEDLE_GAUGES_MM

__all__ = ["level_flags", "narrow_pedicle", "thinner_gauge", "medial_angle_window", "PEDICLE_SPARE_MM",
           "MEDIAL_ANGLE_RANGE_DEG", "PARAPEDICULAR_EXTRA_DEG"]

#: Usual medial (transverse) angle of a transpedicular needle per level, degrees (patient frame).
#: From the pedicle transverse angles (large at T1, ~0 at T12, ~30 at L5; Zindrick 1987,
#: Panjabi 1992) widened by the extra convergence a unipedicular path to the midline takes
#: (~20 deg at L1 to ~49 deg at L5 in a CT study of 200 patients).
MEDIAL_ANGLE_RANGE_DEG: dict[str, tuple[float, float]] = {
    "T1": (10.0, 40.0), "T2": (5.0, 38.0), "T3": (5.0, 35.0), "T4": (2.0, 35.0), "T5": (0.0, 32.0),
    "T6": (0.0, 32.0), "T7": (0.0, 32.0), "T8": (0.0, 32.0), "T9": (0.0, 30.0), "T10": (0.0, 30.0),
    "T11": (-5.0, 30.0), "T12": (-5.0, 30.0), "L1": (0.0, 32.0), "L2": (5.0, 36.0), "L3": (10.0, 42.0),
    "L4": (15.0, 48.0), "L5": (20.0, 55.0),
}

#: A parapedicular needle enters lateral to the pedicle and converges more than a
#: transpedicular one: its window is the level's widened by this much on the medial side.
PARAPEDICULAR_EXTRA_DEG = 15.0
_OTHER_LEVELS_DEG = (-5.0, 55.0)


def medial_angle_window(level: str, approach: str = "transpedicular") -> tuple[float, float]:
    """``(min, max)`` medial angle in degrees a planned needle at ``level`` may take.

    The literature range of :data:`MEDIAL_ANGLE_RANGE_DEG` for pedicle routes; for the
    parapedicular route its upper bound is raised by :data:`PARAPEDICULAR_EXTRA_DEG`.

    Examples
    --------
    >>> medial_angle_window("L5"), medial_angle_window("T8", "parapedicular")
    ((20.0, 55.0), (0.0, 47.0))
    """
    lo, hi = MEDIAL_ANGLE_RANGE_DEG.get(str(level), _OTHER_LEVELS_DEG)
    if approach == "parapedicular":
        hi += PARAPEDICULAR_EXTRA_DEG
    return float(lo), float(hi)


#: Isthmus width minus needle diameter below this (mm, both sides together) = too narrow.
PEDICLE_SPARE_MM = 2.0


def level_flags(va) -> tuple[list[str], list[str]]:
    """``(flags, reasons)`` of one vertebra: short codes and sentences for the report."""
    flags: list[str] = []
    reasons: list[str] = []
    if va.posterior_wall_intact is False:
        flags.append("posterior_wall_defect")
        reasons.append("posterior wall of the body is not intact: risk of cement leakage into the canal")
    ratio = va.height_ratio
    unreliable = [f for f in va.flags if f.startswith("heights unreliable")]
    if unreliable:
        # the segmentation did not grade these heights (ragged body outline): say why, infer nothing
        flags.append("heights_unreliable")
        reasons.append(unreliable[0])
    elif ratio is None and va.body_heights_mm:
        h = [v for v in va.body_heights_mm.values() if v is not None and np.isfinite(v)]
        if h and max(h) > 0:
            ratio = min(h) / max(h)
    grade = va.genant_grade
    if (ratio is not None and ratio < 0.35) or any("plana" in f.lower() for f in va.flags):
        flags.append("vertebra_plana")
        reasons.append("vertebra plana (near-complete loss of height): relative contraindication")
    elif grade == 3 or (ratio is not None and ratio < 0.6):
        flags.append("severe_height_loss")
        pct = "" if ratio is None else f" ({(1 - ratio) * 100:.0f} % loss)"
        reasons.append(f"severe height loss{pct}: relative contraindication, plan with care")
    elif grade in (1, 2):
        flags.append("height_loss")
        reasons.append(f"Genant grade {grade} height loss")
    if any("outside the field of view" in f.lower() for f in va.flags):
        flags.append("partly_out_of_view")
        reasons.append("vertebra partly outside the scan: landmarks and target height are less certain")
    aimed = [f.split(" ", 1)[0] for f in va.flags if "pedicle axis not resolved" in f]
    if aimed:
        flags.append("pedicle_axis_aimed")
        reasons.append(f"{' and '.join(aimed)} pedicle axis not resolved on this CT's voxels: aimed at the "
                       "anterior body wall in the midline; check the trajectory in the bull's-eye view")
    lytic = any(("lys" in f.lower() or "lytic" in f.lower()) for f in va.flags)
    if lytic:
        flags.append("osteolysis")
        if va.posterior_wall_intact is False:
            flags.append("osteolysis_no_cortex_at_canal")
            reasons.append("osteolysis with no intact cortex next to the canal: relative contraindication "
                           "(thermal ablation, cement leakage)")
        else:
            reasons.append("osteolytic lesion in the body")
    return flags, reasons


def narrow_pedicle(ped, gauge: int) -> tuple[bool, float]:
    """``(narrow, spare_mm)``: isthmus width minus needle diameter vs :data:`PEDICLE_SPARE_MM`."""
    spare = float(min(ped.width_mm, ped.height_mm)) - NEEDLE_GAUGES_MM[int(gauge)]
    return spare < PEDICLE_SPARE_MM, spare


def thinner_gauge(ped, gauge: int) -> int | None:
    """The largest thinner gauge (13, 15) that fits the pedicle, or None."""
    for g in (13, 15):
        if g > int(gauge) and not narrow_pedicle(ped, g)[0]:
            return g
    return None
