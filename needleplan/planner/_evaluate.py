"""The safety checks of one needle path; the same code for planned and hand-given paths.

A path is the straight line through the target and a point on the hub side.  Along it
(0.5 mm steps) the cached distance maps of the vertebra give the clearance of the
needle *surface* (axis distance minus the needle radius) to the canal and the cortex;
the CT gives the skin and any bone crossed before the bone entry.
"""

from __future__ import annotations

import numpy as np

from needleplan.planner._angles import carm_views, clinical_angles_deg, procedure_position, unit
from needleplan.planner._levels import medial_angle_window
from needleplan.planner._maps import in_view, sample_volume, vertebra_maps
from needleplan.planner.model import STANDARD_NEEDLE_LENGTHS_MM, Check, Trajectory, needle_diameter_mm
from needleplan.segmentation.model import level_label, level_name

__all__ = ["evaluate", "breach_grade", "vertebra_frame", "depth_fraction", "APPROACHES",
           "STEP_MM", "AIR_HU", "BONE_HU", "LONGEST_NEEDLE_MM", "VENTRAL_FRACTION"]

APPROACHES = ("transpedicular", "bipedicular", "parapedicular", "anterolateral")
STEP_MM = 0.5
AIR_HU = -300.0        # below: air (skin = soft tissue -> air)
BONE_HU = 250.0        # above, outside the target vertebra: bone in the way (rib, process)
LONGEST_NEEDLE_MM = STANDARD_NEEDLE_LENGTHS_MM[-1]
MAX_CC_DEG = 35.0         # nor tilt more than this craniocaudally (patient frame)
ENDPLATE_MM = 4.0         # tip to each endplate, mm (cement into the disc)
VENTRAL_FRACTION = 0.65   # tip depth fraction from which it counts as ventral (anterior third ~0.67)
_MAX_PATH_MM = 250.0
_FORWARD_MM = 25.0
_RAY_MM = 15.0


GRADE_BEHIND_ISTHMUS_MM = 3.0   # the pedicle is graded from at least this far behind its isthmus


def graded_start_mm(maps, side: str) -> float:
    """Where (along the pedicle axis from the isthmus, mm) the needle must start to stay inside.

    From 1 mm into the segmented pedicle part, but never later than
    :data:`GRADE_BEHIND_ISTHMUS_MM` behind the isthmus (a pedicle part cut short by a coarse
    segmentation must not leave the pedicle's posterior half unchecked).
    """
    s_min = maps.pedicle_extent.get(side, (-8.0, 8.0))[0]
    return min(s_min + 1.0, -GRADE_BEHIND_ISTHMUS_MM)


def breach_grade(breach_mm: float) -> str:
    """Gertzbein-Robbins grade of a cortical breach (mm beyond the outer cortex)."""
    if breach_mm <= 0:
        return "A"
    if breach_mm < 2:
        return "B"
    if breach_mm < 4:
        return "C"
    if breach_mm < 6:
        return "D"
    return "E"


def vertebra_frame(va) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ap, left, sup)`` orthonormal unit vectors of a vertebra (anterior, left, cranial)."""
    ap = unit(va.ap_axis_lps)
    left = np.asarray(va.left_lps, float)
    left = unit(left - (left @ ap) * ap)
    sup = np.cross(ap, left)
    return ap, left, sup


def depth_fraction(va, pts_lps) -> np.ndarray:
    """0 at the posterior wall, 1 at the anterior cortex, along the body's AP axis."""
    ap, _, _ = vertebra_frame(va)
    depth = float(va.body_depth_mm) if np.isfinite(va.body_depth_mm) and va.body_depth_mm > 0 else 30.0
    pw = va.posterior_wall_lps
    if pw is None:
        pw = np.asarray(va.body_center_lps, float) - ap * depth / 2
    return ((np.asarray(pts_lps, float) - pw) @ ap) / depth


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of the True runs of a 1-D bool array."""
    f = np.concatenate([[False], flags, [False]]).astype(np.int8)
    d = np.diff(f)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def _first_crossing(values: np.ndarray, step: float) -> float:
    """Distance (in steps * step) to the first sign change > 0 -> <= 0 (linear), inf if none."""
    neg = values <= 0
    if not neg.any():
        return np.inf
    i = int(np.argmax(neg))
    if i == 0:
        return 0.0
    a, b = float(values[i - 1]), float(values[i])
    return (i - 1 + a / (a - b)) * step


def _ray_walls(maps, pts: np.ndarray, dirs: dict[str, np.ndarray], radius: float) -> dict[str, float]:
    """Minimum distance from the needle surface to the vertebra surface along rays."""
    steps = np.arange(0.0, _RAY_MM + 1e-9, 0.25)
    out = {}
    for name, u in dirs.items():
        if len(pts) == 0:
            out[name] = None
            continue
        ray = pts[:, None, :] + steps[None, :, None] * u[None, None, :]
        sd = maps.sample("bone", ray)
        dist = np.array([min(_first_crossing(row, 0.25), _RAY_MM) for row in sd])
        out[name] = float(dist.min() - radius)
    return out


def evaluate(volume, anatomy, level, side: str, approach: str, skin_entry_lps, target_lps, *,
             gauge: int = 11, needle_length_mm: float | None = None, canal_margin_mm: float = 2.0,
             midline_limit_mm: float = 5.0, through_lps=None, patient_position: str | None = None,
             unipedicular: bool | None = None, structures=None) -> Trajectory:
    """Check one straight needle path; see :func:`needleplan.planner.evaluate_trajectory`."""
    if approach not in APPROACHES:
        raise ValueError(f"approach {approach!r} is not one of {', '.join(APPROACHES)}")
    if side not in ("left", "right", "midline"):
        raise ValueError(f"side {side!r} must be 'left', 'right' or 'midline'")
    label = level_label(level) if isinstance(level, str) else int(level)
    va = anatomy.vertebra(label)
    name = level_name(label)
    diameter = needle_diameter_mm(gauge)
    radius = diameter / 2
    target = _point(target_lps, "target_lps")
    hub = skin_entry_lps if skin_entry_lps is not None else through_lps
    if hub is None:
        raise ValueError("give skin_entry_lps or through_lps (a point on the needle's hub side)")
    hub = _point(hub, "skin_entry_lps" if skin_entry_lps is not None else "through_lps")
    if np.linalg.norm(hub - target) < 1.0:
        raise ValueError("entry and target are less than 1 mm apart; the needle direction is undefined")
    d = unit(target - hub)                     # advancing direction
    maps = vertebra_maps(anatomy, label)
    ap, left, sup = vertebra_frame(va)
    transped = approach in ("transpedicular", "bipedicular")
    if patient_position is None:
        patient_position = procedure_position(
            volume.meta.get("patient_position") if hasattr(volume, "meta") else None, approach)

    # ---- samples from the target backward (s >= 0) and forward (s < 0)
    s = np.arange(-_FORWARD_MM, _MAX_PATH_MM + 1e-9, STEP_MM)
    pts = target[None, :] - s[:, None] * d[None, :]
    i0 = int(np.argmin(np.abs(s)))
    view = in_view(volume, pts)
    bone_sd = maps.bone_sd(anatomy, pts)
    hu = sample_volume(volume, pts)
    checks: list[Check] = []
    notes: list[str] = []

    # ---- anterior cortex: along the needle beyond the tip
    fwd = bone_sd[: i0 + 1][::-1]            # from the tip forward
    if fwd[0] <= 0:
        anterior = float(fwd[0])
    else:
        anterior = float(min(_first_crossing(fwd, STEP_MM), _FORWARD_MM))

    # ---- graded segment (where the needle must stay inside the cortex) and the bone entry
    back = bone_sd[i0:]
    back_pts = pts[i0:]
    target_in_bone = back[0] > 0
    ped = va.pedicles.get(side) if side in ("left", "right") else None
    if transped and ped is not None:
        s_min = graded_start_mm(maps, side)
        graded_all = ((back_pts - ped.isthmus_center_lps) @ unit(ped.axis_lps)) >= s_min
    elif approach == "parapedicular":
        graded_all = depth_fraction(va, back_pts) >= 0.05
    else:
        graded_all = None
    if graded_all is not None:
        j_g = int(np.argmin(graded_all)) if not graded_all.all() else len(graded_all) - 1
        j_g = max(j_g, 1)
        # the bone entry is where the axis last enters the vertebra: a dip out of the bone behind
        # the pedicle (a notch between the processes) puts the entry after it
        outside_runs = _runs(back[j_g:] <= 0)
        j_entry = j_g + outside_runs[0][0] if outside_runs else len(back) - 1
    else:
        outside_runs = [(a, b) for a, b in _runs(back <= 0) if (b - a) * STEP_MM >= 1.5 or b == len(back)]
        if target_in_bone and outside_runs:
            j_entry = outside_runs[0][0]
        else:
            inside = np.flatnonzero(back > 0)
            j_entry = int(inside.max()) + 1 if len(inside) else 0
        j_g = max(int(j_entry - 3.0 / STEP_MM), 1)
    j_entry = max(j_entry, 1)
    bone_entry = target - j_entry * STEP_MM * d

    # ---- skin: first air run (>= 4 mm) behind the bone entry with no real tissue beyond it
    hub_hu = hu[i0 + j_entry:]
    hub_view = view[i0 + j_entry:]
    air = (hub_hu < AIR_HU) | ~hub_view
    skin_j = None
    internal_air_mm = 0.0
    for a, b in _runs(air):
        if (b - a) * STEP_MM < 4.0 and b < len(air):
            continue
        tissue_after = float(np.count_nonzero(~air[b:])) * STEP_MM
        if tissue_after < 10.0:
            skin_j = a
            break
        internal_air_mm += (b - a) * STEP_MM
    if skin_j is None:
        skin_j = len(air) - 1
        skin_in_view = False
    else:
        skin_in_view = bool(hub_view[skin_j]) and bool(hub_hu[skin_j] < AIR_HU)
    skin_j = max(skin_j, 1)
    skin_s = (j_entry + skin_j) * STEP_MM
    skin = target - skin_s * d
    path = slice(i0, i0 + j_entry + skin_j + 1)   # samples from the tip to the skin

    # ---- bone crossed between the skin and the bone entry
    seg_hu = hu[i0 + j_entry: i0 + j_entry + skin_j]
    seg_sd = bone_sd[i0 + j_entry: i0 + j_entry + skin_j]
    bony = (seg_hu > BONE_HU) | (seg_sd > 0)
    crossed = sum((b - a) * STEP_MM for a, b in _runs(bony) if (b - a) * STEP_MM >= 1.0 and a * STEP_MM > 2.0)
    # ---- canal
    canal_sd = maps.sample("canal", pts[path])
    canal_clear = float(canal_sd.min() - radius) if maps.canal_found else None
    other_clear = float(maps.sample("other", pts[path]).min() - radius) if maps.other_found else None

    # ---- breach over the graded segment, wall rays in the pedicle part
    seg_pts = back_pts[:j_g]
    seg_bone = back[:j_g]
    frac_seg = depth_fraction(va, seg_pts)
    in_ped = frac_seg <= 0.0 if transped else np.zeros(len(seg_pts), bool)
    graded = np.ones(len(seg_pts), bool)
    breach = float(max(0.0, np.max(radius - seg_bone)))
    grade = breach_grade(breach)
    clearance: dict[str, float | None] = {}
    if transped:
        sign = 1.0 if side == "left" else -1.0
        medial = -sign * left
        dirs = {}
        for nm, v in (("medial_wall", medial), ("lateral_wall", -medial), ("superior", sup),
                      ("inferior", -sup)):
            v = v - (v @ d) * d
            dirs[nm] = unit(v)
        walls = _ray_walls(maps, seg_pts[in_ped], dirs, radius)
        clearance.update(walls)
    # the tip's distance to the endplates (cement into the disc) along the vertebra's S axis
    tip_rays = _ray_walls(maps, target[None], {"tip_superior": sup, "tip_inferior": -sup}, 0.0)
    clearance.update(tip_rays)
    clearance["canal"] = canal_clear
    clearance["anterior_cortex" if approach != "anterolateral" else "posterior_cortex"] = anterior
    clearance["cortex"] = float(np.min(seg_bone) - radius)
    clearance["other_vertebra"] = other_clear

    # ---- target quality
    frac_t = float(depth_fraction(va, target[None])[0])
    mid_off = float((target - np.asarray(va.body_center_lps, float)) @ left)
    mid_dist = abs(mid_off)
    length = float(np.linalg.norm(target - skin))

    # ---- checks
    def add(nm, ok, value, limit, unit_, sev, msg):
        checks.append(Check(nm, bool(ok), value, limit, unit_, sev, msg))

    add("target_in_vertebra", target_in_bone, float(bone_sd[i0]), 0.0, "mm", "unsafe",
        "tip inside the vertebra" if target_in_bone else "tip lies outside the vertebra")
    if maps.canal_found:
        add("canal_clearance", canal_clear >= canal_margin_mm, canal_clear, canal_margin_mm, "mm", "unsafe",
            f"needle surface {canal_clear:.1f} mm from the spinal canal (limit {canal_margin_mm:g} mm)")
    else:
        add("canal_clearance", False, None, canal_margin_mm, "mm", "warning",
            "spinal canal not segmented: canal clearance unknown, judged from the medial wall only")
    if transped:
        mw = clearance.get("medial_wall")
        if mw is not None:
            add("medial_wall", mw >= 0.0, mw, 0.0, "mm", "unsafe",
                "needle stays lateral to the medial pedicle wall" if mw >= 0 else
                f"needle crosses the medial pedicle wall by {-mw:.1f} mm (canal at risk)")
        for nm, label_ in (("lateral_wall", "lateral pedicle wall"), ("superior", "superior pedicle wall"),
                           ("inferior", "inferior pedicle wall (nerve root)")):
            v = clearance.get(nm)
            if v is not None:
                sev = "unsafe" if (nm == "inferior" and v < -2.0) else "warning"
                add(nm, v >= 0.0, v, 0.0, "mm", sev,
                    f"{label_}: {v:.1f} mm" if v >= 0 else f"breaches the {label_} by {-v:.1f} mm")
    sev = "unsafe" if breach >= 2.0 else "warning"
    add("breach_grade", breach <= 0.0, breach, 0.0, "mm", sev,
        f"Gertzbein-Robbins grade {grade}" + ("" if breach <= 0 else f" ({breach:.1f} mm outside the cortex)"))
    cortex_name = "posterior_cortex" if approach == "anterolateral" else "anterior_cortex"
    add(cortex_name, anterior >= 3.0, anterior, 3.0, "mm", "unsafe" if anterior <= 0 else "warning",
        f"tip {anterior:.1f} mm short of the {cortex_name.replace('_', ' ')} along the needle (limit 3 mm)")
    for nm, word in (("tip_superior", "superior"), ("tip_inferior", "inferior")):
        v = clearance.get(nm)
        if v is not None and target_in_bone:
            add(f"{nm}_endplate", v >= ENDPLATE_MM, v, ENDPLATE_MM, "mm", "warning",
                f"tip {v:.1f} mm from the {word} endplate (limit {ENDPLATE_MM:g} mm)")
    add("bone_before_entry", crossed <= 0.0, crossed, 0.0, "mm", "unsafe",
        "no bone between skin and entry point" if crossed <= 0 else
        f"path crosses {crossed:.1f} mm of bone before the entry point (rib, process or facet)")
    if internal_air_mm > 0:
        add("air_crossed", False, internal_air_mm, 0.0, "mm", "unsafe",
            f"path crosses {internal_air_mm:.0f} mm of air inside the body (lung, airway or bowel)")
    if other_clear is not None:
        add("other_vertebra", other_clear >= 0.0, other_clear, 0.0, "mm", "unsafe",
            "path stays out of the neighbouring vertebrae" if other_clear >= 0 else
            "path enters a neighbouring vertebra")
    auto_length = needle_length_mm is None
    if auto_length:  # the shortest standard needle that reaches
        needle_length_mm = next((n for n in STANDARD_NEEDLE_LENGTHS_MM if length <= n), LONGEST_NEEDLE_MM)
    sev_len = "unsafe" if length > LONGEST_NEEDLE_MM else "warning"
    longer = f": longer than the {needle_length_mm:.0f} mm needle" + (
        f"; use a {LONGEST_NEEDLE_MM / 10:.0f} cm needle" if length <= LONGEST_NEEDLE_MM else "")
    chosen = f"; {needle_length_mm / 10:.0f} cm needle" if auto_length else ""
    add("needle_length", length <= needle_length_mm, length, needle_length_mm, "mm", sev_len,
        f"skin to target {length:.0f} mm" + (chosen if length <= needle_length_mm else longer))
    if not skin_in_view:
        add("skin_in_view", False, None, None, "", "warning",
            "the skin entry lies outside the CT field of view; path length is a lower bound")
    if approach == "anterolateral":
        add("target_depth_fraction", 0.25 <= frac_t <= 0.8, frac_t, 0.25, "", "warning",
            f"tip at {frac_t:.2f} of the body depth (anterior 0..1 posterior reversed for this approach)")
    else:
        add("target_depth_fraction", frac_t >= VENTRAL_FRACTION, frac_t, VENTRAL_FRACTION, "", "warning",
            f"tip at {frac_t:.2f} of the body depth (ventral third from {VENTRAL_FRACTION:.2f})")
    uni = unipedicular if unipedicular is not None else approach != "bipedicular"
    if uni:
        add("target_to_midline", mid_dist <= midline_limit_mm, mid_dist, midline_limit_mm, "mm", "warning",
            f"tip {mid_dist:.1f} mm from the midline (limit {midline_limit_mm:g} mm)")
    elif side in ("left", "right"):
        own = mid_off * (1 if side == "left" else -1)
        add("target_in_own_half", own >= 0.0, own, 0.0, "mm", "warning",
            f"tip {own:.1f} mm into its own half of the body")
    if va.posterior_wall_intact is False:
        add("posterior_wall_intact", False, None, None, "", "warning",
            "posterior wall of the body not intact: cement leakage risk")
    if structures is not None:
        for c in structures.checks(pts[path], radius):
            checks.append(c)

    med, cc = clinical_angles_deg(skin, target, side=side if side != "midline" else None,
                                  midline_x_mm=float(va.body_center_lps[0]))
    if transped or approach == "parapedicular":
        lo, hi = medial_angle_window(name, approach)
        add("medial_angle", lo <= med <= hi, med, lo if med < lo else hi, "deg", "warning",
            f"medial angle {med:.0f} deg (usual at {name}: {lo:g} to {hi:g} deg)" + (
                "" if lo <= med <= hi else (": diverging or too straight" if med < lo else ": too convergent")
                + ", check the pedicle on the images"))
        add("craniocaudal_angle", abs(cc) <= MAX_CC_DEG, abs(cc), MAX_CC_DEG, "deg", "warning",
            f"craniocaudal angle {cc:.0f} deg (limit {MAX_CC_DEG:g} deg)")
    status = "ok"
    for c in checks:
        if not c.passed:
            if c.severity == "unsafe":
                status = "unsafe"
                break
            status = "warning"
    carm = carm_views(skin, target, side=side, patient_position=patient_position)
    profile = _profile(s[path], bone_sd[path], canal_sd, radius, skin_s, j_entry, graded)
    traj = Trajectory(
        level=name, side=side, approach=approach, skin_entry_lps=skin, bone_entry_lps=bone_entry,
        target_lps=target, gauge=int(gauge), needle_diameter_mm=diameter,
        needle_length_mm=float(needle_length_mm), medial_angle_deg=med, craniocaudal_angle_deg=cc,
        clearance_mm={k: v for k, v in clearance.items() if v is not None},
        target_to_midline_mm=mid_dist, target_depth_fraction=frac_t, carm=carm, checks=checks,
        status=status, notes=notes, clearance_profile=profile,
        breach_grade=grade)
    return traj


def _profile(s, bone_sd, canal_sd, radius, skin_s, j_entry, graded) -> dict:
    """Clearance along the needle from the skin (depth 0) to the tip, 1 mm steps."""
    depth = skin_s - s
    cortex = np.full(len(s), np.nan)
    idx = np.flatnonzero(graded)
    cortex[idx] = bone_sd[idx] - radius
    canal = canal_sd - radius
    comb = np.where(np.isnan(cortex), canal, np.minimum(cortex, canal))
    order = np.argsort(depth)
    keep = order[:: max(1, int(round(1.0 / STEP_MM)))]

    def lst(a):
        return [None if not np.isfinite(x) else round(float(x), 2) for x in a[keep]]

    return {"depth_mm": lst(depth), "clearance_mm": lst(comb), "canal_mm": lst(canal),
            "cortex_mm": lst(cortex)}


def _point(p, name: str) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be 3 finite LPS coordinates in mm, got {p!r}")
    return a
