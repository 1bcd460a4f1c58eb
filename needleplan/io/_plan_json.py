"""plan.json files (schema ``needleplan.plan/1``): atomic writing and validated reading."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np

from needleplan.errors import OutputError, PlanFileError
from needleplan.io._atomic import atomic_write

__all__ = ["PLAN_SCHEMA", "write_plan_json", "read_plan_json"]

PLAN_SCHEMA = "needleplan.plan/1"
_SCHEMA_RE = re.compile(r"^needleplan\.plan/(\d+)$")


def _plain(obj):
    """JSON-ready copy: numpy scalars/arrays to Python, NaN/inf to None, tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return _plain(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "to_dict"):
        return _plain(obj.to_dict())
    raise TypeError(f"cannot store {type(obj).__name__} in a plan file")


def write_plan_json(plan, path: str | os.PathLike) -> Path:
    """Write a plan (an object with ``to_dict()`` or a dict) as JSON, atomically.

    ``schema``, ``coordinate_system`` ("LPS") and ``units`` ("mm") are added when missing.

    Parameters
    ----------
    plan : needleplan.planner.model.Plan or dict
    path : str or os.PathLike

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputError
        The folder is missing or not writable.
    ValueError
        The plan says it is in another frame or unit, or holds non-JSON values.
    """
    path = Path(path)
    d = plan.to_dict() if hasattr(plan, "to_dict") else plan
    if not isinstance(d, dict):
        raise TypeError(f"write_plan_json needs a dict or an object with to_dict(), "
                        f"got {type(plan).__name__}")
    d = _plain(d)
    d.setdefault("schema", PLAN_SCHEMA)
    d.setdefault("coordinate_system", "LPS")
    d.setdefault("units", "mm")
    if d["coordinate_system"] != "LPS" or d["units"] != "mm":
        raise ValueError(f"plan for '{path}' must be in LPS mm, got "
                         f"{d['coordinate_system']!r} {d['units']!r}")
    text = json.dumps(d, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    try:
        with atomic_write(path, "w") as f:
            f.write(text)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write '{path}': {exc.strerror or exc}", path=path) from exc
    return path


def read_plan_json(path: str | os.PathLike) -> dict:
    """Read and validate a plan file.

    Returns
    -------
    dict
        The parsed plan (``Plan.from_dict`` accepts it).

    Raises
    ------
    PlanFileError
        Missing, unreadable, not JSON, not a needleplan plan, a newer schema version, or
        not in LPS mm; the one-line message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise PlanFileError(f"plan file '{path}' does not exist", path=path)
    if path.is_dir():
        raise PlanFileError(f"plan file '{path}' is a folder", path=path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PlanFileError(f"cannot read plan file '{path}': {exc.strerror or exc}",
                            path=path) from exc
    if not raw.strip():
        raise PlanFileError(f"plan file '{path}' is empty", path=path)
    try:
        d = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PlanFileError(f"plan file '{path}' is not text (not UTF-8 JSON)", path=path) from exc
    except json.JSONDecodeError as exc:
        raise PlanFileError(f"plan file '{path}' is corrupt: invalid JSON at line {exc.lineno} "
                            f"column {exc.colno} ({exc.msg})", path=path) from exc
    if not isinstance(d, dict):
        raise PlanFileError(f"'{path}' is not a needleplan plan file (JSON {type(d).__name__}, "
                            "expected an object)", path=path)
    schema = d.get("schema")
    m = _SCHEMA_RE.match(schema) if isinstance(schema, str) else None
    if m is None:
        raise PlanFileError(f"'{path}' is not a needleplan plan file (schema {schema!r}, "
                            f"expected {PLAN_SCHEMA!r})", path=path)
    if int(m.group(1)) > 1:
        raise PlanFileError(f"'{path}' was written by a newer needleplan (schema {schema}); "
                            f"this version reads {PLAN_SCHEMA}: update needleplan", path=path)
    if int(m.group(1)) < 1:
        raise PlanFileError(f"'{path}' has unknown schema {schema}", path=path)
    if d.get("coordinate_system") != "LPS":
        raise PlanFileError(f"'{path}' lacks \"coordinate_system\": \"LPS\" (got "
                            f"{d.get('coordinate_system')!r}); refusing to guess the frame",
                            path=path)
    if d.get("units") != "mm":
        raise PlanFileError(f"'{path}' lacks \"units\": \"mm\" (got {d.get('units')!r})",
                            path=path)
    for key in ("trajectories", "levels"):
        if key in d and not isinstance(d[key], list):
            raise PlanFileError(f"'{path}': \"{key}\" must be a list", path=path)
    for n, t in enumerate(d.get("trajectories", [])):
        if not isinstance(t, dict):
            raise PlanFileError(f"'{path}': trajectory {n} is not an object", path=path)
        for key in ("skin_entry_lps", "bone_entry_lps", "target_lps"):
            v = t.get(key)
            if v is not None and not (isinstance(v, list) and len(v) == 3 and all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)):
                raise PlanFileError(f"'{path}': trajectory {n} {key} must be 3 numbers (LPS mm)",
                                    path=path)
    return d
