"""The PDF report: what it prints equals plan.json, every page renders, images are real."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from PIL import Image

from tests.report.conftest import needs_poppler, pdftotext

pytestmark = needs_poppler


def _f1(v) -> str:
    s = f"{float(v):.1f}"
    return "0.0" if s == "-0.0" else s


def _page_count(pdf) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def test_every_trajectory_page_prints_the_numbers_of_plan_json(report_dir, plan_json):
    pdf = report_dir[0] / "plan.pdf"
    trajs = [t for t in plan_json["trajectories"] if t.get("role", "recommended") == "recommended"]
    assert len(trajs) == 6
    for n, t in enumerate(trajs):
        page = pdftotext(pdf, first=n + 2, last=n + 2)
        name = f"{t['level']} {t['side']}"
        head = "\n".join([ln for ln in page.strip().splitlines() if ln.strip()][:3])
        assert re.search(rf"^\s*{name} · {t['approach']}", head, re.M), head  # the page title
        assert re.search(rf"Medial angle\s+{re.escape(_f1(t['medial_angle_deg']))}°", page), page
        assert re.search(rf"Cranio-caudal\s+{re.escape(_f1(t['craniocaudal_angle_deg']))}°", page)
        assert re.search(rf"\b{re.escape(_f1(t['length_mm']))} mm", page)
        for label, key in (("Skin entry", "skin_entry_lps"), ("Bone entry", "bone_entry_lps"), ("Target", "target_lps")):
            x, y, z = (_f1(v) for v in t[key])
            assert re.search(rf"{label}\s+{re.escape(x)}\s+{re.escape(y)}\s+{re.escape(z)}", page), (label, page)
        assert re.search(rf"Spinal canal\s+{re.escape(_f1(t['clearance_mm']['canal']))}\s+2\.0\b", page)
        assert re.search(rf"Medial pedicle wall\s+{re.escape(_f1(t['clearance_mm']['medial_wall']))}", page)
        for c in t["checks"]:
            result = "PASS" if c["passed"] else ("WARN" if c["severity"] == "warning" else "FAIL")
            name = c["name"].replace("_", " ")
            assert re.search(rf"{re.escape(name)}\s+.*{result}", page, re.I), c
        from needleplan.geometry import carm

        expected = t["carm"].get("bullseye") if t["carm"] else None
        if expected:
            angles = (expected["lao_deg"], expected["cran_deg"])
        else:  # the synthetic plan has no carm block: the report computes it
            det = carm.bullseye_detector_lps(t["skin_entry_lps"], t["target_lps"])
            angles = carm.carm_angles_deg(det, plan_json["input"]["patient_position"])
        text = carm.format_carm_angles(*angles).replace("  ", " ")
        assert re.search(rf"Bull's-eye C-arm\s+{re.escape(text)}", page), text


def test_summary_page_lists_every_level_and_trajectory(report_dir, plan_json):
    text = pdftotext(report_dir[0] / "plan.pdf", first=1, last=1)
    for lv in plan_json["levels"]:
        assert re.search(rf"^\s*{lv['level']}\s+{re.escape(lv['recommendation'])}", text, re.M), lv["level"]
    for t in plan_json["trajectories"]:
        row = rf"{t['level']} {t['side']}\s+\w+\s+{t['status'].upper()}\s+{re.escape(_f1(t['medial_angle_deg']))}"
        assert re.search(row, text), row
    assert "PHANTOM, SPINE" in text and "NP-TEST-0042" in text  # not anonymised: the clinician files it
    assert "HFP" in text and "needleplan 0.1.0" in text
    assert "Clinical review required" in text


def test_checklist_has_tick_boxes_and_level_flags(report_dir):
    pdf = report_dir[0] / "plan.pdf"
    text = pdftotext(pdf, first=_page_count(pdf), last=_page_count(pdf))
    assert "Pre-procedure checklist" in text
    assert text.count("☐") >= 20
    for item in ("infection", "coagulopathy", "cord", "cardiopulmonary", "Surgical back-up", "prone",
                 "burst fracture", "vertebra plana", "monitoring"):
        assert item.lower() in text.lower(), item
    assert re.search(r"L2\s+posterior wall defect", text)
    assert re.search(r"L1\s+height loss", text)


def test_pages_render_and_are_not_blank(report_dir, tmp_path):
    pdf = report_dir[0] / "plan.pdf"
    n = _page_count(pdf)
    assert n == 1 + 6 + 1
    subprocess.run(["pdftoppm", "-png", "-r", "30", str(pdf), str(tmp_path / "p")], check=True)
    pages = sorted(tmp_path.glob("p-*.png"))
    assert len(pages) == n
    for p in pages:
        a = np.asarray(Image.open(p).convert("L"), dtype=float)
        assert (a < 200).mean() > 0.01, p.name  # some ink on every page
    # trajectory pages carry pictures: many dark pixels
    a = np.asarray(Image.open(pages[1]).convert("L"), dtype=float)
    assert (a < 100).mean() > 0.08


def test_images_are_embedded_losslessly_and_not_blank(report_dir, tmp_path):
    pdf = report_dir[0] / "plan.pdf"
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], check=True, capture_output=True, text=True).stdout
    rows = [ln.split() for ln in listing.splitlines()[2:] if ln.strip()]
    assert rows, listing
    per_page = {}
    for r in rows:
        per_page[int(r[0])] = per_page.get(int(r[0]), 0) + 1
        assert r[8] != "jpeg", "images must be lossless"
        assert int(r[3]) >= 256 and int(r[4]) >= 256, r  # print resolution, not thumbnails
    for page in range(2, 8):
        assert per_page.get(page, 0) >= 2, per_page  # 2 CT slices (+2 fluoroscopy when available)
    subprocess.run(["pdfimages", "-png", "-f", "2", "-l", "2", str(pdf), str(tmp_path / "img")], check=True)
    for f in sorted(tmp_path.glob("img-*.png")):
        a = np.asarray(Image.open(f).convert("L"), dtype=float)
        assert a.std() > 15, f"{f.name} is blank"


def test_text_is_searchable_not_outlines(report_dir):
    text = pdftotext(report_dir[0] / "plan.pdf", layout=False)
    assert "Vertebroplasty needle plan" in text
    assert "Bull's-eye view" in text and "Progression view" in text


def test_report_is_deterministic(case, tmp_path):
    from needleplan.report import write_report_pdf

    volume, anatomy, plan = case
    a = write_report_pdf(plan, volume, anatomy, tmp_path / "a.pdf").read_bytes()
    b = write_report_pdf(plan, volume, anatomy, tmp_path / "b.pdf").read_bytes()
    assert a == b
    assert b"D:20260112093000" in a  # creation date from plan.created, not the clock


def test_non_latin1_names_print(case, tmp_path):
    from dataclasses import replace

    from needleplan.report import write_report_pdf

    volume, anatomy, plan = case
    vol = replace(volume, phi={**volume.phi, "PatientName": "Dvořáková^Žofie", "PatientID": "Ωμέγα-7"})
    pdf = write_report_pdf(plan, vol, anatomy, tmp_path / "u.pdf")
    text = pdftotext(pdf, first=1, last=1)
    assert "DVOŘÁKOVÁ, Žofie" in text and "Ωμέγα-7" in text


def test_report_without_volume_or_anatomy_still_writes(case, tmp_path):
    from needleplan.report import write_report_pdf

    _, _, plan = case
    pdf = write_report_pdf(plan, None, None, tmp_path / "bare.pdf")
    text = pdftotext(pdf, first=2, last=2)
    assert "L1 left" in text and "no CT" in text


def test_unwritable_path_raises_output_error_and_leaves_nothing(case, tmp_path):
    from needleplan.errors import OutputError
    from needleplan.report import write_report_pdf

    volume, anatomy, plan = case
    with pytest.raises(OutputError, match="missing"):
        write_report_pdf(plan, volume, anatomy, tmp_path / "missing" / "plan.pdf")
    assert list(tmp_path.iterdir()) == []


def _long_checklist_pdf(tmp_path, n_extra: int):
    import dataclasses

    from needleplan.planner.model import Check
    from needleplan.report import write_report_pdf
    from needleplan.report.pdf import CONTENT_H, CONTENT_W, _trajectory_section
    from tests.report.synthetic import make_case

    volume, anatomy, plan = make_case(("L1",), both_sides=False)
    t = plan.trajectories[0]
    extra = [Check(f"Extra check {i}", True, float(i), 0.5, "mm", severity="warning", message="note " * 12)
             for i in range(n_extra)]
    plan = dataclasses.replace(plan, trajectories=[dataclasses.replace(t, checks=list(t.checks) + extra)])
    section = _trajectory_section(plan.trajectories[0], volume, anatomy, plan, {})
    need = sum(f.wrap(CONTENT_W, CONTENT_H)[1] + f.getSpaceAfter() + (f.getSpaceBefore() if i else 0.0)
               for i, f in enumerate(section))
    pdf = write_report_pdf(plan, volume, anatomy, tmp_path / f"long{n_extra}.pdf")
    return pdf, need / CONTENT_H


def test_a_slightly_too_long_trajectory_is_shrunk_onto_its_page(tmp_path):
    pdf, ratio = _long_checklist_pdf(tmp_path, 20)
    assert 1.05 < ratio < 1.25  # would spill a few rows onto an otherwise empty page
    page2, page3 = pdftotext(pdf, first=2, last=2), pdftotext(pdf, first=3, last=3)
    assert "L1 left" in page2 or "L1 right" in page2
    assert "Extra check 19" in page2 and "Extra check" not in page3
    assert "Pre-procedure checklist" in page3


def test_a_much_too_long_trajectory_is_split_not_shrunk_to_unreadable(tmp_path):
    pdf, ratio = _long_checklist_pdf(tmp_path, 50)
    assert ratio > 1.0 / 0.8
    assert "Extra check 49" in pdftotext(pdf, first=3, last=3)
