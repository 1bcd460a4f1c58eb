"""Label import (TotalSegmentator, VerSe, mask folders), the public API and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from needleplan.cli import main
from needleplan.errors import InputError, NeedlePlanError, SegmentationError
from needleplan.io import load_ct, read_label_image, write_label_image
from needleplan.segmentation import (
    TOTALSEG_TO_VERSE,
    import_labels,
    level_name,
    rename_levels,
    segment,
    totalsegmentator_available,
)
from tests.conftest import require_shared


@pytest.fixture(scope="module")
def abdomen():
    d = require_shared("ts-abdomen-3mm")
    return d, load_ct(d / "ct.nii.gz")


def test_totalseg_class_map():
    names = {k: level_name(v) for k, v in TOTALSEG_TO_VERSE.items()}
    assert names[26] == "S" and names[27] == "L5" and names[31] == "L1"
    assert names[32] == "T12" and names[43] == "T1" and names[44] == "C7" and names[50] == "C1"


def test_totalseg_and_verse_files_agree(abdomen):
    d, vol = abdomen
    ts, src = import_labels(d / "totalseg-total.nii.gz", vol)
    verse, src2 = import_labels(d / "totalseg-vertebrae-verse-labels.nii.gz", vol)
    assert "TotalSegmentator" in src and "VerSe" in src2
    assert ts.dtype == np.uint8 and ts.shape == vol.shape
    assert set(np.unique(ts)) == {0, 18, 19, 20, 21, 22, 23, 24, 26}
    for lab in (19, 20, 21, 22, 23, 24):  # same levels, two TotalSegmentator models
        a, b = ts == lab, verse == lab    # (the refined VerSe-numbered one is tighter)
        assert (a & b).sum() / b.sum() > 0.9, level_name(lab)
    # forcing the format reads the same ids the other way round
    forced, _ = import_labels(d / "totalseg-total.nii.gz", vol, labels_format="totalseg")
    assert np.array_equal(forced, ts)
    with pytest.raises(InputError):
        import_labels(d / "totalseg-total.nii.gz", vol, labels_format="verse")


def test_mask_folder(abdomen, tmp_path):
    d, vol = abdomen
    ts, _ = import_labels(d / "totalseg-total.nii.gz", vol)
    for lab, name in ((20, "L1"), (21, "L2"), (26, "S1")):
        write_label_image((ts == lab).astype(np.uint8), vol.ijk_to_lps, tmp_path / f"vertebrae_{name}.nii.gz")
    (tmp_path / "liver.nii.gz").write_bytes(b"")  # other TotalSegmentator masks are ignored
    got, src = import_labels(tmp_path, vol)
    assert set(np.unique(got)) == {0, 20, 21, 26}
    assert np.array_equal(got == 21, ts == 21)
    assert "masks" in src


def test_labels_resampled_onto_another_grid(abdomen, tmp_path):
    d, vol = abdomen
    ts, _ = import_labels(d / "totalseg-total.nii.gz", vol)
    # the same labels on a 2x coarser grid come back onto the CT grid by nearest neighbour
    aff = vol.ijk_to_lps.copy()
    aff[:3, :3] *= 2.0
    aff[:3, 3] += 0.5 * (vol.ijk_to_lps[:3, :3] @ np.ones(3))
    write_label_image(ts[::2, ::2, ::2], aff, tmp_path / "coarse.nii.gz")
    got, _ = import_labels(tmp_path / "coarse.nii.gz", vol, labels_format="verse")
    a, b = got == 22, ts == 22
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.75


def test_bad_label_inputs(abdomen, tmp_path):
    d, vol = abdomen
    with pytest.raises(InputError, match="not found"):
        import_labels(tmp_path / "missing.nii.gz", vol)
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(InputError, match="bad.nii.gz"):
        import_labels(bad, vol)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="vertebrae_"):
        import_labels(empty, vol)
    # labels far away from the CT: nothing lands in its field of view
    far = vol.ijk_to_lps.copy()
    far[:3, 3] += 5000.0
    write_label_image(np.full((4, 4, 4), 20, np.uint8), far, tmp_path / "far.nii.gz")
    with pytest.raises(InputError, match="field of view"):
        import_labels(tmp_path / "far.nii.gz", vol)


def test_segment_with_labels_and_rename(abdomen):
    d, vol = abdomen
    an = segment(vol, labels=d / "totalseg-vertebrae-verse-labels.nii.gz")
    assert an.method.startswith("imported:")
    assert [v.name for v in an.sorted_vertebrae()] == ["T12", "L1", "L2", "L3", "L4", "L5"]
    # the user says the stack is one level higher: every label follows, nothing else changes
    up = rename_levels(an, {"T12": "T11", "L1": "T12", "L2": "L1", "L3": "L2", "L4": "L3", "L5": "L4"})
    assert [v.name for v in up.sorted_vertebrae()] == ["T11", "T12", "L1", "L2", "L3", "L4"]
    assert np.array_equal(up.labels == 20, an.labels == 21)
    assert np.allclose(up.vertebra("L1").body_center_lps, an.vertebra("L2").body_center_lps)
    assert up.vertebra("L1").confidence == 1.0 and "renamed" in up.messages[-1]
    assert [v.name for v in an.sorted_vertebrae()][0] == "T12"  # the input is untouched
    with pytest.raises(InputError, match="two vertebrae"):
        rename_levels(an, {"L1": "L2"})
    with pytest.raises(InputError, match="not in the segmentation"):
        rename_levels(an, {"C5": "C6"})


def test_backends_fail_clearly(abdomen):
    d, vol = abdomen
    with pytest.raises(InputError, match="backend"):
        segment(vol, backend="deep")
    ok, why = totalsegmentator_available()
    if not ok:
        with pytest.raises(SegmentationError, match="totalsegmentator"):
            segment(vol, backend="totalsegmentator")
        assert why


def test_cli_segment_with_labels(tmp_path):
    d = require_shared("tptbox-l3-1.5mm")
    out = tmp_path / "out"
    rc = main(["segment", str(d / "sub-ct_label-22_ct.nii.gz"), "--out", str(out),
               "--labels", str(d / "sub-ct_seg-vert_label-22_msk.nii.gz")])
    assert rc == 0
    vol = load_ct(d / "sub-ct_label-22_ct.nii.gz")
    labels, aff = read_label_image(out / "vertebrae.nii.gz")
    ref, _ = read_label_image(d / "sub-ct_seg-vert_label-22_msk.nii.gz")
    assert labels.shape == vol.shape and np.allclose(aff, vol.ijk_to_lps, atol=1e-4)
    assert np.array_equal(labels, ref)
    doc = json.loads((out / "anatomy.json").read_text())
    assert doc["schema"] == "needleplan.anatomy/1" and doc["coordinate_system"] == "LPS"
    l3 = next(v for v in doc["vertebrae"] if v["level"] == "L3")
    assert set(l3["pedicles"]) == {"left", "right"} and l3["body_heights_mm"]["middle"] > 15
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_cli_bad_input_exit_2(tmp_path, capsys):
    d = require_shared("tptbox-l3-1.5mm")
    rc = main(["segment", str(d / "sub-ct_label-22_ct.nii.gz"), "--out", str(tmp_path),
               "--labels", str(tmp_path / "nope.nii.gz")])
    assert rc == 2
    assert "nope.nii.gz" in capsys.readouterr().err
    assert not (tmp_path / "anatomy.json").exists()
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    rc = main(["segment", str(d / "sub-ct_label-22_ct.nii.gz"), "--out", str(tmp_path / "o"),
               "--labels", str(notes)])
    assert rc == 2 and not (tmp_path / "o" / "anatomy.json").exists()


def test_errors_are_needleplan_errors():
    assert issubclass(SegmentationError, NeedlePlanError)


def test_totalseg_multi_organ_file_on_a_dicom_series():
    d = require_shared("ts-abdomen-3mm")
    vol = load_ct(d / "dicom-jpeg2000")  # JPEG 2000 DICOM, 20 slices, another region
    labels, src = import_labels(d / "dicom-jpeg2000-totalseg.nii.gz", vol)
    # 117 classes with names in the header; only the vertebrae (T11, T12) are kept
    assert set(np.unique(labels)) == {0, 18, 19} and "TotalSegmentator" in src
    from needleplan.segmentation import anatomy_from_labels

    an = anatomy_from_labels(vol, labels)
    for va in an.sorted_vertebrae():  # both cut by the 40 mm slab: said so, nothing invented
        assert "partly outside the field of view" in va.flags
        assert va.body_heights_mm == {} and va.posterior_wall_intact is None
