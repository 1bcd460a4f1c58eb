"""Data model of a needle plan (schema ``needleplan.plan/1`` of DESIGN.md).

Points are float64 (3,) arrays in patient LPS millimetres; angles are in degrees.
``to_dict``/``from_dict`` are the only (de)serialisation; writing files is ``io``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "PLAN_SCHEMA",
    "STANDARD_NEEDLE_LENGTHS_MM",
    "NEEDLE_GAUGES_MM",
    "needle_diameter_mm",
    "Check",
    "Trajectory",
    "LevelPlan",
    "PlanRequest",
    "Plan",
]

PLAN_SCHEMA = "needleplan.plan/1"

#: Introducer needle lengths in stock (mm): 10 cm for most lumbar cases, 15 cm for large patients.
STANDARD_NEEDLE_LENGTHS_MM: tuple[float, ...] = (100.0, 150.0)

#: Outer diameter in mm of the introducer needle by gauge (Stubs' iron wire gauge).
NEEDLE_GAUGES_MM: dict[int, float] = {8: 4.19, 10: 3.40, 11: 3.05, 13: 2.41, 15: 1.83}


def needle_diameter_mm(gauge: int) -> float:
    """Outer diameter (mm) of a needle of the given gauge."""
    try:
        return NEEDLE_GAUGES_MM[int(gauge)]
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"needle gauge {gauge!r} is not supported; use one of "
                         f"{', '.join(str(g) for g in sorted(NEEDLE_GAUGES_MM))}") from None


def _vec(a) -> list[float]:
    return [round(float(x), 3) for x in np.asarray(a, dtype=np.float64).ravel()]


def _arr(a) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"expected 3 finite coordinates (LPS mm), got {a!r}")
    return arr


def _num(x):
    if x is None:
        return None
    x = float(x)
    return round(x, 3) if np.isfinite(x) else None


@dataclass
class Check:
    """One safety or quality check of a trajectory.

    ``severity`` says what a failure means: ``"unsafe"`` (hard limit) or ``"warning"``.
    """

    name: str
    passed: bool
    value: float | None
    limit: float | None
    unit: str
    severity: str = "unsafe"
    message: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": bool(self.passed), "value": _num(self.value),
                "limit": _num(self.limit), "unit": self.unit, "severity": self.severity,
                "message": self.message}

    @classmethod
    def from_dict(cls, d: dict) -> "Check":
        return cls(name=str(d["name"]), passed=bool(d["passed"]), value=d.get("value"),
                   limit=d.get("limit"), unit=str(d.get("unit", "")),
                   severity=str(d.get("severity", "unsafe")), message=str(d.get("message", "")))


@dataclass
class Trajectory:
    """A planned needle path (all points LPS mm, angles degrees).

    Attributes
    ----------
    level : str
        Level name, e.g. ``"L1"``.
    side : {'left', 'right', 'midline'}
    approach : str
        ``"transpedicular"``, ``"parapedicular"`` or ``"anterolateral"``.
    skin_entry_lps, bone_entry_lps, target_lps : (3,) ndarray
    gauge : int
    needle_diameter_mm : float
    clearance_mm : dict
        Minimum distance from the needle *surface* to each structure (``medial_wall``,
        ``canal``, ``lateral_wall``, ``superior``, ``inferior``, ``anterior_cortex``, ...).
    checks : list of Check
    status : {'ok', 'warning', 'unsafe'}
    """

    level: str
    side: str
    approach: str
    skin_entry_lps: np.ndarray
    bone_entry_lps: np.ndarray
    target_lps: np.ndarray
    gauge: int = 11
    needle_diameter_mm: float = 3.05
    needle_length_mm: float = 100.0
    medial_angle_deg: float = float("nan")
    craniocaudal_angle_deg: float = float("nan")
    clearance_mm: dict[str, float] = field(default_factory=dict)
    target_to_midline_mm: float = float("nan")
    target_depth_fraction: float = float("nan")
    carm: dict = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    status: str = "ok"
    notes: list[str] = field(default_factory=list)
    clearance_profile: dict | None = None  # {"depth_mm": [...], "clearance_mm": [...]}
    role: str = "recommended"  # "recommended" | "alternative" (thinner gauge, parapedicular, other side)
    breach_grade: str | None = None  # Gertzbein-Robbins grade A-E of the planned path (None: not graded)

    def __post_init__(self):
        self.skin_entry_lps = _arr(self.skin_entry_lps)
        self.bone_entry_lps = _arr(self.bone_entry_lps)
        self.target_lps = _arr(self.target_lps)

    @property
    def name(self) -> str:
        return f"{self.level} {self.side}"

    def procedure_position(self, scan_position: str | None = None) -> str:
        """Patient position the C-arm angles of this trajectory assume (DICOM code).

        The planner stores it in ``carm["patient_position"]``; otherwise it follows from
        the approach (prone for pedicle routes, supine for anterolateral) and the
        head/feet-first of ``scan_position``.  Every fluoroscopy view of the trajectory
        must be built with this position so that pictures and angles agree.
        """
        pp = (self.carm or {}).get("patient_position")
        if pp:
            return str(pp)
        from needleplan.planner._angles import procedure_position

        return procedure_position(scan_position, self.approach)

    @property
    def length_mm(self) -> float:
        """Skin entry to target, mm."""
        return float(np.linalg.norm(self.target_lps - self.skin_entry_lps))

    @property
    def direction_lps(self) -> np.ndarray:
        """Unit vector from skin entry toward the target."""
        d = self.target_lps - self.skin_entry_lps
        n = np.linalg.norm(d)
        if n == 0:
            raise ValueError(f"trajectory {self.name}: skin entry and target coincide")
        return d / n

    def to_dict(self) -> dict:
        return {
            "level": self.level,
            "side": self.side,
            "approach": self.approach,
            "gauge": int(self.gauge),
            "needle_diameter_mm": _num(self.needle_diameter_mm),
            "needle_length_mm": _num(self.needle_length_mm),
            "skin_entry_lps": _vec(self.skin_entry_lps),
            "bone_entry_lps": _vec(self.bone_entry_lps),
            "target_lps": _vec(self.target_lps),
            "length_mm": _num(self.length_mm),
            "medial_angle_deg": _num(self.medial_angle_deg),
            "craniocaudal_angle_deg": _num(self.craniocaudal_angle_deg),
            "clearance_mm": {k: _num(v) for k, v in self.clearance_mm.items()},
            "target_to_midline_mm": _num(self.target_to_midline_mm),
            "target_depth_fraction": _num(self.target_depth_fraction),
            "carm": self.carm,
            "checks": [c.to_dict() for c in self.checks],
            "status": self.status,
            "notes": list(self.notes),
            "clearance_profile": self.clearance_profile,
            "role": self.role,
            "breach_grade": self.breach_grade,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Trajectory":
        def f(key):
            v = d.get(key)
            return float("nan") if v is None else float(v)

        return cls(
            level=str(d["level"]), side=str(d["side"]), approach=str(d["approach"]),
            skin_entry_lps=d["skin_entry_lps"], bone_entry_lps=d.get("bone_entry_lps", d["skin_entry_lps"]),
            target_lps=d["target_lps"], gauge=int(d.get("gauge", 11)),
            needle_diameter_mm=float(d.get("needle_diameter_mm") or needle_diameter_mm(int(d.get("gauge", 11)))),
            needle_length_mm=float(d.get("needle_length_mm") or 100.0),
            medial_angle_deg=f("medial_angle_deg"), craniocaudal_angle_deg=f("craniocaudal_angle_deg"),
            clearance_mm={k: (float("nan") if v is None else float(v))
                          for k, v in (d.get("clearance_mm") or {}).items()},
            target_to_midline_mm=f("target_to_midline_mm"),
            target_depth_fraction=f("target_depth_fraction"),
            carm=dict(d.get("carm") or {}),
            checks=[Check.from_dict(c) for c in d.get("checks", [])],
            status=str(d.get("status", "ok")),
            notes=list(d.get("notes", [])),
            clearance_profile=d.get("clearance_profile"),
            role=str(d.get("role", "recommended")),
            breach_grade=d.get("breach_grade"),
        )


@dataclass
class LevelPlan:
    """The recommendation for one vertebral level."""

    level: str
    recommendation: str  # "unipedicular left" | "unipedicular right" | "bipedicular" | "anterolateral" | "not advised"
    reasons: list[str] = field(default_factory=list)
    body_heights_mm: dict[str, float] = field(default_factory=dict)
    posterior_wall_intact: bool | None = None
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"level": self.level, "recommendation": self.recommendation,
                "reasons": list(self.reasons),
                "body_heights_mm": {k: _num(v) for k, v in self.body_heights_mm.items()},
                "posterior_wall_intact": self.posterior_wall_intact, "flags": list(self.flags)}

    @classmethod
    def from_dict(cls, d: dict) -> "LevelPlan":
        return cls(level=str(d["level"]), recommendation=str(d["recommendation"]),
                   reasons=list(d.get("reasons", [])),
                   body_heights_mm={k: float(v) for k, v in (d.get("body_heights_mm") or {}).items()
                                    if v is not None},
                   posterior_wall_intact=d.get("posterior_wall_intact"), flags=list(d.get("flags", [])))


@dataclass
class PlanRequest:
    """What the user asked for."""

    levels: list[str] | None = None  # None = every vertebra in view
    approach: str = "auto"  # auto | transpedicular | bipedicular | anterolateral | parapedicular
    gauge: int = 11
    needle_length_mm: float | None = None  # None: the shortest standard needle that reaches
    canal_margin_mm: float = 2.0
    midline_limit_mm: float = 5.0

    def to_dict(self) -> dict:
        return {"levels": self.levels, "approach": self.approach, "gauge": self.gauge,
                "needle_length_mm": self.needle_length_mm, "canal_margin_mm": self.canal_margin_mm,
                "midline_limit_mm": self.midline_limit_mm}

    @classmethod
    def from_dict(cls, d: dict) -> "PlanRequest":
        return cls(levels=d.get("levels"), approach=d.get("approach", "auto"),
                   gauge=int(d.get("gauge", 11)),
                   needle_length_mm=None if d.get("needle_length_mm") is None else float(d["needle_length_mm"]),
                   canal_margin_mm=float(d.get("canal_margin_mm", 2.0)),
                   midline_limit_mm=float(d.get("midline_limit_mm", 5.0)))


@dataclass
class Plan:
    """Trajectories, per-level recommendations, the request and the input's identity."""

    trajectories: list[Trajectory] = field(default_factory=list)
    levels: list[LevelPlan] = field(default_factory=list)
    request: PlanRequest = field(default_factory=PlanRequest)
    input: dict = field(default_factory=dict)  # series_uid, patient_position, source, ...
    software_version: str = ""
    created: str = ""

    def to_dict(self) -> dict:
        from needleplan import __version__

        return {
            "schema": PLAN_SCHEMA,
            "coordinate_system": "LPS",
            "units": "mm",
            "software": {"name": "needleplan", "version": self.software_version or __version__},
            "created": self.created,
            "input": dict(self.input),
            "request": self.request.to_dict(),
            "trajectories": [t.to_dict() for t in self.trajectories],
            "levels": [lv.to_dict() for lv in self.levels],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Plan":
        """Build a Plan from a dict that :func:`needleplan.io.read_plan_json` validated."""
        return cls(
            trajectories=[Trajectory.from_dict(t) for t in d.get("trajectories", [])],
            levels=[LevelPlan.from_dict(lv) for lv in d.get("levels", [])],
            request=PlanRequest.from_dict(d.get("request") or {}),
            input=dict(d.get("input") or {}),
            software_version=str((d.get("software") or {}).get("version", "")),
            created=str(d.get("created", "")),
        )
