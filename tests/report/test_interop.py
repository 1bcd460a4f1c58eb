"""3D Slicer markups, label maps (NIfTI, NRRD), plan.json round trip, atomic plan folder."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from needleplan.errors import OutputError


# ----------------------------------------------------------------------------- markups
def test_markups_validate_against_our_schema(report_dir):
    jsonschema = pytest.importorskip("jsonschema")
    from needleplan.report.slicer import MARKUPS_SCHEMA, markups_schema

    schema = markups_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema == MARKUPS_SCHEMA and schema is not MARKUPS_SCHEMA
    doc = json.loads((report_dir[0] / "plan.mrk.json").read_text())
    jsonschema.Draft7Validator(schema).validate(doc)
    assert {m["type"] for m in doc["markups"]} == {"Line", "Fiducial"}


def _line_with_3_points(d):
    line = next(m for m in d["markups"] if m["type"] == "Line")
    line["controlPoints"].append(dict(line["controlPoints"][0], id="3"))


def _set(key, value, *, markup=0, point=None):
    def mutate(d):
        target = d["markups"][markup] if point is None else d["markups"][markup]["controlPoints"][point]
        target[key] = value
    return mutate


@pytest.mark.parametrize("mutate", [
    _line_with_3_points,
    _set("coordinateSystem", "XYZ"),
    _set("coordinateUnits", "cm"),
    _set("type", "Needle"),
    _set("position", [1.0, 2.0], point=0),
    _set("position", [1.0, 2.0, "3"], point=1),
    _set("positionStatus", "fixed", point=0),
    _set("id", 1, point=0),
    lambda d: d.pop("@schema"),
    lambda d: d.update({"@schema": "https://example.org/other-schema.json"}),
    lambda d: d["markups"][0]["controlPoints"][0].pop("position"),
    lambda d: d["markups"][0]["display"].update(color=[1.0, 0.0]),
], ids=["line-3-points", "coords-XYZ", "units-cm", "type-unknown", "position-2-numbers", "position-string",
        "status-unknown", "id-not-string", "no-@schema", "foreign-@schema", "no-position", "color-2-numbers"])
def test_markups_schema_rejects_broken_documents(report_dir, mutate):
    jsonschema = pytest.importorskip("jsonschema")
    from needleplan.report.slicer import markups_schema

    doc = json.loads((report_dir[0] / "plan.mrk.json").read_text())
    assert doc["markups"][0]["type"] == "Line"
    mutate(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(markups_schema()).validate(doc)


def test_markups_lines_match_the_plan(report_dir, case):
    _, _, plan = case
    doc = json.loads((report_dir[0] / "plan.mrk.json").read_text())
    lines = [m for m in doc["markups"] if m["type"] == "Line"]
    assert [m["name"] for m in lines] == [t.name for t in plan.trajectories]
    assert lines[0]["name"] == "L1 left"
    for m, t in zip(lines, plan.trajectories):
        assert m["coordinateSystem"] == "LPS" and m["coordinateUnits"] == "mm"
        a, b = (np.array(cp["position"]) for cp in m["controlPoints"])
        assert np.allclose(a, t.skin_entry_lps, atol=1e-3) and np.allclose(b, t.target_lps, atol=1e-3)
        assert m["measurements"][0]["value"] == pytest.approx(t.length_mm, abs=1e-3)
    fid = [m for m in doc["markups"] if m["type"] == "Fiducial"]
    assert len(fid) == 1 and len(fid[0]["controlPoints"]) == 3 * len(plan.trajectories)


# ----------------------------------------------------------------------------- label maps
@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_label_maps_on_the_ct_grid(report_dir, case, suffix):
    from needleplan.io import read_label_image

    volume, anatomy, _ = case
    for name, expected in (("vertebrae", anatomy.labels), ("parts", anatomy.parts),
                           ("canal", anatomy.canal.astype(np.uint8))):
        labels, aff = read_label_image(report_dir[0] / f"{name}{suffix}", like=volume)
        assert labels.shape == volume.shape
        assert np.allclose(aff, volume.ijk_to_lps, atol=1e-4)
        assert np.array_equal(labels, expected), name


def test_nifti_affine_is_ras_of_the_lps_grid(report_dir, case):
    nib = pytest.importorskip("nibabel")
    volume, anatomy, _ = case
    img = nib.load(str(report_dir[0] / "vertebrae.nii.gz"))
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ volume.ijk_to_lps
    assert np.allclose(img.affine, ras, atol=1e-4)
    assert set(np.unique(np.asarray(img.dataobj))) == {0, 20, 21, 22}


# ----------------------------------------------------------------------------- plan.json
def test_plan_json_round_trip(report_dir, case):
    from needleplan.io import read_plan_json
    from needleplan.planner.model import Plan

    _, _, plan = case
    d = read_plan_json(report_dir[0] / "plan.json")
    back = Plan.from_dict(d if isinstance(d, dict) else d.to_dict())
    assert back.to_dict()["trajectories"] == plan.to_dict()["trajectories"]
    assert [lv.to_dict() for lv in back.levels] == [lv.to_dict() for lv in plan.levels]
    text = (report_dir[0] / "plan.json").read_text()
    for phi in ("PHANTOM^SPINE", "NP-TEST-0042", "19460317", "ACC77123", "Example General"):
        assert phi not in text  # plan.json never carries identity fields (only the source path)


def test_outputs_leave_the_inputs_unchanged(case, tmp_path):
    from needleplan.pipeline import write_plan_outputs

    volume, anatomy, plan = case
    before = json.dumps(plan.to_dict(), sort_keys=True)
    phi = dict(volume.phi)
    write_plan_outputs(tmp_path, plan, volume, anatomy, anonymize=True, pdf=False)
    assert json.dumps(plan.to_dict(), sort_keys=True) == before and volume.phi == phi


# ----------------------------------------------------------------------------- failures
def test_unwritable_out_dir_is_one_clear_error(case, tmp_path):
    from needleplan.pipeline import write_plan_outputs

    volume, anatomy, plan = case
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="a-file"):
        write_plan_outputs(blocker / "plan", plan, volume, anatomy)
    with pytest.raises(OutputError, match="is a file"):
        write_plan_outputs(blocker, plan, volume, anatomy)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_failing_writer_leaves_no_partial_file(case, tmp_path, monkeypatch):
    import needleplan.report.pdf as pdf_mod
    from needleplan.pipeline import write_plan_outputs

    volume, anatomy, plan = case

    def half_then_crash(plan, volume, anatomy, path, **kw):
        with open(path, "wb") as f:
            f.write(b"%PDF-1.4 half")
        raise RuntimeError("disk pulled out")

    monkeypatch.setattr(pdf_mod, "build_report_pdf", half_then_crash)
    with pytest.raises(RuntimeError):
        write_plan_outputs(tmp_path, plan, volume, anatomy)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "plan.pdf" not in names and not [n for n in names if n.startswith(".")], names
    assert "plan.json" in names  # written completely before the crash


def test_cli_demo_unwritable_out_exits_2_with_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = subprocess.run([sys.executable, "-m", "needleplan", "demo", "--no-gui", "--out", str(blocker / "d")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "a-file" in lines[0] and "Traceback" not in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


# ----------------------------------------------------------------------------- DICOM SEG
@pytest.fixture(scope="module")
def dicom_folder(tmp_path_factory):
    from needleplan.io.dicom_write import write_dicom_series
    from tests.report.synthetic import make_case

    volume, anatomy, _ = make_case(("L1", "L2"))
    folder = tmp_path_factory.mktemp("seg") / "ct"
    write_dicom_series(volume, folder, patient={"PatientName": "PHANTOM^SPINE", "PatientID": "NP-TEST-0042",
                                                "PatientBirthDate": "19460317"})
    return folder, volume, anatomy


def test_dicom_seg_round_trips_the_vertebrae(dicom_folder, tmp_path):
    hd = pytest.importorskip("highdicom")
    import pydicom

    from needleplan.report import write_dicom_seg
    from needleplan.segmentation.model import level_label

    folder, volume, anatomy = dicom_folder
    out = write_dicom_seg(anatomy, folder, tmp_path / "vertebrae.seg.dcm", anonymize=True)
    seg = hd.seg.segread(out)
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["L1", "L2"]
    src = [pydicom.dcmread(f) for f in sorted(folder.glob("*.dcm"))]
    normal = np.cross(*np.asarray(src[0].ImageOrientationPatient, float).reshape(2, 3))
    src.sort(key=lambda d: float(np.asarray(d.ImagePositionPatient, float) @ normal))
    assert seg.SeriesInstanceUID != src[0].SeriesInstanceUID and seg.StudyInstanceUID == src[0].StudyInstanceUID
    arr = seg.get_pixels_by_source_instance(source_sop_instance_uids=[d.SOPInstanceUID for d in src],
                                            combine_segments=True, ignore_spatial_locations=True)
    expected = np.zeros(anatomy.labels.shape, np.uint8)
    expected[anatomy.labels == level_label("L1")] = 1
    expected[anatomy.labels == level_label("L2")] = 2
    assert np.array_equal(arr.transpose(2, 1, 0), expected)
    raw = out.read_bytes()
    for ident in (b"PHANTOM", b"NP-TEST-0042", b"19460317"):
        assert ident not in raw


def test_dicom_seg_without_highdicom_says_how_to_install(dicom_folder, tmp_path, monkeypatch):
    from needleplan.errors import NeedlePlanError
    from needleplan.report import write_dicom_seg

    folder, _, anatomy = dicom_folder
    monkeypatch.setitem(sys.modules, "highdicom", None)
    with pytest.raises(NeedlePlanError, match="pip install"):
        write_dicom_seg(anatomy, folder, tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()
