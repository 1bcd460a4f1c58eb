"""The core (io, geometry, segmentation, planner, report) never imports Qt or VTK."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = ["needleplan.io", "needleplan.geometry", "needleplan.segmentation", "needleplan.planner",
        "needleplan.report", "needleplan.phantom", "needleplan.cli"]


def _core_modules() -> list[str]:
    mods = []
    for pkg in CORE:
        base = REPO / Path(*pkg.split("."))
        if base.with_suffix(".py").exists():
            mods.append(pkg)
            continue
        for f in sorted(base.rglob("*.py")):
            rel = f.relative_to(REPO).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods.append(".".join(parts))
    return mods


def test_core_imports_no_gui_toolkit():
    """Import every core module in a fresh interpreter; no Qt/VTK module may get loaded."""
    mods = _core_modules()
    assert len(mods) >= 8
    code = (
        "import importlib, json, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PyQt6', 'PyQt5', 'PySide6', 'vtk', 'vtkmodules') or m.startswith('needleplan.ui'))\n"
        "print(json.dumps(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_import_linter_contracts_hold():
    """The contracts in pyproject.toml: core GUI-free, layers ui > report > planner > ... > io."""
    pytest.importorskip("importlinter")
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "broken" not in out.stdout.lower().replace("0 broken", "")
