"""`needleplan plan` end to end on a small phantom written to disk."""

import json

import numpy as np
import pytest

from needleplan.cli import main
from needleplan.io import write_label_image, write_volume
from tests.phantoms import lumbar_phantom


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("plan_cli")
    ph = lumbar_phantom()
    write_volume(ph.volume, d / "ct.nii.gz")
    write_label_image(ph.truth.labels, ph.truth.ijk_to_lps, d / "labels.nii.gz")
    return d


@pytest.mark.slow
def test_plan_cli_writes_plan_and_labels(phantom_files, tmp_path, capsys, monkeypatch):
    """The command's plumbing, with the phantom's truth standing in for the segmentation."""
    monkeypatch.setattr("needleplan.segmentation.segment", lambda volume, labels=None, **kw: _truth_on(volume))
    out = tmp_path / "out"
    rc = main(["plan", str(phantom_files / "ct.nii.gz"), "--labels", str(phantom_files / "labels.nii.gz"),
               "--out", str(out), "--levels", "L2", "--anonymize"])
    assert rc == 0
    assert (out / "vertebrae.nii.gz").stat().st_size > 0
    d = json.loads((out / "plan.json").read_text())
    assert d["schema"] == "needleplan.plan/1"
    assert [lv["level"] for lv in d["levels"]] == ["L2"]
    t = d["trajectories"][0]
    for key in ("skin_entry_lps", "bone_entry_lps", "target_lps", "medial_angle_deg", "craniocaudal_angle_deg",
                "clearance_mm", "carm", "checks", "status", "target_depth_fraction", "target_to_midline_mm"):
        assert key in t
    assert set(t["carm"]) >= {"bullseye", "progression", "patient_position"}
    assert t["breach_grade"] == "A"
    text = (out / "plan.json").read_text()
    assert str(phantom_files) not in text and d["input"].get("source", "anonymised") == "anonymised"
    assert "series_uid" not in d["input"] and d["input"]["anonymized"] is True
    assert "PHANTOM" not in text and "NP-PHANTOM" not in text
    err = capsys.readouterr().err
    assert "planning trajectories" in err and "L2: " in err
    assert {p.name for p in out.iterdir()} >= {"plan.json", "plan.pdf", "plan.mrk.json", "vertebrae.nii.gz"}


def _truth_on(volume):
    truth = lumbar_phantom().truth
    assert volume.shape == truth.labels.shape
    return truth


@pytest.mark.slow
def test_plan_cli_with_real_segmentation_of_labels(phantom_files, tmp_path):
    out = tmp_path / "out"
    rc = main(["plan", str(phantom_files / "ct.nii.gz"), "--labels", str(phantom_files / "labels.nii.gz"),
               "--out", str(out), "--label-formats", "nii.gz", "nrrd"])
    assert rc == 0
    from needleplan.io import read_label_image

    nii, aff_nii = read_label_image(out / "vertebrae.nii.gz")
    nrrd, aff_nrrd = read_label_image(out / "vertebrae.nrrd")
    assert np.array_equal(nii, nrrd) and np.allclose(aff_nii, aff_nrrd, atol=1e-4)
    assert set(np.unique(nrrd)) == {0, 20, 21, 22}
    d = json.loads((out / "plan.json").read_text())
    assert {lv["level"] for lv in d["levels"]} == {"L1", "L2", "L3"}
    assert d["input"]["segmentation"].startswith("imported")


def test_plan_cli_bad_input_exit_2(phantom_files, tmp_path, capsys):
    assert main(["plan", str(tmp_path / "missing.nii.gz"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    rc = main(["plan", str(phantom_files / "ct.nii.gz"), "--labels", str(phantom_files / "labels.nii.gz"),
               "--out", str(tmp_path / "o2"), "--levels", "T4"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "T4" in err and len(err.strip().splitlines()[-1]) < 300
    assert not (tmp_path / "o2" / "plan.json").exists()


@pytest.mark.slow
def test_anonymised_plan_does_not_name_the_label_file(phantom_files, tmp_path):
    out = tmp_path / "anon"
    assert main(["plan", str(phantom_files / "ct.nii.gz"), "--labels", str(phantom_files / "labels.nii.gz"),
                 "--out", str(out), "--levels", "L2", "--anonymize"]) == 0
    text = (out / "plan.json").read_text()
    assert str(phantom_files) not in text and "labels.nii.gz" not in text
    assert json.loads(text)["input"]["segmentation"] == "imported"
