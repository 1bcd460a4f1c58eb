"""Label maps, volumes (NIfTI/NRRD/MHA), plan.json and atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from needleplan.errors import GeometryError, OutputError, PlanFileError
from needleplan.io import (Volume, atomic_path, atomic_write, load_ct, read_label_image,
                           read_plan_json, write_label_image, write_plan_json, write_volume)


def _oblique_affine():
    a, b = np.radians(25), np.radians(-10)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    aff = np.eye(4)
    aff[:3, :3] = rz @ rx @ np.diag([0.8, 1.1, 2.5])
    aff[:3, 3] = [-12.5, 30.25, -101.0]
    return aff


@pytest.fixture
def volume():
    rng = np.random.default_rng(0)
    vox = rng.integers(-1024, 2000, (9, 7, 5)).astype(np.int16)
    return Volume(vox, _oblique_affine(), meta={"series_uid": "1.2"})


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_volume_round_trip_oblique_lps(tmp_path, volume, suffix):
    path = write_volume(volume, tmp_path / f"ct{suffix}")
    back = load_ct(path)
    np.testing.assert_array_equal(back.voxels, volume.voxels)
    assert back.voxels.dtype == np.int16
    np.testing.assert_allclose(back.ijk_to_lps, volume.ijk_to_lps, atol=1e-5)
    pts = np.array([[0, 0, 0], [8, 6, 4], [3.3, 1.7, 2.2]])
    np.testing.assert_allclose(back.to_ijk(volume.to_lps(pts)), pts, atol=1e-5)


def test_nifti_is_ras_on_disk(tmp_path, volume):
    """The NIfTI file stores RAS: nibabel's affine = diag(-1, -1, 1, 1) @ ijk_to_lps."""
    nib = pytest.importorskip("nibabel")
    path = write_volume(volume, tmp_path / "ct.nii.gz")
    img = nib.load(path)
    np.testing.assert_allclose(img.affine, np.diag([-1, -1, 1, 1]) @ volume.ijk_to_lps, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(img.dataobj), volume.voxels)


def test_float_volume_kept_float(tmp_path, volume):
    v = volume.with_voxels(volume.voxels.astype(np.float32) + 0.25)
    back = load_ct(write_volume(v, tmp_path / "f.mha"))
    assert back.voxels.dtype == np.float32
    np.testing.assert_allclose(back.voxels, v.voxels)


def test_label_round_trip_and_dtype(tmp_path, volume):
    labels = np.zeros(volume.shape, np.int64)
    labels[2:5, 1:4, 1:3] = 22
    labels[0, 0, 0] = 300
    path = write_label_image(labels, volume.ijk_to_lps, tmp_path / "lab.nii.gz")
    assert sitk.ReadImage(str(path)).GetPixelID() == sitk.sitkUInt16
    back, aff = read_label_image(path)
    np.testing.assert_array_equal(back, labels)
    np.testing.assert_allclose(aff, volume.ijk_to_lps, atol=1e-5)
    small = write_label_image(labels > 0, volume.ijk_to_lps, tmp_path / "mask.nrrd")
    assert sitk.ReadImage(str(small)).GetPixelID() == sitk.sitkUInt8


def test_read_label_like_same_grid_no_resample(tmp_path, volume):
    labels = np.arange(np.prod(volume.shape)).reshape(volume.shape) % 7
    path = write_label_image(labels, volume.ijk_to_lps, tmp_path / "lab.mha")
    back, aff = read_label_image(path, like=volume)
    np.testing.assert_array_equal(back, labels)


def test_read_label_like_resamples_nearest_onto_ct_grid(tmp_path):
    # CT grid: 1 mm, LPS axes; label grid: 2 mm, axes flipped (RAI) over the same region
    ct = Volume(np.zeros((20, 20, 10), np.int16), np.eye(4))
    lab_aff = np.diag([-2.0, -2.0, -2.0, 1.0])
    lab_aff[:3, 3] = [19.5, 19.5, 9.5]  # so that label voxel centres sit between CT voxels
    lab = np.zeros((10, 10, 5), np.uint8)
    lab[:5] = 3  # label voxels i < 5 -> LPS x > 19.5 - 2*4.5 = 10.5 .. 19.5
    path = write_label_image(lab, lab_aff, tmp_path / "lab.nii.gz")
    back, aff = read_label_image(path, like=ct)
    assert back.shape == ct.shape
    np.testing.assert_allclose(aff, ct.ijk_to_lps)
    # CT voxel x = i mm: label 3 where x >= 11 (nearest label voxel centre x >= 11.5);
    # CT voxels at y = 0 or z = 0 lie outside the label image (centres from 1.5 mm) -> 0
    assert (back[11:, 1:, 1:] == 3).all()
    assert (back[:10, :, :] == 0).all()
    assert (back[:, 0, :] == 0).all() and (back[:, :, 0] == 0).all()
    assert back.dtype == np.uint8


def test_label_image_rejects_sheared_affine_and_bad_suffix(tmp_path):
    aff = np.eye(4)
    aff[0, 1] = 0.3
    with pytest.raises(GeometryError, match="not orthogonal"):
        write_label_image(np.zeros((2, 2, 2), np.uint8), aff, tmp_path / "x.nii.gz")
    with pytest.raises(OutputError, match="use one of"):
        write_label_image(np.zeros((2, 2, 2), np.uint8), np.eye(4), tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_read_label_rejects_fractional_values(tmp_path):
    img = sitk.GetImageFromArray(np.full((3, 3, 3), 0.5, np.float32))
    sitk.WriteImage(img, str(tmp_path / "prob.nii.gz"))
    with pytest.raises(Exception, match="not a label map"):
        read_label_image(tmp_path / "prob.nii.gz")


# ------------------------------------------------------------------- atomic writes
def test_atomic_write_leaves_no_partial_file(tmp_path):
    out = tmp_path / "a.bin"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(out) as f:
            f.write(b"half")
            raise RuntimeError("crash")
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
    out.unlink()
    with atomic_write(out, "w") as f:
        f.write("new")
    assert out.read_text() == "new"
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"")  # permissions a normal open() gives under the current umask
    assert out.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_atomic_path_keeps_suffix_and_errors_on_missing_folder(tmp_path):
    with atomic_path(tmp_path / "x.nii.gz") as tmp:
        assert str(tmp).endswith(".nii.gz") and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "x.nii.gz").read_bytes() == b"x"
    with pytest.raises(OutputError, match="does not exist"):
        with atomic_write(tmp_path / "nope" / "x.json"):
            pass


# ------------------------------------------------------------------- plan.json
def _plan_dict():
    return {"schema": "needleplan.plan/1", "coordinate_system": "LPS", "units": "mm",
            "trajectories": [{"level": "L1", "side": "left", "target_lps": [1.0, 2.0, 3.0],
                              "length_mm": np.float64(87.5), "clearance_mm": {"canal": np.nan}}],
            "levels": []}


def test_plan_json_round_trip_numpy_and_nan(tmp_path):
    p = write_plan_json(_plan_dict(), tmp_path / "plan.json")
    d = read_plan_json(p)
    assert d["trajectories"][0]["length_mm"] == 87.5
    assert d["trajectories"][0]["clearance_mm"]["canal"] is None


def test_plan_json_accepts_to_dict_objects_and_plan_model(tmp_path):
    from needleplan.planner.model import Plan

    p = write_plan_json(Plan(), tmp_path / "plan.json")
    d = read_plan_json(p)
    assert d["schema"] == "needleplan.plan/1" and d["coordinate_system"] == "LPS"
    Plan.from_dict(d)


@pytest.mark.parametrize("content, match", [
    (b"", "is empty"),
    (b"{\"schema\": \"needleplan.plan/1\", ", "corrupt: invalid JSON"),
    (b"\xff\xfe\x00garbage", "not text"),
    (b"[1, 2]", "not a needleplan plan file"),
    (b'{"schema": "slicer.markups/1"}', "not a needleplan plan file"),
    (b'{"schema": "needleplan.plan/2", "coordinate_system": "LPS", "units": "mm"}',
     "newer needleplan"),
    (b'{"schema": "needleplan.plan/1", "units": "mm"}', "coordinate_system"),
    (b'{"schema": "needleplan.plan/1", "coordinate_system": "RAS", "units": "mm"}',
     "coordinate_system"),
    (b'{"schema": "needleplan.plan/1", "coordinate_system": "LPS", "units": "cm"}', "units"),
    (b'{"schema": "needleplan.plan/1", "coordinate_system": "LPS", "units": "mm", '
     b'"trajectories": [{"target_lps": [1, 2]}]}', "3 numbers"),
])
def test_read_plan_json_rejects_bad_files(tmp_path, content, match):
    p = tmp_path / "plan.json"
    p.write_bytes(content)
    with pytest.raises(PlanFileError, match=match) as exc:
        read_plan_json(p)
    assert str(p) in str(exc.value) and "\n" not in str(exc.value)


def test_read_plan_json_missing_file(tmp_path):
    with pytest.raises(PlanFileError, match="does not exist"):
        read_plan_json(tmp_path / "none.json")


def test_write_plan_json_refuses_other_frame(tmp_path):
    d = _plan_dict()
    d["coordinate_system"] = "RAS"
    with pytest.raises(ValueError, match="LPS"):
        write_plan_json(d, tmp_path / "p.json")
    assert not (tmp_path / "p.json").exists()
    json.dumps(read_plan_json(write_plan_json(_plan_dict(), tmp_path / "q.json")))


def test_nrrd_in_ras_space_converted_to_lps(tmp_path):
    """A hand-written NRRD that states its frame as RAS is read into LPS."""
    header = ("NRRD0004\ntype: short\ndimension: 3\nspace: right-anterior-superior\n"
              "sizes: 2 3 4\nspace directions: (1,0,0) (0,2,0) (0,0,3)\n"
              "kinds: domain domain domain\nendian: little\nencoding: raw\n"
              "space origin: (10,20,30)\n\n")
    p = tmp_path / "ras.nrrd"
    p.write_bytes(header.encode() + np.arange(24, dtype="<i2").tobytes())
    vol = load_ct(p)
    np.testing.assert_allclose(vol.ijk_to_lps, [[-1, 0, 0, -10], [0, -2, 0, -20], [0, 0, 3, 30],
                                                [0, 0, 0, 1]])
    assert vol.axis_codes == ("R", "A", "S")
    assert int(vol.voxels[1, 2, 3]) == 1 + 2 * 2 + 6 * 3  # file order: i fastest


def test_flip_to_lps_keeps_every_voxel_at_its_lps_point():
    from needleplan.errors import GeometryError
    from needleplan.io.volume import Volume, flip_to_lps

    vox = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    aff = np.diag([-0.8, -0.8, 2.0, 1.0])
    aff[:3, 3] = [100.0, 50.0, -30.0]
    vol = Volume(vox, aff)
    flipped = flip_to_lps(vol)
    assert np.all(np.diag(flipped.ijk_to_lps)[:3] > 0)
    ijk = np.array([[0, 0, 0], [3, 4, 5], [1, 2, 3]])
    for i, j, k in ijk:  # the same value sits at the same LPS point
        p = vol.to_lps([i, j, k])
        fi, fj, fk = np.round(flipped.to_ijk(p)).astype(int)
        assert flipped.voxels[fi, fj, fk] == vox[i, j, k]
    rot = np.eye(4)
    rot[:2, :2] = [[0, 1], [1, 0]]
    with pytest.raises(GeometryError, match="oblique or permuted"):
        flip_to_lps(Volume(vox, rot))
