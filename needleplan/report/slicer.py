"""3D Slicer markups (``plan.mrk.json``): each trajectory as a Line, the points as fiducials.

Coordinates are LPS millimetres like the rest of needleplan, so File > Add Data in Slicer
places the needles on the CT they were planned on.  Slicer reads every markup of the
file, one node each.  :data:`MARKUPS_SCHEMA` is needleplan's own JSON schema (Draft 7)
of the part of Slicer's markups format that needleplan writes; the tests check every
written document against it.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np

__all__ = ["MARKUPS_SCHEMA_URL", "MARKUPS_SCHEMA", "markups_schema", "markups_dict", "write_slicer_markups"]

#: The schema id Slicer itself writes (kept on the "master" URL for older Slicer versions).
MARKUPS_SCHEMA_URL = ("https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
                      "Resources/Schema/markups-schema-v1.0.3.json#")

_STATUS_RGB = {"ok": [0.2, 0.8, 0.35], "warning": [1.0, 0.7, 0.0], "unsafe": [0.95, 0.2, 0.15]}

# ----------------------------------------------------------------------------- our schema
# Written for needleplan from what Slicer needs to load a markups file; it is not Slicer's
# schema file and covers only the subset needleplan writes (stricter where that helps
# catch our own mistakes, e.g. control point keys, exactly two points on a Line).
_XYZ = {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}
_RGB = {"type": "array", "items": {"type": "number", "minimum": 0.0, "maximum": 1.0}, "minItems": 3, "maxItems": 3}
_CONTROL_POINT = {
    "type": "object",
    "required": ["id", "label", "position"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "label": {"type": "string"},
        "description": {"type": "string"},
        "associatedNodeID": {"type": "string"},
        "position": _XYZ,
        "orientation": {"type": "array", "items": {"type": "number"}, "minItems": 9, "maxItems": 9},
        "selected": {"type": "boolean"},
        "locked": {"type": "boolean"},
        "visibility": {"type": "boolean"},
        "positionStatus": {"enum": ["undefined", "preview", "defined"]},
    },
}
_MEASUREMENT = {
    "type": "object",
    "required": ["name", "value"],
    "properties": {"name": {"type": "string", "minLength": 1}, "enabled": {"type": "boolean"},
                   "value": {"type": "number"}, "units": {"type": "string"}, "printFormat": {"type": "string"}},
}
_DISPLAY = {
    "type": "object",
    "properties": {
        "visibility": {"type": "boolean"}, "opacity": {"type": "number", "minimum": 0.0, "maximum": 1.0},
        "color": _RGB, "selectedColor": _RGB, "activeColor": _RGB, "sliceProjectionColor": _RGB,
        "glyphType": {"type": "string"}, "glyphScale": {"type": "number", "exclusiveMinimum": 0},
        "glyphSize": {"type": "number", "exclusiveMinimum": 0}, "textScale": {"type": "number", "minimum": 0},
        "lineThickness": {"type": "number", "exclusiveMinimum": 0},
        "snapMode": {"enum": ["unconstrained", "toVisibleSurface"]},
    },
}
_MARKUP = {
    "type": "object",
    "required": ["type", "coordinateSystem", "controlPoints"],
    "properties": {
        "type": {"enum": ["Fiducial", "Line", "Angle", "Curve", "ClosedCurve", "Plane", "ROI"]},
        "name": {"type": "string"},
        "coordinateSystem": {"enum": ["LPS", "RAS"]},
        "coordinateUnits": {"const": "mm"},
        "locked": {"type": "boolean"},
        "fixedNumberOfControlPoints": {"type": "boolean"},
        "labelFormat": {"type": "string"},
        "lastUsedControlPointNumber": {"type": "integer", "minimum": 0},
        "controlPoints": {"type": "array", "items": _CONTROL_POINT},
        "measurements": {"type": "array", "items": _MEASUREMENT},
        "display": _DISPLAY,
    },
    "allOf": [
        {"if": {"properties": {"type": {"const": "Line"}}},
         "then": {"properties": {"controlPoints": {"minItems": 2, "maxItems": 2}}}},
        {"if": {"properties": {"type": {"const": "Angle"}}},
         "then": {"properties": {"controlPoints": {"maxItems": 3}}}},
    ],
}
#: needleplan's own JSON schema (Draft 7) of the markups documents it writes.
MARKUPS_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$id": "needleplan.report.slicer/markups-subset",
    "title": "3D Slicer markups file as written by needleplan",
    "type": "object",
    "required": ["@schema", "markups"],
    "additionalProperties": False,
    "properties": {
        "@schema": {"type": "string", "pattern": r"/markups-schema-v1\.0\.[0-9]+\.json#?$"},
        "markups": {"type": "array", "items": _MARKUP},
    },
}


def markups_schema() -> dict:
    """A copy of :data:`MARKUPS_SCHEMA`, ready for ``jsonschema.Draft7Validator``."""
    return copy.deepcopy(MARKUPS_SCHEMA)


def _pos(p) -> list[float]:
    return [round(float(v), 3) for v in np.asarray(p, float)]


def _point(idx: int, label: str, position, description: str = "") -> dict:
    return {"id": str(idx), "label": label, "description": description, "associatedNodeID": "",
            "position": _pos(position), "orientation": [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0],
            "selected": True, "locked": True, "visibility": True, "positionStatus": "defined"}


def _display(rgb, *, glyph_scale: float = 1.5, line_thickness: float = 0.2) -> dict:
    return {"visibility": True, "opacity": 1.0, "color": list(rgb), "selectedColor": list(rgb),
            "activeColor": [0.4, 1.0, 0.0], "propertiesLabelVisibility": True, "pointLabelsVisibility": True,
            "textScale": 2.5, "glyphType": "Sphere3D", "glyphScale": glyph_scale, "glyphSize": 3.0,
            "useGlyphScale": True, "sliceProjection": False, "sliceProjectionUseFiducialColor": True,
            "sliceProjectionOutlinedBehindSlicePlane": False, "sliceProjectionColor": [1.0, 1.0, 1.0],
            "sliceProjectionOpacity": 0.6, "lineThickness": line_thickness, "lineColorFadingStart": 1.0,
            "lineColorFadingEnd": 10.0, "lineColorFadingSaturation": 1.0, "lineColorFadingHueOffset": 0.0,
            "handlesInteractive": False, "snapMode": "toVisibleSurface"}


def markups_dict(plan, *, include_points: bool = True) -> dict:
    """The markups document for a plan (a dict ready for ``json.dump``).

    Parameters
    ----------
    plan : needleplan.planner.Plan
    include_points : bool
        Also add one Fiducial markup "Planned points" with skin entry, bone entry and
        target of every trajectory.

    Returns
    -------
    dict
    """
    markups = []
    for t in plan.trajectories:
        desc = (f"{t.approach}, {t.gauge} G ({t.needle_diameter_mm:.2f} mm); medial "
                f"{t.medial_angle_deg:.1f} deg, craniocaudal {t.craniocaudal_angle_deg:.1f} deg; status {t.status}")
        markups.append({
            "type": "Line",
            "name": t.name,
            "coordinateSystem": "LPS",
            "coordinateUnits": "mm",
            "locked": True,
            "fixedNumberOfControlPoints": True,
            "labelFormat": "%N-%d",
            "lastUsedControlPointNumber": 2,
            "controlPoints": [_point(1, f"{t.name} entry", t.skin_entry_lps, "skin entry; " + desc),
                              _point(2, f"{t.name} target", t.target_lps, "target; " + desc)],
            "measurements": [{"name": "length", "enabled": True, "value": round(float(t.length_mm), 3),
                              "units": "mm", "printFormat": "%-#4.4g%s"}],
            "display": _display(_STATUS_RGB.get(t.status, [0.4, 1.0, 1.0]),
                                line_thickness=max(0.05, min(1.0, t.needle_diameter_mm / 15.0))),
        })
    if include_points and plan.trajectories:
        pts, n = [], 0
        for t in plan.trajectories:
            for what, p in (("skin entry", t.skin_entry_lps), ("bone entry", t.bone_entry_lps),
                            ("target", t.target_lps)):
                n += 1
                pts.append(_point(n, f"{t.name} {what}", p))
        markups.append({
            "type": "Fiducial", "name": "Planned points", "coordinateSystem": "LPS", "coordinateUnits": "mm",
            "locked": True, "labelFormat": "%N-%d", "lastUsedControlPointNumber": n, "controlPoints": pts,
            "measurements": [], "display": _display([0.4, 1.0, 1.0], glyph_scale=1.0),
        })
    return {"@schema": MARKUPS_SCHEMA_URL, "markups": markups}


def write_slicer_markups(plan, path: str | os.PathLike, *, include_points: bool = True) -> Path:
    """Write ``plan`` as a 3D Slicer markups file (``*.mrk.json``), atomically.

    Parameters
    ----------
    plan : needleplan.planner.Plan
    path : str or os.PathLike
        Output file; Slicer recognises the ``.mrk.json`` extension.
    include_points : bool
        Add the "Planned points" fiducial list (see :func:`markups_dict`).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    needleplan.errors.OutputError
        The folder is missing or not writable.
    """
    from needleplan.io import atomic_write

    path = Path(path)
    text = json.dumps(markups_dict(plan, include_points=include_points), indent=2, allow_nan=False) + "\n"
    with atomic_write(path, "w") as f:
        f.write(text)
    return path
