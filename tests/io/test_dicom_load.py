"""Loading good synthetic DICOM series: geometry, sorting, HU, metadata, compression."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, RLELossless

from needleplan.io import NeedlePlanWarning, Volume, load_ct, scan_path
from tests.io.conftest import ct_dataset, expected_raw, save


def _expected_volume(n, rows=16, cols=16, intercept=-1024):
    return np.stack([expected_raw(rows, cols, k) for k in range(n)]).transpose(2, 1, 0) + intercept


def test_axial_hfs_geometry_and_hu(make_ct_series):
    folder = make_ct_series(n=6, pixel_spacing=(0.5, 0.75), slice_mm=2.0, origin=(-4, -6, 10))
    vol = load_ct(folder, strict=True)
    assert isinstance(vol, Volume)
    assert vol.shape == (16, 16, 6)
    assert vol.voxels.dtype == np.int16
    # column i steps by PixelSpacing[1] = 0.75, row j by PixelSpacing[0] = 0.5
    np.testing.assert_allclose(vol.ijk_to_lps, [[0.75, 0, 0, -4], [0, 0.5, 0, -6],
                                                [0, 0, 2.0, 10], [0, 0, 0, 1]], atol=1e-9)
    assert vol.axis_codes == ("L", "P", "S")
    np.testing.assert_array_equal(vol.voxels, _expected_volume(6))
    assert vol.meta["series_uid"] == "1.2.3.4"
    assert vol.meta["patient_position"] == "HFS"
    assert vol.meta["modality"] == "CT"
    assert vol.meta["n_slices"] == 6
    assert vol.meta["warnings"] == []
    assert vol.phi["PatientName"] == "Test^Patient"
    assert "PatientName" not in vol.meta


def test_sorted_by_position_not_name_or_instance(make_ct_series):
    """Files are named in reverse order and InstanceNumbers are scrambled (see fixture)."""
    folder = make_ct_series(n=7)
    vol = load_ct(folder)
    z = vol.to_lps([[0, 0, k] for k in range(7)])[:, 2]
    assert np.all(np.diff(z) > 0)
    # slice k must hold the pixels written for position k
    assert int(vol.voxels[0, 0, 3]) == 300 * 3 - 1024


def test_descending_positions_give_same_volume(make_ct_series):
    folder = make_ct_series(n=5, slice_mm=-2.5, origin=(0, 0, 50))
    vol = load_ct(folder)
    assert vol.spacing_mm[2] == pytest.approx(2.5)
    assert vol.origin_lps[2] == pytest.approx(50 - 4 * 2.5)
    # lowest slice is the one written last (k = 4)
    assert int(vol.voxels[0, 0, 0]) == 300 * 4 - 1024


def test_oblique_orientation_affine(make_ct_series):
    a = np.radians(20)
    row = np.array([np.cos(a), np.sin(a), 0.0])
    col = np.array([0.0, 0.0, -1.0])  # coronal-ish, rows go down (inferior)
    iop = tuple(row) + tuple(col)
    folder = make_ct_series(n=4, iop=iop, pixel_spacing=(0.6, 0.9), slice_mm=1.5)
    vol = load_ct(folder)
    normal = np.cross(row, col)
    np.testing.assert_allclose(vol.ijk_to_lps[:3, 0], row * 0.9, atol=1e-6)
    np.testing.assert_allclose(vol.ijk_to_lps[:3, 1], col * 0.6, atol=1e-6)
    np.testing.assert_allclose(vol.ijk_to_lps[:3, 2], normal * 1.5, atol=1e-6)
    pts = np.array([[0.0, 0, 0], [3.2, 7.7, 2.5], [15, 15, 3]])
    np.testing.assert_allclose(vol.to_ijk(vol.to_lps(pts)), pts, atol=1e-9)


def test_feet_first_prone_orientation_codes(make_ct_series):
    # prone: image x runs to patient right, image y to anterior
    folder = make_ct_series(n=3, iop=(-1, 0, 0, 0, -1, 0), patient_position="FFP")
    vol = load_ct(folder)
    assert vol.axis_codes == ("R", "A", "S")  # normal = (-x) x (-y) = +z
    assert vol.patient_position == "FFP"


def test_rescale_slope_float_gives_float32(make_ct_series):
    folder = make_ct_series(n=3, slope=0.5, intercept=-1000.25)
    vol = load_ct(folder)
    assert vol.voxels.dtype == np.float32
    raw = expected_raw(16, 16, 2).T
    np.testing.assert_allclose(vol.voxels[:, :, 2], raw * 0.5 - 1000.25, atol=1e-3)


def test_unsigned_pixels_with_large_values_fit_int16(make_ct_series):
    def edit(ds, k):
        ds.PixelRepresentation = 0
        ds.PixelData = np.full((16, 16), 4000 + k, "<u2").tobytes()

    vol = load_ct(make_ct_series(n=3, edit=edit))
    assert vol.voxels.dtype == np.int16
    assert int(vol.voxels[5, 5, 2]) == 4002 - 1024


def test_unsigned_values_beyond_int16_switch_to_float(make_ct_series):
    def edit(ds, k):
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = 0
        ds.PixelData = np.full((16, 16), 60000, "<u2").tobytes()

    vol = load_ct(make_ct_series(n=3, edit=edit))
    assert vol.voxels.dtype == np.float32
    assert float(vol.voxels.max()) == 60000.0


def test_single_file_loads_whole_series(make_ct_series, tmp_path):
    folder = make_ct_series(n=5)
    make_ct_series(folder=folder, n=3, series_uid="9.9.9", prefix="other")
    vol = load_ct(folder / "IM0003.dcm")
    assert vol.shape[2] == 5
    assert vol.series_uid == "1.2.3.4"


def test_recursive_folder(make_ct_series, tmp_path):
    make_ct_series(folder=tmp_path / "root" / "a" / "b", n=4)
    vol = load_ct(tmp_path / "root")
    assert vol.shape[2] == 4


def test_scan_path_lists_series_fast_and_headers_only(make_ct_series):
    folder = make_ct_series(n=5)
    make_ct_series(folder=folder, n=2, series_uid="5.5", modality="MR", prefix="mr")
    (folder / "notes.txt").write_text("hello")
    series = scan_path(folder)
    assert [s.series_uid for s in series] == ["1.2.3.4", "5.5"]
    ct = series[0]
    assert (ct.modality, ct.n_files, ct.rows, ct.cols) == ("CT", 5, 16, 16)
    assert ct.pixel_spacing_mm == (0.5, 0.75)
    assert len(ct.files) == 5 and all(f.endswith(".dcm") for f in ct.files)
    assert series.skipped and series.skipped[0][0].endswith("notes.txt")
    assert series.damaged == []


def test_series_uid_selects_and_unknown_uid_errors(make_ct_series):
    from needleplan.errors import DicomSeriesError

    folder = make_ct_series(n=5)
    make_ct_series(folder=folder, n=3, series_uid="7.7.7", prefix="b")
    assert load_ct(folder, series_uid="7.7.7").shape[2] == 3
    with pytest.raises(DicomSeriesError, match="no series 1.9.9"):
        load_ct(folder, series_uid="1.9.9")


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_compressed_transfer_syntaxes_decode_to_same_hu(make_ct_series, tmp_path, syntax):
    plain = make_ct_series("plain", n=4, rows=64, cols=64)  # J2K needs > 32 px
    ref = load_ct(plain)
    out = tmp_path / "compressed"
    for f in sorted(plain.iterdir()):
        ds = pydicom.dcmread(f)
        ds.compress(syntax)
        save(ds, out / f.name)
    assert pydicom.dcmread(next(out.iterdir())).file_meta.TransferSyntaxUID == syntax
    vol = load_ct(out, strict=True)
    np.testing.assert_array_equal(vol.voxels, ref.voxels)
    np.testing.assert_allclose(vol.ijk_to_lps, ref.ijk_to_lps)
    assert vol.meta["transfer_syntax"] == syntax


def test_implicit_vr_and_no_preamble(make_ct_series, tmp_path):
    """Implicit VR little endian files and a raw stream without the 128-byte preamble."""
    from pydicom.uid import ImplicitVRLittleEndian

    out = tmp_path / "implicit"
    for k in range(3):
        ds = ct_dataset(k)
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        save(ds, out / f"s{k}.dcm")
    vol = load_ct(out, strict=True)
    np.testing.assert_array_equal(vol.voxels, _expected_volume(3))
    # strip preamble + meta of one file: still read (force) as implicit VR
    raw = tmp_path / "raw"
    raw.mkdir()
    for k in range(3):
        ds = ct_dataset(k)
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.save_as(raw / f"r{k}", implicit_vr=True, little_endian=True, enforce_file_format=False)
        data = (raw / f"r{k}").read_bytes()
        if data[128:132] == b"DICM":  # pydicom wrote a preamble anyway: strip it and the meta
            ds2 = pydicom.dcmread(raw / f"r{k}")
            from io import BytesIO

            buf = BytesIO()
            pydicom.filewriter.write_dataset(buf, ds2)  # implicit VR LE body only
            (raw / f"r{k}").write_bytes(buf.getvalue())
        assert (raw / f"r{k}").read_bytes()[128:132] != b"DICM"
    vol2 = load_ct(raw)
    np.testing.assert_array_equal(vol2.voxels, vol.voxels)


def test_warnings_go_to_meta_and_warnings_module(make_ct_series):
    def edit(ds, k):
        if k == 2:
            return False  # one missing slice

    folder = make_ct_series(n=6, edit=edit)
    with pytest.warns(NeedlePlanWarning, match="missing slice") as rec:
        vol = load_ct(folder)
    assert len(vol.meta["warnings"]) == 1
    assert vol.meta["warnings"][0] == str(rec[0].message)


def test_progress_callback_is_called(make_ct_series):
    calls = []
    load_ct(make_ct_series(n=4), progress=lambda done, total, what: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1]


def test_fast_header_values_equal_pydicom(make_ct_series):
    """read_header decodes raw elements itself; it must agree with pydicom's conversion."""
    from needleplan.io._dicom_scan import read_header

    folder = make_ct_series(n=2, pixel_spacing=(0.5, 0.75), slope=1, intercept=-1024)
    f = sorted(folder.iterdir())[0]
    ds = pydicom.dcmread(f, stop_before_pixels=True)
    h = read_header(f)
    assert h.ipp == tuple(float(v) for v in ds.ImagePositionPatient)
    assert h.iop == tuple(float(v) for v in ds.ImageOrientationPatient)
    assert h.pixel_spacing == tuple(float(v) for v in ds.PixelSpacing)
    assert (h.rows, h.cols, h.bits_allocated, h.pixel_representation) == (16, 16, 16, 1)
    assert (h.slope, h.intercept) == (1.0, -1024.0)
    assert h.image_type == ("ORIGINAL", "PRIMARY", "AXIAL")
    assert h.series_uid == ds.SeriesInstanceUID and h.modality == "CT"
    assert h.instance_number == ds.InstanceNumber
    assert h.phi["PatientName"] == "Test^Patient" and h.phi["PatientBirthDate"] == "19700101"
    assert h.pixel_offset is not None and h.pixel_length == 16 * 16 * 2


def test_progress_callback_can_cancel(make_ct_series):
    """A progress callback that raises (GUI Cancel) stops the load and propagates."""
    folder = make_ct_series(n=70)

    class Cancelled(Exception):
        pass

    def progress(done, total, what):
        if what == "reading slices":
            raise Cancelled

    with pytest.raises(Cancelled):
        load_ct(folder, progress=progress)
