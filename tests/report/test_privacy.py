"""--anonymize: no output file of a plan folder carries the patient's identifiers."""

from __future__ import annotations

import gzip
import subprocess

import numpy as np
import pytest

from tests.report.conftest import needs_poppler, pdftotext
from tests.report.synthetic import make_case

pytestmark = needs_poppler

PATIENT = {"PatientName": "PHANTOM^SPINE", "PatientID": "NP-TEST-0042", "PatientBirthDate": "19460317",
           "PatientSex": "O", "AccessionNumber": "ACC77123", "InstitutionName": "Example General Hospital",
           "ReferringPhysicianName": "HOUSE^GREGORY"}
# what must not appear anywhere (case-sensitive: "spine" is a normal word in the report)
IDENTIFIERS = ["PHANTOM", "NP-TEST-0042", "19460317", "1946-03-17", "ACC77123", "Example General",
               "HOUSE", "GREGORY"]


@pytest.fixture(scope="module")
def dicom_case(tmp_path_factory):
    """A DICOM series with known identifiers in a folder named after the patient, loaded back."""
    from needleplan.io import load_ct
    from needleplan.io.dicom_write import write_dicom_series

    volume, anatomy, plan = make_case(("L1", "L2"), phi=None)
    folder = tmp_path_factory.mktemp("dicom") / "PHANTOM_SPINE_NP-TEST-0042"
    write_dicom_series(volume, folder, patient=PATIENT)
    loaded = load_ct(folder)
    assert loaded.phi.get("PatientID") == "NP-TEST-0042"
    assert np.allclose(loaded.ijk_to_lps, volume.ijk_to_lps, atol=1e-3) and loaded.shape == volume.shape
    return folder, loaded, anatomy, plan


def _all_text(folder) -> dict[str, str]:
    """Every output file as searchable text (PDF through pdftotext and pdfinfo, gz unpacked)."""
    out = {}
    for f in sorted(folder.rglob("*")):
        if not f.is_file():
            continue
        data = f.read_bytes()
        if f.name.endswith(".gz"):
            data = gzip.decompress(data)
        text = data.decode("latin-1")
        if f.suffix == ".pdf":
            text += pdftotext(f, layout=False)
            text += subprocess.run(["pdfinfo", str(f)], capture_output=True, text=True, check=True).stdout
        out[f.name] = text
    return out


def _plan_outputs(dicom_case, out, *, anonymize):
    from dataclasses import replace

    from needleplan.pipeline import write_plan_outputs

    folder, volume, anatomy, plan = dicom_case
    plan = replace(plan, input={**plan.input, "source": str(folder), "series_uid": volume.series_uid})
    return write_plan_outputs(out, plan, volume, anatomy, anonymize=anonymize, views=True,
                              label_formats=(".nii.gz", ".nrrd"))


def test_anonymised_outputs_carry_no_identifier(dicom_case, tmp_path):
    files = _plan_outputs(dicom_case, tmp_path, anonymize=True)
    assert {"plan_json", "pdf", "markups", "vertebrae.nii.gz", "canal.nrrd"} <= set(files)
    texts = _all_text(tmp_path)
    assert any(name.endswith(".png") for name in texts), "fluoroscopy PNGs should be part of the check"
    for name, text in texts.items():
        for ident in IDENTIFIERS:
            assert ident not in text, f"{ident!r} found in {name}"
    assert "anonymised" in pdftotext(tmp_path / "plan.pdf", first=1, last=1)
    import json

    info = json.loads((tmp_path / "plan.json").read_text())["input"]
    assert info["anonymized"] is True and "series_uid" not in info and "study_uid" not in info


def test_without_anonymize_the_pdf_names_the_patient_but_nothing_else_does(dicom_case, tmp_path):
    _plan_outputs(dicom_case, tmp_path, anonymize=False)
    page1 = pdftotext(tmp_path / "plan.pdf", first=1, last=1)
    assert "PHANTOM, SPINE" in page1 and "NP-TEST-0042" in page1 and "1946-03-17" in page1
    for name, text in _all_text(tmp_path).items():
        if name in ("plan.pdf", "plan.json"):  # plan.json keeps the source path only
            continue
        for ident in IDENTIFIERS:
            assert ident not in text, f"{ident!r} found in {name}"
    import json

    d = json.loads((tmp_path / "plan.json").read_text())
    assert "NP-TEST-0042" in d["input"].pop("source")  # the path is kept when not anonymising
    plan_text = json.dumps(d)
    for ident in IDENTIFIERS:
        assert ident not in plan_text


def test_logs_carry_no_identifier(dicom_case, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.DEBUG, logger="needleplan"):
        _plan_outputs(dicom_case, tmp_path, anonymize=True)
    for ident in IDENTIFIERS:
        assert ident not in caplog.text


SAMPLE_IDS = ["PHANTOM", "NP-PHANTOM-0001", "19580314", "1958-03-14", "NPACC0001", "synthetic hospital"]


@pytest.mark.slow
def test_run_plan_job_anonymised_on_the_sample_series(tmp_path):
    """The whole job (load DICOM with PHI -> segment -> plan -> write) with anonymize=True."""
    from needleplan.pipeline import run_plan_job
    from tests.conftest import REPO

    dicom, truth = REPO / "sample_data" / "dicom", REPO / "sample_data" / "truth" / "vertebrae.nii.gz"
    if not (dicom.is_dir() and truth.is_file()):
        pytest.skip("sample_data/ not generated")
    res = run_plan_job(dicom, tmp_path / "out", levels=["L2"], labels=truth, anonymize=True)
    assert res.volume.phi.get("PatientID") == "NP-PHANTOM-0001"  # the input had identity ...
    assert {"plan_json", "pdf", "markups", "vertebrae.nii.gz"} <= set(res.files)
    assert res.plan.trajectories and res.plan.input.get("anonymized") is True
    for name, text in _all_text(tmp_path / "out").items():  # ... no output has it
        for ident in SAMPLE_IDS:
            assert ident not in text, f"{ident!r} found in {name}"
