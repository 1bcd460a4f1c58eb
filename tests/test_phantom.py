"""The synthetic spine phantom: exact truth, options, HU realism, DICOM round trip, sample_data."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from scipy import ndimage

from needleplan.errors import InputError
from needleplan.io.dicom_write import write_dicom_series
from needleplan.phantom import NARROW_PEDICLE_MM, make_phantom
from needleplan.segmentation.model import (
    PART_ARCH,
    PART_BODY,
    PART_PEDICLE_LEFT,
    PART_PEDICLE_RIGHT,
    level_label,
)
from tests.phantoms import (
    cervical_phantom,
    coarse_phantom,
    lumbar_phantom,
    pathology_phantom,
    rotated_phantom,
    scoliotic_phantom,
    thoracic_phantom,
    thoracolumbar_phantom,
    upper_cervical_phantom,
)

REPO = Path(__file__).resolve().parents[1]
PART_OF = {"left": PART_PEDICLE_LEFT, "right": PART_PEDICLE_RIGHT}


# ----------------------------------------------------------------------------- helpers
def sample(ph, points_lps, array):
    """Nearest-voxel values of ``array`` at LPS points (outside the grid -> 0)."""
    ijk = np.rint(ph.volume.to_ijk(np.atleast_2d(points_lps))).astype(int)
    shape = np.array(array.shape)
    ok = np.all((ijk >= 0) & (ijk < shape), axis=1)
    out = np.zeros(len(ijk), dtype=array.dtype)
    out[ok] = array[ijk[ok, 0], ijk[ok, 1], ijk[ok, 2]]
    return out


def chord_mm(ph, center, direction, mask, half=15.0, step=0.1):
    """Length (mm) of the run of ``mask`` through ``center`` along ``direction``."""
    ts = np.arange(-half, half + step / 2, step)
    inside = sample(ph, center + ts[:, None] * direction, mask.astype(np.uint8)).astype(bool)
    mid = len(ts) // 2
    if not inside[mid]:
        return 0.0
    lo = mid
    while lo > 0 and inside[lo - 1]:
        lo -= 1
    hi = mid
    while hi < len(ts) - 1 and inside[hi + 1]:
        hi += 1
    return (hi - lo + 1) * step


def pedicle_frame(ph, label, side):
    va = ph.truth.vertebrae[label]
    p = va.pedicles[side]
    a = p.axis_lps
    u = va.left_lps - (va.left_lps @ a) * a
    u /= np.linalg.norm(u)
    return va, p, a, u, np.cross(a, u)


def bone_of(ph, label):
    return ph.truth.labels == label


# ----------------------------------------------------------------------------- truth
def test_lumbar_truth_levels_and_morphometry():
    ph = lumbar_phantom()
    t = ph.truth
    assert t.method == "phantom-truth"
    assert [v.name for v in t.sorted_vertebrae()] == ["L1", "L2", "L3"]
    assert set(np.unique(t.labels)) == {0, 20, 21, 22}
    widths = {v.name: v.pedicles["left"].width_mm for v in t.sorted_vertebrae()}
    assert widths == pytest.approx({"L1": 7.5, "L2": 8.2, "L3": 9.7})
    for v in t.sorted_vertebrae():
        assert 41.0 <= v.body_depth_mm <= 47.0
        assert v.genant_grade == 0 and v.height_ratio == pytest.approx(1.0)
        assert v.posterior_wall_intact is True
        # unit vectors, anterior axis points anterior (-y), left points +x
        assert np.linalg.norm(v.ap_axis_lps) == pytest.approx(1.0)
        assert v.ap_axis_lps[1] < -0.9 and v.left_lps[0] > 0.99
        assert v.superior_endplate.normal_lps[2] > 0.9 and v.inferior_endplate.normal_lps[2] > 0.9
        for side, p in v.pedicles.items():
            assert np.linalg.norm(p.axis_lps) == pytest.approx(1.0)
            assert p.axis_lps[1] < -0.8  # posterior -> anterior
            # medial: the axis runs toward the midline as it goes anterior
            toward_mid = -np.sign(p.isthmus_center_lps[0] - v.body_center_lps[0])
            assert p.axis_lps[0] * toward_mid > 0
    # medial angle rises through the lumbar spine
    ang = [np.degrees(np.arcsin(abs(v.pedicles["left"].axis_lps[0]))) for v in t.sorted_vertebrae()]
    assert ang[0] < ang[1] < ang[2] and 5 < ang[0] < 12 and 12 < ang[2] < 18


@pytest.mark.parametrize("maker", [lumbar_phantom, rotated_phantom, thoracic_phantom, cervical_phantom])
def test_isthmus_center_and_width_match_the_mask(maker):
    ph = maker()
    vox = float(max(ph.volume.spacing_mm))
    for lab, va in ph.truth.vertebrae.items():
        for side in ("left", "right"):
            va, p, a, u, w = pedicle_frame(ph, lab, side)
            assert sample(ph, p.isthmus_center_lps, ph.truth.parts)[0] == PART_OF[side]
            assert sample(ph, p.isthmus_center_lps, ph.truth.labels)[0] == lab
            bone = bone_of(ph, lab) & (ph.truth.parts != PART_BODY)
            width = chord_mm(ph, p.isthmus_center_lps, u, bone)
            height = chord_mm(ph, p.isthmus_center_lps, w, bone)
            assert abs(width - p.width_mm) <= 1.01 * vox, (va.name, side, width, p.width_mm)
            assert abs(height - p.height_mm) <= 1.51 * vox, (va.name, side, height, p.height_mm)


def test_isthmus_is_the_narrowest_section():
    ph = make_phantom(("L3",), spacing_mm=(0.4, 0.4, 0.4), noise_hu=0.0, ribs=False)
    va, p, a, u, w = pedicle_frame(ph, level_label("L3"), "left")
    bone = bone_of(ph, va.label)
    w0 = chord_mm(ph, p.isthmus_center_lps, u, bone)
    assert w0 == pytest.approx(p.width_mm, abs=0.5)
    for s in (-4.0, 4.0):
        assert chord_mm(ph, p.isthmus_center_lps + s * a, u, bone) > w0 + 0.2


def test_parts_and_canal_are_consistent():
    ph = thoracolumbar_phantom()
    t = ph.truth
    inside = t.labels > 0
    assert np.all((t.parts > 0) == inside)
    assert not np.any(t.canal & inside)
    for lab in t.vertebrae:
        m = t.labels == lab
        for part in (PART_BODY, PART_PEDICLE_LEFT, PART_PEDICLE_RIGHT, PART_ARCH):
            assert np.any(m & (t.parts == part)), (lab, part)
    # one canal, continuous from the first slice to the last
    lab, n = ndimage.label(t.canal)
    assert n == 1
    k_has = t.canal.any(axis=(0, 1))
    assert k_has.all()
    # body centres inside their bodies; canal just behind the posterior wall
    for va in t.sorted_vertebrae():
        assert sample(ph, va.body_center_lps, t.labels)[0] == va.label
        assert sample(ph, va.body_center_lps, t.parts)[0] == PART_BODY
        behind = va.posterior_wall_lps - 3.0 * va.ap_axis_lps
        assert sample(ph, behind, t.canal.astype(np.uint8))[0] == 1


def test_lumbar_canal_and_body_sizes():
    ph = lumbar_phantom()
    t = ph.truth
    for va in t.sorted_vertebrae():
        depth = chord_mm(ph, va.body_center_lps, va.ap_axis_lps, t.body_mask(va.label), half=30)
        assert depth == pytest.approx(va.body_depth_mm, abs=1.2)
        mid_canal = va.posterior_wall_lps - 8.0 * va.ap_axis_lps
        canal_w = chord_mm(ph, mid_canal, va.left_lps, t.canal, half=20)
        assert 20.0 <= canal_w <= 27.5, (va.name, canal_w)
        for key, frac in (("anterior", 0.15), ("middle", 0.5), ("posterior", 0.85)):
            p = va.anterior_wall_lps - frac * va.body_depth_mm * va.ap_axis_lps
            n = va.superior_endplate.normal_lps
            h = chord_mm(ph, p, n, t.body_mask(va.label), half=25)
            assert h == pytest.approx(va.body_heights_mm[key], abs=1.6), (va.name, key, h)


def test_hu_of_tissues_look_like_ct():
    ph = lumbar_phantom()
    v = ph.volume.voxels.astype(np.float32)
    t = ph.truth
    body = t.parts == PART_BODY
    core = ndimage.binary_erosion(body, iterations=3)
    assert 120 <= np.median(v[core]) <= 300
    shell = body & ~ndimage.binary_erosion(body, iterations=1)
    assert np.percentile(v[shell], 90) > 400
    arch = t.parts == PART_ARCH
    assert np.median(v[arch]) > 300
    canal_core = ndimage.binary_erosion(t.canal, iterations=2)
    assert -60 <= np.median(v[canal_core]) <= 40
    outside = ~ph.structures["body_outline"]
    assert np.median(v[outside]) < -980
    # noise: standard deviation in a flat region (muscle interior) close to the request
    flat = ndimage.binary_erosion((np.abs(v - 52) < 80) & ph.structures["body_outline"] & (t.labels == 0),
                                  iterations=4)
    hp = v - ndimage.uniform_filter(v, 5)
    assert 8.0 <= np.std(hp[flat]) * 1.25 <= 35.0
    # discs between bodies: soft-tissue density
    a, b = t.vertebra("L1"), t.vertebra("L2")
    mid = 0.5 * (a.inferior_endplate.point_lps + b.superior_endplate.point_lps)
    assert 40 <= sample(ph, mid, ph.volume.voxels)[0] <= 130


# ----------------------------------------------------------------------------- options
def test_lesion_defect_and_plana():
    ph = pathology_phantom()
    t = ph.truth
    l2, l3 = t.vertebra("L2"), t.vertebra("L3")
    lesion = ph.structures["lesion"]
    assert lesion.sum() > 500
    assert np.all(t.labels[lesion] == l2.label) and np.all(t.parts[lesion] == PART_BODY)
    v = ph.volume.voxels
    les_core = ndimage.binary_erosion(lesion, iterations=2)
    assert np.median(v[les_core]) < 90
    assert any("lesion" in f for f in l2.flags)
    # posterior wall: defect at L2, intact at L1
    assert l2.posterior_wall_intact is False and t.vertebra("L1").posterior_wall_intact is True
    for va, expect_low in ((l2, True), (t.vertebra("L1"), False)):
        ts = np.linspace(-1.0, 2.0, 13)
        prof = sample(ph, va.posterior_wall_lps[None] + ts[:, None] * va.ap_axis_lps, v)
        assert (prof.max() < 250) == expect_low, (va.name, prof)
    # plana
    assert l3.genant_grade == 3 and l3.height_ratio < 0.8
    assert l3.body_heights_mm["anterior"] < 0.5 * t.vertebra("L2").body_heights_mm["anterior"]
    assert any("plana" in f for f in l3.flags)
    h = chord_mm(ph, l3.body_center_lps, l3.superior_endplate.normal_lps, t.body_mask(l3.label), half=20)
    assert h == pytest.approx(l3.body_heights_mm["middle"], abs=1.6)


def test_narrow_pedicle():
    ph = thoracic_phantom()
    t8 = ph.truth.vertebra("T8")
    assert t8.pedicles["left"].width_mm == pytest.approx(NARROW_PEDICLE_MM)
    assert t8.pedicles["right"].width_mm == pytest.approx(6.3)
    va, p, a, u, w = pedicle_frame(ph, t8.label, "left")
    width = chord_mm(ph, p.isthmus_center_lps, u, bone_of(ph, t8.label) & (ph.truth.parts != PART_BODY))
    assert width <= NARROW_PEDICLE_MM + 1.01
    assert any("narrow left pedicle" in f for f in t8.flags)
    ph2 = make_phantom(("T8",), narrow_pedicle_level=("T8", "right", 2.5), spacing_mm=2.0, noise_hu=0)
    assert ph2.truth.vertebra("T8").pedicles["right"].width_mm == 2.5
    assert ph2.truth.vertebra("T8").pedicles["left"].width_mm == pytest.approx(6.3)


def test_thoracic_ribs_and_lungs():
    ph = thoracic_phantom()
    assert ph.structures["lungs"].sum() > 10000
    assert np.median(ph.volume.voxels[ndimage.binary_erosion(ph.structures["lungs"], iterations=3)]) < -700
    ang = [np.degrees(np.arcsin(abs(v.pedicles["right"].axis_lps[0]))) for v in ph.truth.sorted_vertebrae()]
    assert all(a < 10 for a in ang)


def test_lowest_rib_bearing_vertebra_is_t12():
    ph = thoracolumbar_phantom()
    ribs = ph.structures["ribs"]
    lab, n = ndimage.label(ribs)
    assert n == 4  # T11 and T12, both sides
    near = ndimage.binary_dilation(ribs, iterations=3)
    touched = {int(x) for x in np.unique(ph.truth.labels[near]) if x}
    assert max(touched) == level_label("T12")
    assert level_label("L1") not in touched


def test_cervical_structures():
    ph = cervical_phantom()
    s = ph.structures
    for k in ("trachea", "oesophagus", "carotid_left", "carotid_right", "jugular_left", "jugular_right"):
        assert s[k].sum() > 100, k
    v = ph.volume.voxels
    c5 = ph.truth.vertebra("C5")
    assert 13.0 <= c5.body_depth_mm <= 20.0

    def centroid(m):
        return ph.volume.to_lps(np.argwhere(m).mean(axis=0))

    tr, oe = centroid(s["trachea"]), centroid(s["oesophagus"])
    # trachea anterior to the oesophagus, anterior to the body
    assert tr[1] < oe[1] < c5.anterior_wall_lps[1]
    # carotid lateral to the trachea, jugular lateral to the carotid, on each side
    for side, sgn in (("left", 1), ("right", -1)):
        ca, ju = centroid(s[f"carotid_{side}"]), centroid(s[f"jugular_{side}"])
        assert sgn * (ca[0] - tr[0]) > 12 and sgn * (ju[0] - ca[0]) > 3
        assert np.median(v[ndimage.binary_erosion(s[f"carotid_{side}"])]) > 150
    lumen = s["trachea"] & (v < -500)
    assert lumen.sum() > 0.4 * s["trachea"].sum()
    # steep medial angle of cervical pedicles
    ang = np.degrees(np.arcsin(abs(c5.pedicles["left"].axis_lps[0])))
    assert 30 < ang < 50


def test_patient_position_changes_axes_not_anatomy():
    hfp = lumbar_phantom(2.0, "HFP")
    hfs = lumbar_phantom(2.0, "HFS")
    assert hfp.volume.axis_codes == ("R", "A", "S") and hfs.volume.axis_codes == ("L", "P", "S")
    assert hfp.volume.meta["patient_position"] == "HFP" and hfs.volume.meta["patient_position"] == "HFS"
    # the couch lies behind the back of a supine patient (outside the body), off-view when prone
    table = hfs.structures["table"]
    assert "table" not in hfp.structures and not np.any(table & hfs.structures["body_outline"])
    back = hfs.volume.to_lps(np.argwhere(hfs.structures["body_outline"]))[:, 1].max()
    mid = hfs.volume.to_lps(np.argwhere(table))
    mid = mid[np.abs(mid[:, 0] - hfs.truth.vertebra("L2").body_center_lps[0]) < 15.0]
    assert mid[:, 1].min() >= back - 1.0
    for lab in hfp.truth.vertebrae:
        a, b = hfp.truth.vertebrae[lab], hfs.truth.vertebrae[lab]
        np.testing.assert_allclose(a.body_center_lps, b.body_center_lps)
        np.testing.assert_allclose(a.pedicles["left"].isthmus_center_lps, b.pedicles["left"].isthmus_center_lps)
    # the same LPS point has the same label in both
    pts = np.array([v.pedicles["right"].isthmus_center_lps for v in hfs.truth.sorted_vertebrae()])
    np.testing.assert_array_equal(sample(hfp, pts, hfp.truth.labels), sample(hfs, pts, hfs.truth.labels))


def test_rotation_rotates_the_truth():
    base, rot = lumbar_phantom(), rotated_phantom()
    from needleplan._phantom.build import rotation_matrix

    r = rotation_matrix(rot.params["rotation_deg"])
    for lab in base.truth.vertebrae:
        a, b = base.truth.vertebrae[lab], rot.truth.vertebrae[lab]
        np.testing.assert_allclose(r @ a.ap_axis_lps, b.ap_axis_lps, atol=1e-9)
        np.testing.assert_allclose(r @ a.pedicles["left"].axis_lps, b.pedicles["left"].axis_lps, atol=1e-9)
        assert a.pedicles["left"].width_mm == b.pedicles["left"].width_mm
    # bone volume is preserved within a few per cent
    assert (rot.truth.labels > 0).sum() == pytest.approx((base.truth.labels > 0).sum(), rel=0.03)


def test_anisotropic_spacing_and_shape():
    ph = coarse_phantom()
    np.testing.assert_allclose(ph.volume.spacing_mm, [2.0, 2.0, 3.0])
    ph2 = make_phantom(("L2",), spacing_mm=(2.0, 2.0, 2.0), shape=(64, 60, 30), noise_hu=0)
    assert ph2.volume.shape == (64, 60, 30) == ph2.truth.labels.shape


def test_reproducible_and_seeded():
    a = make_phantom(("L2",), spacing_mm=2.0, seed=5)
    b = make_phantom(("L2",), spacing_mm=2.0, seed=5)
    c = make_phantom(("L2",), spacing_mm=2.0, seed=6)
    assert np.array_equal(a.volume.voxels, b.volume.voxels)
    assert a.volume.series_uid == b.volume.series_uid
    assert not np.array_equal(a.volume.voxels, c.volume.voxels)
    assert np.array_equal(a.truth.labels, c.truth.labels)


@pytest.mark.parametrize("kw, match", [
    (dict(levels=("L1", "L3")), "contiguous"),
    (dict(levels=("X9",)), "levels"),
    (dict(levels=("L5", "L6")), "not supported"),
    (dict(lesion_level="T4"), "lesion_level"),
    (dict(spacing_mm=(0, 1, 1)), "spacing_mm"),
    (dict(patient_position="XYZ"), "patient_position"),
    (dict(narrow_pedicle_level=("L1", "middle")), "side"),
    (dict(scoliosis_cobb_deg=20.0), "three levels"),
    (dict(levels=("L1", "L2", "L3"), scoliosis_cobb_deg=75.0), "scoliosis_cobb_deg"),
    (dict(levels=("L1", "L2", "L3"), scoliosis_cobb_deg="steep"), "scoliosis_cobb_deg"),
])
def test_bad_options_raise_input_error(kw, match):
    kw = {"levels": ("L1", "L2"), **kw}
    with pytest.raises(InputError, match=match):
        make_phantom(kw.pop("levels"), **kw)


# ----------------------------------------------------------------------------- DICOM
def _read_series(folder):
    dss = [pydicom.dcmread(p) for p in sorted(Path(folder).glob("*.dcm"))]
    dss.sort(key=lambda d: float(np.dot(d.ImagePositionPatient,
                                        np.cross(d.ImageOrientationPatient[:3], d.ImageOrientationPatient[3:]))))
    arr = np.stack([d.pixel_array.T * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in dss], axis=2)
    return dss, arr


@pytest.mark.parametrize("syntax", ["RLELossless", "ExplicitVRLittleEndian"])
def test_dicom_round_trip(tmp_path, syntax):
    ph = coarse_phantom()
    files = write_dicom_series(ph.volume, tmp_path, transfer_syntax=syntax, uid_seed="t1")
    assert len(files) == ph.volume.shape[2]
    dss, arr = _read_series(tmp_path)
    np.testing.assert_array_equal(arr, ph.volume.voxels)
    d0 = dss[0]
    assert d0.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2" and d0.Modality == "CT"
    assert d0.file_meta.TransferSyntaxUID.name.replace(" ", "").lower().startswith(syntax[:3].lower())
    assert str(d0.PatientName) == "PHANTOM^SPINE" and d0.PatientID and d0.PatientBirthDate
    assert d0.PatientPosition == "HFS"
    assert len({d.SOPInstanceUID for d in dss}) == len(dss)
    assert len({d.SeriesInstanceUID for d in dss}) == 1
    np.testing.assert_allclose([float(x) for x in d0.PixelSpacing], [2.0, 2.0])
    np.testing.assert_allclose(np.asarray(d0.ImagePositionPatient, float), ph.volume.origin_lps, atol=1e-5)
    # deterministic: a second write gives identical bytes
    again = write_dicom_series(ph.volume, tmp_path / "again", transfer_syntax=syntax, uid_seed="t1")
    assert [f.read_bytes() for f in files] == [f.read_bytes() for f in again]


def test_dicom_prone_geometry_through_simpleitk(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    ph = lumbar_phantom(2.0, "HFP")
    write_dicom_series(ph.volume, tmp_path)
    r = sitk.ImageSeriesReader()
    r.SetFileNames(r.GetGDCMSeriesFileNames(str(tmp_path)))
    img = r.Execute()
    aff = np.eye(4)
    aff[:3, :3] = np.array(img.GetDirection()).reshape(3, 3) @ np.diag(img.GetSpacing())
    aff[:3, 3] = img.GetOrigin()
    np.testing.assert_allclose(aff, ph.volume.ijk_to_lps, atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img).transpose(2, 1, 0), ph.volume.voxels)


def test_dicom_loads_through_needleplan_io(tmp_path):
    io = pytest.importorskip("needleplan.io")
    if not hasattr(io, "load_ct"):
        pytest.skip("needleplan.io.load_ct not there yet")
    ph = lumbar_phantom(2.0, "HFP")
    write_dicom_series(ph.volume, tmp_path)
    vol = io.load_ct(tmp_path)
    np.testing.assert_allclose(vol.ijk_to_lps, ph.volume.ijk_to_lps, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(vol.voxels), ph.volume.voxels)
    assert vol.patient_position == "HFP"


# ----------------------------------------------------------------------------- sample_data
def _tool():
    spec = importlib.util.spec_from_file_location("make_sample_data", REPO / "tools" / "make_sample_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_sample_data_regenerates_bit_for_bit(tmp_path):
    sample = REPO / "sample_data"
    if not (sample / "dicom").is_dir():
        pytest.skip("sample_data/ not generated yet")
    tool = _tool()
    tool.make_sample_data(tmp_path)
    want, got = tool.digest(sample), tool.digest(tmp_path)
    assert got == want
    size = sum(p.stat().st_size for p in sample.rglob("*") if p.is_file())
    assert size <= 8e6
    doc = json.loads((sample / "truth" / "anatomy.json").read_text())
    assert [v["level"] for v in doc["vertebrae"]] == ["T11", "T12", "L1", "L2", "L3"]
    ds = pydicom.dcmread(next((sample / "dicom").glob("*.dcm")))
    assert ds.PatientPosition == "HFP"
    assert hashlib.sha256(b"").hexdigest()  # digest helper sanity


def test_sacrum_option():
    ph = make_phantom(("L5", "S"), spacing_mm=2.0, noise_hu=0.0)
    t = ph.truth
    assert [v.name for v in t.sorted_vertebrae()] == ["L5", "S"]
    s1 = t.vertebra("S")
    assert np.sum(t.labels == 26) > np.sum(t.labels == 24)  # sacrum with alae is bigger than L5
    assert ph.structures["pelvis"].sum() > 1000 and not np.any(ph.structures["pelvis"] & (t.labels > 0))
    # the sacral promontory tilts forward much more than L5
    assert s1.superior_endplate.normal_lps[1] < t.vertebra("L5").superior_endplate.normal_lps[1] - 0.2
    assert sample(ph, s1.body_center_lps, t.parts)[0] == PART_BODY
    with pytest.raises(InputError, match="contiguous"):
        make_phantom(("L4", "S"))


def test_params_regenerate_the_phantom():
    a = make_phantom(("T12", "L1"), spacing_mm=2.0, lesion_level="L1", narrow_pedicle_level=("T12", "left"),
                     rotation_deg=(0.0, 0.0, 5.0))
    b = make_phantom(**a.params)
    assert np.array_equal(a.volume.voxels, b.volume.voxels)
    assert a.truth.to_dict() == b.truth.to_dict()


def test_dicom_oblique_and_signed_values(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    from needleplan.io.volume import Volume

    rng = np.random.default_rng(1)
    vox = rng.integers(-2000, 3000, size=(12, 10, 6)).astype(np.int16)
    c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
    aff = np.eye(4)
    aff[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag([0.7, 0.8, 2.5])
    aff[:3, 3] = [-50.5, 20.25, 100.0]
    vol = Volume(vox, aff, meta={"patient_position": "FFS"}, phi={"PatientName": "TEST^ONE"})
    write_dicom_series(vol, tmp_path, transfer_syntax="RLELossless")
    r = sitk.ImageSeriesReader()
    r.SetFileNames(r.GetGDCMSeriesFileNames(str(tmp_path)))
    img = r.Execute()
    got = np.eye(4)
    got[:3, :3] = np.array(img.GetDirection()).reshape(3, 3) @ np.diag(img.GetSpacing())
    got[:3, 3] = img.GetOrigin()
    np.testing.assert_allclose(got, aff, atol=1e-5)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img).transpose(2, 1, 0), vox)
    ds = pydicom.dcmread(sorted(tmp_path.glob("*.dcm"))[0])
    assert ds.PixelRepresentation == 1 and str(ds.PatientName) == "TEST^ONE"


# ----------------------------------------------------------------------------- C1 / C2
def _lps_of(ph, mask):
    return ph.volume.to_lps(np.argwhere(mask).astype(float))


def test_atlas_is_a_ring_without_body_and_axis_has_a_dens():
    ph = upper_cervical_phantom()
    lab, parts = ph.truth.labels, ph.truth.parts
    assert sorted(set(np.unique(lab)) - {0}) == [1, 2, 3, 4]
    # C1: no body part, no pedicles; everything is arch (ring, lateral masses, processes)
    assert set(np.unique(parts[lab == 1])) == {PART_ARCH}
    assert ph.truth.vertebra("C1").pedicles == {}
    c1 = _lps_of(ph, lab == 1)
    width, depth = np.ptp(c1[:, 0]), np.ptp(c1[:, 1])
    assert 70.0 <= width <= 85.0 and 40.0 <= depth <= 50.0  # adult atlas
    # C2's body part holds the dens, which rises 12-18 mm above its body into C1's ring
    c2 = ph.truth.vertebra("C2")
    body2 = _lps_of(ph, (lab == 2) & (parts == PART_BODY))
    rise = c2.superior_endplate.signed_distance_mm(body2).max()
    assert 12.0 <= rise <= 18.0
    dens = body2[c2.superior_endplate.signed_distance_mm(body2) > 4.0]
    assert dens[:, 2].max() > c1[:, 2].min() + 8.0
    # in the axial slice through the dens tip region the atlas surrounds it: anterior arch in
    # front (atlanto-dental interval 1.5-3.5 mm), lateral masses on both sides, arch behind
    k = int(round(np.median(np.argwhere(lab == 1)[:, 2])))
    sl, sl1 = lab[:, :, k] == 2, lab[:, :, k] == 1
    assert sl.sum() > 30
    d = ndimage.distance_transform_edt(~sl, sampling=ph.volume.spacing_mm[:2])
    gap = d[sl1].min()
    assert 1.5 <= gap <= 3.5
    ij = np.argwhere(sl).mean(0)
    ring = ph.volume.to_lps(np.c_[np.argwhere(sl1), np.full(sl1.sum(), k)].astype(float))
    cen = ph.volume.to_lps(np.r_[ij, k])
    rel = ring - cen
    assert (rel[:, 1] < -3).any() and (rel[:, 1] > 15).any()  # anterior and posterior arch
    assert (rel[:, 0] > 10).any() and (rel[:, 0] < -10).any()  # both lateral masses


def test_upper_cervical_foramina_hold_the_vertebral_arteries():
    ph = upper_cervical_phantom()
    art = ph.structures["vertebral_arteries"]
    lab = ph.truth.labels
    assert not (art & (lab > 0)).any()
    for level in (1, 2):
        # both arteries pass through the level's transverse foramina: enclosed by its bone
        enclosed = 0
        for k in np.unique(np.argwhere(lab == level)[:, 2]):
            a = art[:, :, k]
            if ndimage.label(a)[1] != 2:
                continue
            bone = lab[:, :, k] == level
            holes = ndimage.binary_fill_holes(bone) & ~bone
            enclosed += int((holes & a).sum() >= 0.8 * a.sum())
        assert enclosed * ph.volume.spacing_mm[2] >= 5.0
    # the canal runs through C1's ring behind the dens, and no bone lies in it
    assert not (ph.truth.canal & (lab > 0)).any()
    k = int(round(np.median(np.argwhere(lab == 1)[:, 2])))
    assert ph.truth.canal[:, :, k].sum() * np.prod(ph.volume.spacing_mm[:2]) > 250.0


# ----------------------------------------------------------------------------- scoliosis
def unit_mean(a, b):
    v = np.asarray(a, float) + np.asarray(b, float)
    return v / np.linalg.norm(v)


def _coronal_deg(n) -> float:
    """Tilt of a normal in the coronal plane, degrees (positive: toward patient left)."""
    return float(np.degrees(np.arctan2(n[0], n[2])))


def test_scoliosis_curve_has_the_cobb_angle():
    ph = scoliotic_phantom()
    t = ph.truth
    verts = t.sorted_vertebrae()
    assert [v.name for v in verts] == ["T11", "T12", "L1", "L2", "L3"] and ph.params["scoliosis_cobb_deg"] == 30.0
    cobb = _coronal_deg(verts[0].superior_endplate.normal_lps) - _coronal_deg(verts[-1].inferior_endplate.normal_lps)
    assert cobb == pytest.approx(30.0, abs=2.0)
    # a C curve: the coronal tilt falls steadily from the top to the bottom, the apex (L1) is level
    tilts = [_coronal_deg(v.superior_endplate.normal_lps) for v in verts]
    assert all(a > b + 5.0 for a, b in zip(tilts, tilts[1:]))
    assert abs(tilts[2]) < 1.0
    # convex to the right: the apex lies right (-x) of the line joining the end vertebrae
    ends = 0.5 * (verts[0].body_center_lps + verts[-1].body_center_lps)
    assert verts[2].body_center_lps[0] < ends[0] - 5.0
    # axial rotation toward the convexity: the body's front turns right, most at the apex
    rot = [np.degrees(np.arctan2(v.ap_axis_lps[0], -v.ap_axis_lps[1])) for v in verts]
    assert all(r < -1.0 for r in rot)
    assert min(rot) == rot[2] and rot[2] == pytest.approx(-10.0, abs=1.0)


def test_scoliosis_truth_follows_each_vertebra():
    ph = scoliotic_phantom()
    t = ph.truth
    for va in t.sorted_vertebrae():
        assert sample(ph, va.body_center_lps, t.labels)[0] == va.label
        assert sample(ph, va.body_center_lps, t.parts)[0] == PART_BODY
        for side, p in va.pedicles.items():
            assert sample(ph, p.isthmus_center_lps, t.parts)[0] == PART_OF[side], (va.name, side)
            assert sample(ph, p.isthmus_center_lps, t.labels)[0] == va.label
            # the drawn width across the pedicle axis is the truth width
            _, _, a, u, _ = pedicle_frame(ph, va.label, side)
            width = chord_mm(ph, p.isthmus_center_lps, u, t.parts == PART_OF[side])
            assert width == pytest.approx(p.width_mm, abs=1.2), (va.name, side)
        # the endplates bound the body along its superior axis
        h = chord_mm(ph, va.body_center_lps, va.superior_endplate.normal_lps, t.body_mask(va.label), half=20)
        assert h == pytest.approx(va.body_heights_mm["middle"], abs=1.6)
    # the T12 ribs are there and touch T12, not L1
    near = ndimage.binary_dilation(ph.structures["ribs"], iterations=3)
    touched = {int(x) for x in np.unique(t.labels[near]) if x}
    assert max(touched) == level_label("T12")
    # the discs between the tilted bodies are drawn: soft tissue between each pair of bodies
    for up, lo in zip(t.sorted_vertebrae(), t.sorted_vertebrae()[1:]):
        mid = 0.5 * (up.inferior_endplate.point_lps + lo.superior_endplate.point_lps)
        left, ant = unit_mean(up.left_lps, lo.left_lps), unit_mean(up.ap_axis_lps, lo.ap_axis_lps)
        for off in (-14.0, 0.0, 14.0):  # the middle and both sides (the open and the closed side)
            pts = mid + off * left + np.linspace(-12.0, 12.0, 13)[:, None] * ant
            assert 25 < np.median(sample(ph, pts, ph.volume.voxels)) < 140, (up.name, lo.name, off)


def test_scoliosis_zero_is_the_straight_spine():
    a = make_phantom(("L1", "L2", "L3"), spacing_mm=2.0, noise_hu=0.0)
    b = make_phantom(("L1", "L2", "L3"), spacing_mm=2.0, noise_hu=0.0, scoliosis_cobb_deg=0.0)
    assert np.array_equal(a.volume.voxels, b.volume.voxels) and a.volume.series_uid == b.volume.series_uid
    assert "scoliosis_cobb_deg" not in a.params
    c = make_phantom(("L1", "L2", "L3"), spacing_mm=2.0, noise_hu=0.0, scoliosis_cobb_deg=-20.0)
    assert c.volume.series_uid != a.volume.series_uid
    again = make_phantom(**c.params)
    assert np.array_equal(c.volume.voxels, again.volume.voxels)
    # negative: convex to the left, the apex (L2) lies left of the ends and turns its front left
    v = c.truth.sorted_vertebrae()
    assert v[1].body_center_lps[0] > 0.5 * (v[0].body_center_lps[0] + v[2].body_center_lps[0]) + 2.0
    assert v[1].ap_axis_lps[0] > 0.05


def test_scoliosis_keeps_the_sacrum_level():
    ph = make_phantom(("L3", "L4", "L5", "S"), spacing_mm=2.0, noise_hu=0.0, scoliosis_cobb_deg=25.0)
    t = ph.truth
    assert _coronal_deg(t.vertebra("S").superior_endplate.normal_lps) == pytest.approx(0.0, abs=0.5)
    assert _coronal_deg(t.vertebra("L5").inferior_endplate.normal_lps) == pytest.approx(-12.5, abs=1.0)
    assert _coronal_deg(t.vertebra("L3").superior_endplate.normal_lps) == pytest.approx(12.5, abs=1.0)
    assert ph.structures["pelvis"].sum() > 1000 and not np.any(ph.structures["pelvis"] & (t.labels > 0))
    with pytest.raises(InputError, match="three levels above the sacrum"):
        make_phantom(("L4", "L5", "S"), scoliosis_cobb_deg=20.0)
