"""``needleplan demo``: the README's main job, headless, exit 0, a real report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.report.conftest import needs_poppler, pdftotext


@pytest.mark.slow
@needs_poppler
def test_demo_headless_writes_the_report_and_exits_0(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-m", "needleplan", "demo", "--out", str(out)], capture_output=True,
                         text=True, timeout=600, env=env)
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-2000:]}"  # < 0: killed by a signal
    assert str((out / "plan.pdf").resolve()) in run.stdout  # says where the PDF is
    for name in ("plan.pdf", "plan.json", "plan.mrk.json", "vertebrae.nii.gz"):
        assert (out / name).stat().st_size > 0, name
    plan = json.loads((out / "plan.json").read_text())
    assert plan["trajectories"], "the demo must plan at least one trajectory"
    markups = json.loads((out / "plan.mrk.json").read_text())
    assert len([m for m in markups["markups"] if m["type"] == "Line"]) == len(plan["trajectories"])
    try:
        import jsonschema
    except ImportError:  # the test extra has it; without it only the Line count above is checked
        jsonschema = None
    if jsonschema is not None:
        from needleplan.report.slicer import markups_schema

        jsonschema.Draft7Validator(markups_schema()).validate(markups)
    text = pdftotext(out / "plan.pdf")
    for t in plan["trajectories"]:
        assert f"{t['level']} {t['side']}" in text
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_find_sample_honours_the_environment(tmp_path, monkeypatch):
    from needleplan._commands.demo import find_sample
    from needleplan.errors import InputError

    (tmp_path / "dicom").mkdir()
    monkeypatch.setenv("NEEDLEPLAN_SAMPLE", str(tmp_path))
    assert find_sample() == tmp_path / "dicom"
    monkeypatch.setenv("NEEDLEPLAN_SAMPLE", str(tmp_path / "nope"))
    with pytest.raises(InputError, match="nope"):
        find_sample()
