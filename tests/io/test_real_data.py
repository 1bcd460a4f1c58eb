"""Geometry and HU of the real scans in ../shared/data against SimpleITK's own readers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from needleplan.cli import main
from needleplan.io import load_ct
from tests.conftest import require_shared

pytestmark = pytest.mark.needs_data


def _sitk_reference(path):
    if path.is_dir():
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path)))
        img = reader.Execute()
    else:
        img = sitk.ReadImage(str(path))
    aff = np.eye(4)
    aff[:3, :3] = np.array(img.GetDirection()).reshape(3, 3) * np.array(img.GetSpacing())
    aff[:3, 3] = img.GetOrigin()
    return img, aff


def _check_against_sitk(vol, img, aff):
    np.testing.assert_allclose(vol.ijk_to_lps, aff, atol=1e-3)
    ref = sitk.GetArrayViewFromImage(img).transpose(2, 1, 0)
    assert vol.shape == ref.shape
    assert np.array_equal(vol.voxels, ref)  # exact HU


def _check_point_both_ways(vol, img):
    """An LPS point maps to the same voxel with needleplan and with SimpleITK, and back."""
    shape = np.array(vol.shape)
    rng = np.random.default_rng(3)
    ijk = rng.integers(0, shape, size=(20, 3))
    pts_lps = vol.to_lps(ijk + rng.uniform(-0.4, 0.4, size=(20, 3)))
    for p, expect in zip(pts_lps, ijk):
        ours = np.rint(vol.to_ijk(p)).astype(int)
        theirs = img.TransformPhysicalPointToIndex(tuple(float(v) for v in p))
        assert tuple(ours) == tuple(expect) == tuple(theirs)
        np.testing.assert_allclose(vol.to_lps(ours), img.TransformIndexToPhysicalPoint(
            tuple(int(v) for v in ours)), atol=1e-3)


@pytest.fixture(scope="session")
def lidc():
    path = require_shared("lidc0314-chest-1mm", "dicom")
    vol = load_ct(path, strict=True)
    img, aff = _sitk_reference(path)
    return vol, img, aff


def test_lidc_feet_first_supine_matches_simpleitk(lidc):
    vol, img, aff = lidc
    assert vol.shape == (512, 512, 275)
    assert vol.meta["patient_position"] == "FFS"
    assert vol.axis_codes == ("L", "P", "S")
    np.testing.assert_allclose(vol.spacing_mm, [0.78125, 0.78125, 1.0], atol=1e-4)
    assert vol.voxels.dtype == np.int16
    assert vol.meta["warnings"] == []
    _check_against_sitk(vol, img, aff)
    _check_point_both_ways(vol, img)
    assert vol.phi and "PatientName" not in vol.meta


def test_lidc_is_sorted_along_normal(lidc):
    vol, _, _ = lidc
    z = vol.to_lps([[0, 0, 0], [0, 0, 274]])[:, 2]
    assert z[1] - z[0] == pytest.approx(274.0, abs=1e-3)


def test_jpeg2000_series_decodes_and_spacing_from_positions():
    path = require_shared("ts-abdomen-3mm", "dicom-jpeg2000")
    vol = load_ct(path, strict=True)
    assert vol.meta["transfer_syntax"] == "1.2.840.10008.1.2.4.90"
    assert vol.meta["slice_thickness_mm"] == pytest.approx(3.0)
    assert vol.spacing_mm[2] == pytest.approx(2.0, abs=1e-3)  # from positions, not thickness
    assert (int(vol.voxels.min()), int(vol.voxels.max())) == (-1024, 1839)
    assert vol.axis_codes == ("L", "P", "S")
    img, aff = _sitk_reference(path)
    _check_against_sitk(vol, img, aff)
    _check_point_both_ways(vol, img)


@pytest.mark.parametrize("parts, codes", [
    (("ts-abdomen-3mm", "ct.nii.gz"), ("R", "A", "S")),
    (("tptbox-l3-1.5mm", "sub-ct_label-22_ct.nii.gz"), ("P", "I", "R")),
])
def test_nifti_matches_simpleitk_and_nibabel(parts, codes):
    path = require_shared(*parts)
    vol = load_ct(path, strict=True)
    assert vol.axis_codes == codes
    img, aff = _sitk_reference(path)
    _check_against_sitk(vol, img, aff)
    _check_point_both_ways(vol, img)
    nib = pytest.importorskip("nibabel")
    nimg = nib.load(path)
    # nibabel's affine is RAS: LPS = diag(-1, -1, 1) RAS
    np.testing.assert_allclose(vol.ijk_to_lps, np.diag([-1, -1, 1, 1]) @ nimg.affine, atol=1e-3)
    np.testing.assert_array_equal(vol.voxels, np.asarray(nimg.dataobj))
    assert nib.aff2axcodes(nimg.affine) == codes  # letters name directions, not frames


def test_info_cli_json_on_real_series(capsys):
    path = require_shared("ts-abdomen-3mm", "dicom-jpeg2000")
    assert main(["info", "--json", str(path)]) == 0
    d = json.loads(capsys.readouterr().out)
    sel = d["selected"]
    assert sel["size"] == [512, 512, 20]
    assert sel["spacing_mm"][2] == pytest.approx(2.0, abs=1e-3)
    assert sel["axis_codes"] == "LPS" and sel["patient_position"] == "HFS"
    assert d["series"][0]["n_files"] == 20 and d["series"][0]["selected"]
