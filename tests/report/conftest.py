"""Fixtures of the report tests: one synthetic case, its PDF and its text, made once."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.report.synthetic import make_case

POPPLER = all(shutil.which(t) for t in ("pdftotext", "pdftoppm", "pdfimages", "pdfinfo"))
needs_poppler = pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftotext, pdftoppm, pdfimages) missing")


def pdftotext(pdf: Path, *, first: int | None = None, last: int | None = None, layout: bool = True) -> str:
    cmd = ["pdftotext"] + (["-layout"] if layout else [])
    if first:
        cmd += ["-f", str(first)]
    if last:
        cmd += ["-l", str(last)]
    return subprocess.run(cmd + [str(pdf), "-"], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="session")
def case():
    return make_case(("L1", "L2", "L3"))


@pytest.fixture(scope="session")
def report_dir(case, tmp_path_factory):
    """plan.json, plan.pdf, plan.mrk.json and label maps of the synthetic case."""
    from needleplan.pipeline import write_plan_outputs

    volume, anatomy, plan = case
    out = tmp_path_factory.mktemp("report")
    files = write_plan_outputs(out, plan, volume, anatomy, label_formats=(".nii.gz", ".nrrd"))
    return out, files


@pytest.fixture(scope="session")
def plan_json(report_dir):
    return json.loads((report_dir[0] / "plan.json").read_text())
