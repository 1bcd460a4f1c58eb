"""Needle trajectory planning: approaches, search, safety checks, the plan model."""

from needleplan.errors import PlanningError
from needleplan.planner._angles import carm_views, clinical_angles_deg, procedure_position
from needleplan.planner._evaluate import breach_grade
from needleplan.planner._levels import MEDIAL_ANGLE_RANGE_DEG, medial_angle_window
from needleplan.planner._plan import default_approach, evaluate_trajectory, plan, plan_level
from needleplan.planner.model import (NEEDLE_GAUGES_MM, PLAN_SCHEMA, Check, LevelPlan, Plan, PlanRequest,
                                      Trajectory, needle_diameter_mm)

__all__ = [
    "plan",
    "plan_level",
    "evaluate_trajectory",
    "default_approach",
    "clinical_angles_deg",
    "carm_views",
    "procedure_position",
    "breach_grade",
    "MEDIAL_ANGLE_RANGE_DEG",
    "medial_angle_window",
    "PlanningError",
    "Plan",
    "PlanRequest",
    "LevelPlan",
    "Trajectory",
    "Check",
    "PLAN_SCHEMA",
    "NEEDLE_GAUGES_MM",
    "needle_diameter_mm",
]
