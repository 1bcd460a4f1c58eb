"""Every bad input of issue 2: rejected with a one-line error, or repaired with a warning.

Policy (also in the report):
- rejected (always): missing path, empty folder, folder without DICOM, a single non-DICOM /
  zero-byte / truncated file, non-CT modality, one slice, irregular spacing, a gap of more
  than 3 slices, non-orthogonal orientation, missing ImagePositionPatient, zero pixel
  spacing, zero rescale slope, a gigantic image, every file with truncated pixel data,
  unsupported transfer syntax, tilt > 30 deg.
- repaired with a NeedlePlanWarning (errors with ``strict=True``): random/zero-byte files
  in a folder (skipped silently: not DICOM), damaged DICOM files in a folder, a file with
  truncated pixel data, missing slices (<= 3 in a row, interpolated), duplicate slices,
  slices of another size or orientation, localizers, gantry tilt (slices shifted).
- not a defect: two series interleaved in one folder (the CT series with most slices is
  loaded; ``series_uid`` picks another).
"""

from __future__ import annotations

import re
import shutil
import time

import numpy as np
import pytest
import pydicom
from pydicom.encaps import encapsulate

from needleplan.cli import main
from needleplan.errors import DicomSeriesError, GeometryError, InputError, NeedlePlanError
from needleplan.io import NeedlePlanWarning, load_ct
from tests.io.conftest import ct_dataset, expected_raw, save

# --------------------------------------------------------------------- case builders
# Each returns the path to load.


def missing_path(tmp_path, make):
    return tmp_path / "does-not-exist"


def empty_folder(tmp_path, make):
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def folder_without_dicom(tmp_path, make):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "readme.txt").write_text("no images here\n")
    (d / "scan.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    return d


def random_bytes_dcm(tmp_path, make):
    p = tmp_path / "random.dcm"
    p.write_bytes(np.random.default_rng(1).integers(16, 256, 4000, dtype=np.uint8).tobytes())
    return p


def zero_byte_file(tmp_path, make):
    p = tmp_path / "zero.dcm"
    p.write_bytes(b"")
    return p


def truncated_single_file(tmp_path, make):
    folder = make(n=3)
    p = folder / "IM0002.dcm"
    p.write_bytes(p.read_bytes()[:300])
    return p


def non_ct_modality(tmp_path, make):
    return make(n=4, modality="MR")


def one_slice(tmp_path, make):
    return make(n=1)


def irregular_spacing(tmp_path, make):
    zs = [0.0, 1.0, 2.0, 3.6, 4.1, 5.1]
    return make(n=6, edit=lambda ds, k: setattr(ds, "ImagePositionPatient", [0, 0, zs[k]]))


def large_gap(tmp_path, make):
    return make(n=10, edit=lambda ds, k: False if 2 <= k <= 6 else None)


def non_orthogonal(tmp_path, make):
    return make(n=4, iop=(1, 0, 0, 0.1, 0.995, 0))


def missing_position(tmp_path, make):
    def edit(ds, k):
        if k == 2:
            del ds.ImagePositionPatient
    return make(n=4, edit=edit)


def zero_pixel_spacing(tmp_path, make):
    return make(n=4, pixel_spacing=(0.0, 0.0))


def zero_rescale_slope(tmp_path, make):
    return make(n=4, slope=0)


def gigantic_header(tmp_path, make):
    def edit(ds, k):
        ds.Rows = ds.Columns = 65000  # claims 65000 x 65000 x 3 x 2 bytes = 25 GB
    return make(n=3, edit=edit)


def all_pixels_truncated(tmp_path, make):
    folder = make(n=3)
    for f in folder.iterdir():
        f.write_bytes(f.read_bytes()[:-200])
    return folder


def unsupported_transfer_syntax(tmp_path, make):
    def edit(ds, k):
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video
        ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(60)])
        ds["PixelData"].VR = "OB"
    return make(n=3, edit=edit)


def big_tilt(tmp_path, make):
    return make(n=4, edit=lambda ds, k: setattr(ds, "ImagePositionPatient", [0, 3.0 * k, 1.0 * k]))


REJECTED = [
    (missing_path, InputError, "does not exist"),
    (empty_folder, InputError, "empty folder"),
    (folder_without_dicom, InputError, "holds no DICOM files"),
    (random_bytes_dcm, InputError, "not a DICOM file"),
    (zero_byte_file, InputError, "empty file"),
    (truncated_single_file, InputError, "damaged DICOM file"),
    (non_ct_modality, DicomSeriesError, "no CT series"),
    (one_slice, GeometryError, "only 1 usable slice"),
    (irregular_spacing, GeometryError, "slice spacing varies"),
    (large_gap, GeometryError, "5 consecutive slices missing"),
    (non_orthogonal, GeometryError, "not orthonormal"),
    (missing_position, GeometryError, "lack ImagePositionPatient"),
    (zero_pixel_spacing, GeometryError, "PixelSpacing .* not positive"),
    (zero_rescale_slope, DicomSeriesError, "RescaleSlope 0"),
    (gigantic_header, DicomSeriesError, "refusing to load"),
    (all_pixels_truncated, DicomSeriesError, "truncated pixel data"),
    (unsupported_transfer_syntax, DicomSeriesError, "MPEG2 .* not supported"),
    (big_tilt, GeometryError, "gantry tilt of 71.6 deg"),
]


@pytest.mark.parametrize("build, error, match", REJECTED, ids=[c[0].__name__ for c in REJECTED])
def test_rejected_inputs_raise_one_line_error_naming_path(tmp_path, make_ct_series, build,
                                                         error, match):
    path = build(tmp_path, make_ct_series)
    t0 = time.perf_counter()
    with pytest.raises(error, match=match) as exc_info:
        load_ct(path)
    assert time.perf_counter() - t0 < 5
    msg = str(exc_info.value)
    assert "\n" not in msg
    assert str(path) in msg
    assert exc_info.value.path == str(path)


@pytest.mark.parametrize("build, error, match", REJECTED, ids=[c[0].__name__ for c in REJECTED])
def test_rejected_inputs_cli_exit_2(tmp_path, make_ct_series, capsys, build, error, match):
    path = build(tmp_path, make_ct_series)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("needleplan info: error:")
    assert str(path) in err


def test_non_ct_series_chosen_explicitly(make_ct_series):
    folder = make_ct_series(n=4, modality="MR", series_uid="3.3")
    with pytest.raises(DicomSeriesError, match="modality is MR, not CT"):
        load_ct(folder, series_uid="3.3")


def test_gigantic_header_refused_without_allocating(tmp_path, make_ct_series):
    import tracemalloc

    path = gigantic_header(tmp_path, make_ct_series)
    tracemalloc.start()
    with pytest.raises(DicomSeriesError):
        load_ct(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50e6


# --------------------------------------------------------------------- tolerated cases
def _load_warns(path, match, **kw):
    with pytest.warns(NeedlePlanWarning) as record:
        vol = load_ct(path, **kw)
    assert any(re.search(match, str(w.message)) for w in record)
    assert [str(w.message) for w in record] == vol.meta["warnings"]
    assert any(re.search(match, w) for w in vol.meta["warnings"])
    with pytest.raises(NeedlePlanError, match=match):
        load_ct(path, strict=True, **kw)
    return vol


def test_random_and_zero_byte_files_in_series_folder_are_skipped(make_ct_series):
    folder = make_ct_series(n=4)
    (folder / "junk.dcm").write_bytes(np.random.default_rng(2).integers(16, 256, 999, np.uint8)
                                      .tobytes())
    (folder / "zero.dcm").write_bytes(b"")
    vol = load_ct(folder, strict=True)  # foreign files are not a defect of the series
    assert vol.shape[2] == 4


def test_truncated_file_in_folder_skipped_and_gap_filled(make_ct_series):
    folder = make_ct_series(n=5)
    f = folder / "IM0003.dcm"  # k = 2
    f.write_bytes(f.read_bytes()[:700])
    vol = _load_warns(folder, "damaged DICOM file")
    assert vol.shape[2] == 5
    assert any("missing slice" in w for w in vol.meta["warnings"])


def test_truncated_pixel_data_slice_dropped(make_ct_series):
    folder = make_ct_series(n=5)
    f = folder / "IM0001.dcm"  # k = 4, the last slice
    f.write_bytes(f.read_bytes()[:-100])
    vol = _load_warns(folder, "truncated pixel data")
    assert vol.shape[2] == 4


def test_missing_slice_is_interpolated(make_ct_series):
    folder = make_ct_series(n=6, edit=lambda ds, k: False if k == 2 else None)
    vol = _load_warns(folder, "1 missing slice")
    assert vol.shape[2] == 6
    assert vol.spacing_mm[2] == pytest.approx(2.0)
    # the test pattern is linear in k, so interpolation restores it exactly
    np.testing.assert_array_equal(vol.voxels[:, :, 2], expected_raw(16, 16, 2).T - 1024)


def test_duplicate_copies_dropped(make_ct_series):
    folder = make_ct_series(n=4)
    shutil.copy(folder / "IM0002.dcm", folder / "copy.dcm")
    vol = _load_warns(folder, "duplicate slice.*copies")
    assert vol.shape[2] == 4


def test_duplicate_positions_different_images_dropped(make_ct_series):
    folder = make_ct_series(n=4)
    save(ct_dataset(1, pixels=np.zeros((16, 16))), folder / "extra.dcm")
    vol = _load_warns(folder, "duplicate slice.*same position")
    assert vol.shape[2] == 4


def test_slice_of_other_size_dropped(make_ct_series):
    def edit(ds, k):
        if k == 4:
            return ct_dataset(k, rows=20, cols=16)
    vol = _load_warns(make_ct_series(n=5, edit=edit), "size 16x20")
    assert vol.shape == (16, 16, 4)


def test_localizer_mixed_in_dropped(make_ct_series):
    folder = make_ct_series(n=5)
    loc = ct_dataset(0, iop=(0, 1, 0, 0, 0, -1), rows=24, cols=16)
    loc.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    save(loc, folder / "scout.dcm")
    vol = _load_warns(folder, "localizer")
    assert vol.shape == (16, 16, 5)
    assert vol.axis_codes == ("L", "P", "S")


def test_unflagged_slice_of_other_orientation_dropped(make_ct_series):
    folder = make_ct_series(n=5)
    save(ct_dataset(0, iop=(0, 1, 0, 0, 0, -1)), folder / "sag.dcm")
    vol = _load_warns(folder, "another orientation")
    assert vol.shape[2] == 5


def test_gantry_tilt_corrected(make_ct_series):
    # each slice moves 0.5 mm (= one row) posterior per 2 mm: tilt atan(0.5 / 2) = 14.04 deg
    def edit(ds, k):
        ds.ImagePositionPatient = [-4.0, -6.0 + 0.5 * k, 10.0 + 2.0 * k]
        ds.GantryDetectorTilt = 14.04
        img = np.zeros((16, 16), np.int16)
        img[8 - k, 5] = 3000  # a bright dot fixed in space (LPS y = -2)
        ds.PixelData = img.astype("<i2").tobytes()

    vol = _load_warns(make_ct_series(n=6, edit=edit), "gantry tilt of 14.0 deg")
    np.testing.assert_allclose(vol.ijk_to_lps[:3, 2], [0, 0, 2.0], atol=1e-9)
    assert vol.meta["gantry_tilt_deg"] == pytest.approx(14.036, abs=0.01)
    for k in range(6):
        assert int(vol.voxels[5, 8, k]) == 3000 - 1024
        assert vol.to_lps([5, 8, k])[1] == pytest.approx(-2.0)


def test_two_series_interleaved(tmp_path):
    folder = tmp_path / "mixed"
    for k in range(6):
        save(ct_dataset(k, series_uid="1.1"), folder / f"{2 * k:03d}.dcm")
        if k < 4:
            b = ct_dataset(k, series_uid="2.2", pixels=np.full((16, 16), 7))
            save(b, folder / f"{2 * k + 1:03d}.dcm")
    vol = load_ct(folder, strict=True)
    assert vol.series_uid == "1.1" and vol.shape[2] == 6
    assert vol.meta["other_series"] == ["2.2"]
    vol_b = load_ct(folder, series_uid="2.2", strict=True)
    assert vol_b.shape[2] == 4 and int(vol_b.voxels.max()) == 7 - 1024


def test_tolerated_case_cli_prints_warning_exit_0(make_ct_series, capsys):
    folder = make_ct_series(n=6, edit=lambda ds, k: False if k == 2 else None)
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "missing slice" in out
    assert "size: 16 x 16 x 6 voxels" in out


def test_nifti_gigantic_header_refused(tmp_path):
    nib = pytest.importorskip("nibabel")
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((4000, 4000, 4000))
    hdr.set_data_dtype(np.int16)
    p = tmp_path / "huge.nii"
    with open(p, "wb") as f:
        hdr.write_to(f)
        f.write(bytes(4 + 64))
    with pytest.raises(InputError, match="refusing to load"):
        load_ct(p)


def test_corrupt_nifti_rejected(tmp_path):
    p = tmp_path / "bad.nii.gz"
    p.write_bytes(b"this is not gzip at all")
    with pytest.raises(InputError, match="cannot read"):
        load_ct(p)
    assert main(["info", str(p)]) == 2


def test_multiframe_rejected(make_ct_series):
    def edit(ds, k):
        ds.NumberOfFrames = 2
        ds.PixelData = ds.PixelData * 2
    with pytest.raises(DicomSeriesError, match="multi-frame"):
        load_ct(make_ct_series(n=3, edit=edit))


def test_orientation_jitter_is_not_a_defect(make_ct_series):
    """IOP differing in the 4th decimal (rounding edge) must stay one orientation."""
    def edit(ds, k):
        eps = 0.00049 if k % 2 else 0.00051
        ds.ImageOrientationPatient = [1.0, eps, 0.0, -eps, 1.0, 0.0]
    vol = load_ct(make_ct_series(n=6, edit=edit), strict=True)
    assert vol.shape[2] == 6


def test_info_lists_every_series_and_series_option(tmp_path, capsys):
    folder = tmp_path / "two"
    for k in range(5):
        save(ct_dataset(k, series_uid="1.1"), folder / f"a{k}.dcm")
    for k in range(3):
        save(ct_dataset(k, series_uid="2.2", slice_mm=3.0), folder / f"b{k}.dcm")
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "series found: 2" in out and " * CT 1.1" in out and "   CT 2.2" in out
    assert main(["info", "--json", "--series", "2.2", str(folder)]) == 0
    import json

    d = json.loads(capsys.readouterr().out)
    assert d["selected"]["series_uid"] == "2.2" and d["selected"]["size"] == [16, 16, 3]
    assert d["selected"]["spacing_mm"] == [0.75, 0.5, 3.0]
    assert main(["info", "--series", "3.3", str(folder)]) == 2
    assert "no series 3.3" in capsys.readouterr().err


def test_cut_or_corrupted_file_never_crashes(tmp_path):
    """A file cut at any byte or with flipped header bytes gives a volume or a one-line error."""
    import warnings

    src = tmp_path / "src"
    for k in range(4):
        save(ct_dataset(k), src / f"{k}.dcm")
    data = (src / "2.dcm").read_bytes()
    rng = np.random.default_rng(7)
    variants = [data[:cut] for cut in range(0, len(data), 37)]
    for _ in range(60):
        b = bytearray(data)
        for pos in rng.integers(128, 900, size=3):
            b[int(pos)] = int(rng.integers(0, 256))
        variants.append(bytes(b))
    outcomes = {"ok": 0, "error": 0}
    for n, content in enumerate(variants):
        case = tmp_path / f"case{n}"
        shutil.copytree(src, case)
        (case / "2.dcm").write_bytes(content)
        for target in (case, case / "2.dcm"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    load_ct(target)
                    outcomes["ok"] += 1
                except NeedlePlanError as exc:
                    assert "\n" not in str(exc)
                    outcomes["error"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0


def test_folder_with_only_nifti_hints_at_the_file(tmp_path):
    d = tmp_path / "nii"
    d.mkdir()
    (d / "ct.nii.gz").write_bytes(b"x" * 10)
    with pytest.raises(InputError, match="pass it directly.*ct.nii.gz"):
        load_ct(d)


def test_corrupt_compressed_pixels_rejected_after_header_scan(make_ct_series):
    from pydicom.uid import JPEG2000Lossless

    from needleplan.io import scan_path

    def edit(ds, k):
        ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(range(256)) * 2])
        ds["PixelData"].VR = "OB"

    folder = make_ct_series(n=3, edit=edit)
    assert scan_path(folder)[0].n_files == 3  # headers are fine; pixels are not read
    with pytest.raises(DicomSeriesError, match="cannot decode the pixel data of") as exc:
        load_ct(folder)
    assert "\n" not in str(exc.value) and str(folder) in str(exc.value)


def test_truncated_compressed_slice_dropped(make_ct_series, tmp_path):
    from pydicom.uid import RLELossless

    plain = make_ct_series("plain", n=5)
    out = tmp_path / "rle"
    for f in sorted(plain.iterdir()):
        ds = pydicom.dcmread(f)
        ds.compress(RLELossless)
        save(ds, out / f.name)
    f = out / "IM0001.dcm"  # the last slice (k = 4)
    f.write_bytes(f.read_bytes()[:-30])
    vol = _load_warns(out, "truncated pixel data")
    assert vol.shape[2] == 4
