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
