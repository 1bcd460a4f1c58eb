"""``needleplan render``: PNGs of every trajectory from a plan file (hand-made plan on a phantom)."""

import numpy as np
import pytest
from PIL import Image

from needleplan.cli import main
from needleplan.planner.model import Plan, Trajectory


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from needleplan.io import write_plan_json, write_volume
    from tests.phantoms import lumbar_phantom

    ph = lumbar_phantom()
    d = tmp_path_factory.mktemp("render")
    ct = write_volume(ph.volume, d / "ct.nii.gz")
    trajs = []
    for side in ("left", "right"):
        ped = ph.truth.vertebra("L2").pedicles[side]
        ax = ped.axis_lps / np.linalg.norm(ped.axis_lps)
        c = ped.isthmus_center_lps
        trajs.append(Trajectory(level="L2", side=side, approach="transpedicular", skin_entry_lps=c - 60 * ax,
                                bone_entry_lps=c - 12 * ax, target_lps=c + 30 * ax, gauge=11,
                                needle_diameter_mm=3.05, needle_length_mm=120.0))
    plan = Plan(trajectories=trajs, input={"patient_position": "HFP", "series_uid": ph.volume.series_uid})
    plan_path = write_plan_json(plan, d / "plan.json")
    return ct, plan_path, plan, d


def test_render_writes_labelled_views(study, capsys):
    ct, plan_path, plan, d = study
    out = d / "out"
    assert main(["render", str(ct), "--plan", str(plan_path), "--out", str(out), "--size", "128"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["L2_left_bullseye.png", "L2_left_progression.png", "L2_right_bullseye.png",
                     "L2_right_progression.png", "overview_ap.png", "overview_lateral.png"]
    assert not any(n.startswith(".") for n in names)  # no temporary files left
    printed = capsys.readouterr().out.split()
    assert len(printed) == 6
    for name in names:
        img = np.asarray(Image.open(out / name))
        assert img.shape == (512, 512, 3)  # 128 px upscaled x4 for legible text
        assert img.std() > 20  # not blank
    bull = np.asarray(Image.open(out / "L2_left_bullseye.png")).astype(int)
    # the needle dot (dark) at the centre, the centre of the amber ring around it
    c = bull[254:258, 254:258]
    assert c.max() < 60
    # the angle text is drawn: white pixels in the lower right corner
    assert (bull[420:, 250:] > 245).all(axis=-1).sum() > 200


def test_render_bad_plan_is_a_one_line_error(study, tmp_path, capsys):
    ct, _, _, _ = study
    bad = tmp_path / "plan.json"
    bad.write_text("{not json")
    assert main(["render", str(ct), "--plan", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "plan.json" in err and len(err.splitlines()) == 1
    assert main(["render", str(ct), "--plan", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_annotate_preview_is_upscaled_and_save_png_is_atomic(tmp_path):
    from needleplan.errors import OutputError
    from needleplan.geometry.annotate import annotate, save_png
    from needleplan.geometry.drr import render_preview
    from needleplan.geometry.views import view_for_angles
    from tests.geometry.test_drr import CENTRE, GRIDS, _ball_volume

    vol = _ball_volume(*GRIDS["LPS-iso"])
    drr = render_preview(vol, view_for_angles(CENTRE, -20, 10, "HFP", label="preview"), size=128)
    rgb = annotate(drr)
    assert rgb.shape == (512, 512, 3) and rgb.dtype == np.uint8
    assert (rgb[230:280, :60] > 245).all(axis=-1).any() and (rgb[230:280, -60:] > 245).all(axis=-1).any()
    path = save_png(rgb, tmp_path / "x.png")
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
    assert np.array_equal(np.asarray(Image.open(path)), rgb)
    with pytest.raises(OutputError, match="does not exist"):
        save_png(rgb, tmp_path / "missing" / "x.png")


# ----------------------------------------------------------------------------- one implementation
def _png(path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.fixture(scope="module")
def supine_case():
    """A supine (HFS) CT and a transpedicular needle going straight down, hub 10° cranial."""
    import dataclasses

    from needleplan.planner.session import geometric_update
    from tests.phantoms import lumbar_phantom

    ph = lumbar_phantom()
    vol = dataclasses.replace(ph.volume, meta={**ph.volume.meta, "patient_position": "HFS"})
    target = np.asarray(ph.truth.vertebra("L2").body_center_lps, float)
    back = np.array([0.0, np.cos(np.radians(10)), np.sin(np.radians(10))])  # tip -> hub: posterior, cranial
    traj = Trajectory(level="L2", side="left", approach="transpedicular", skin_entry_lps=target + 90 * back,
                      bone_entry_lps=target + 18 * back, target_lps=target, gauge=11, needle_diameter_mm=3.05,
                      needle_length_mm=120.0)
    return vol, geometric_update(traj, patient_position="HFS")


def test_supine_scan_views_are_labelled_for_the_prone_procedure(supine_case, tmp_path):
    import dataclasses
    import subprocess

    from needleplan.geometry.fluoro import render_trajectory
    from needleplan.report._figures import carm_angles
    from needleplan.report.exports import _describe, export_views
    from needleplan.report.pdf import write_report_pdf

    vol, traj = supine_case
    assert traj.carm["patient_position"] == "HFP" and traj.procedure_position("HFS") == "HFP"
    carm_be = (traj.carm["bullseye"]["lao_deg"], traj.carm["bullseye"]["cran_deg"])
    assert carm_be == pytest.approx((0.0, 10.0), abs=0.05)
    files = export_views(Plan(trajectories=[traj]), vol, tmp_path, pixels=96)  # position from the volume: HFS
    ref = render_trajectory(vol, traj, "HFP", size=96, extra_lines=_describe(traj))
    view = ref["bullseye"].view
    assert view.patient_position == "HFP" and view.angles_text == "LAO 0°  CRAN 10°"
    assert view.angles_deg == pytest.approx(carm_be, abs=0.05)
    prog = ref["progression"].view.angles_deg
    assert prog == pytest.approx((traj.carm["progression"]["lao_deg"], traj.carm["progression"]["cran_deg"]), abs=0.05)
    png = _png(files["L2_left_bullseye.png"])
    assert np.array_equal(png, ref["bullseye"].rgb)  # the PNG carries exactly the HFP labels
    scan = render_trajectory(vol, traj, "HFS", size=96, extra_lines=_describe(traj))["bullseye"]
    assert scan.view.angles_text.startswith("LAO 180°") and not np.array_equal(png, scan.rgb)
    # the report: from traj.carm, and the same numbers when it has to compute them
    for t in (traj, dataclasses.replace(traj, carm={})):
        ang = carm_angles(t, "HFS")
        assert ang["bullseye"] == pytest.approx(carm_be, abs=0.05) and ang["progression"] == pytest.approx(prog, abs=0.05)
    pdf = write_report_pdf(Plan(trajectories=[traj], input={"patient_position": "HFS"}), vol, None,
                           tmp_path / "plan.pdf")
    text = " ".join(subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    assert "Bull's-eye C-arm LAO 0° CRAN 10°" in text and "HFP (CT scanned HFS)" in text
    assert "LAO 180" not in text
    # the GUI builds the same view
    pytest.importorskip("PyQt6.QtWidgets")
    from needleplan.ui.fluoro_view import make_view

    gui = make_view("bullseye", traj, "HFS", pixels=96)
    assert gui.patient_position == "HFP" and gui.angles_deg == pytest.approx(carm_be, abs=0.05)
    assert np.allclose(gui.isocenter_lps, view.isocenter_lps) and np.allclose(gui.up_lps, view.up_lps)


def test_command_export_and_report_pictures_come_from_one_renderer(study, tmp_path, monkeypatch):
    from needleplan.geometry import fluoro
    from needleplan.io import load_ct, read_plan_json
    from needleplan.report._figures import fluoro_images
    from needleplan.report.exports import export_views

    ct, plan_path, _, d = study
    vol = load_ct(ct)
    plan = Plan.from_dict(read_plan_json(plan_path))  # what the command reads (rounded coordinates)
    calls = []
    real = fluoro.render_trajectory

    def spy(volume, traj, pp, **kw):
        calls.append((traj.name, pp, kw.get("size"), kw.get("annotated", True)))
        return real(volume, traj, pp, **kw)

    monkeypatch.setattr(fluoro, "render_trajectory", spy)
    assert main(["render", str(ct), "--plan", str(plan_path), "--out", str(tmp_path / "cmd"), "--size", "96"]) == 0
    files = export_views(plan, vol, tmp_path / "exp", pixels=96, overviews=True)
    fl = fluoro_images(vol, plan.trajectories[0], "HFP", pixels=96)
    assert calls == [("L2 left", "HFP", 96, True), ("L2 right", "HFP", 96, True)] * 2 + [("L2 left", "HFP", 96, False)]
    assert sorted(files) == sorted(p.name for p in (tmp_path / "cmd").iterdir())
    for name, path in files.items():
        assert np.array_equal(_png(tmp_path / "cmd" / name), _png(path)), name
    # the PDF's pictures: the same DRR, with the needle outlined instead of burnt-in text
    ref = real(vol, plan.trajectories[0], "HFP", size=96, annotated=False)
    for kind in ("bullseye", "progression"):
        rgb = fl[kind][0]
        grey = (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])
        assert grey.mean() > 0.95 and rgb.shape == (96, 96, 3)
        assert np.array_equal(rgb[grey], ref[kind].rgb[grey])
        assert np.array_equal(ref[kind].rgb[..., 0], ref[kind].drr.display)
