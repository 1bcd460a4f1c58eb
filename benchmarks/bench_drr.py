"""DRR speed: needleplan vs ``plastimatch drr`` on the same scan and geometry, same run.

    python benchmarks/bench_drr.py [--size 512] [--repeat 3] [--data ../shared/data]

Scan: lidc0314-chest-1mm (512 x 512 x 275, 0.78 x 0.78 x 1 mm).  Geometry: SAD 800 mm,
SID 1200 mm, 300 mm detector, AP and an oblique (LAO 30 / CRAN 15) view through the
volume centre.  Timed:

* plastimatch: the whole ``plastimatch drr`` process (reads an MHA written beforehand,
  converts HU, ray-traces with its default algorithm on all cores, writes a PFM);
* needleplan cold: ``render_drr`` on a loaded Volume including building the cached
  attenuation volume (HU -> mu, crop) -- what the first view of a study costs;
* needleplan warm: ``render_drr`` with the attenuation volume cached (every later view);
* preview: ``render_preview`` (128 x 128, ~3 mm voxels) updates per second while the
  C-arm angles change, as when following the mouse.

The ratio printed is needleplan / plastimatch (goal <= 1.0).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _data_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("NEEDLEPLAN_SHARED")
    if env:
        p = Path(env)
        return p / "data" if (p / "data").is_dir() else p
    return REPO.parent / "shared" / "data"


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", default=None, help="shared data folder (default ../shared/data)")
    args = ap.parse_args(argv)

    from needleplan.geometry import drr
    from needleplan.geometry.views import CArmGeometry, view_for_angles
    from needleplan.io import load_ct, write_volume
    from needleplan.io.volume import flip_to_lps

    src = _data_dir(args.data) / "lidc0314-chest-1mm" / "dicom"
    if not src.is_dir():
        print(f"missing scan: {src}", file=sys.stderr)
        return 2
    exe = shutil.which("plastimatch")
    t = time.perf_counter()
    vol = load_ct(src)
    print(f"scan: {src.parent.name} {vol.shape} spacing {np.round(vol.spacing_mm, 3).tolist()} mm "
          f"(loaded in {time.perf_counter() - t:.2f} s); cores: {os.cpu_count()}")
    lo, hi = vol.bounds_lps()
    iso = 0.5 * (lo + hi)
    geom = CArmGeometry(source_to_isocenter_mm=800, source_to_detector_mm=1200, detector_size_mm=300,
                        detector_pixels=args.size)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        mha = Path(tmp) / "ct.mha"
        if exe:
            write_volume(flip_to_lps(vol), mha)  # plastimatch ignores direction cosines
        for name, (lao, cran) in {"AP": (0.0, 0.0), "LAO30/CRAN15": (30.0, 15.0)}.items():
            view = view_for_angles(iso, lao, cran, vol.patient_position, geometry=geom)
            vec = lambda v: " ".join(f"{x:.6f}" for x in v)  # noqa: E731
            cmd = [exe or "plastimatch", "drr", "-t", "pfm", "-r", f"{args.size} {args.size}", "-z", "300 300",
                   "--sad", "800", "--sid", "1200", "-n", vec(-view.detector_lps), "--vup", vec(view.up_lps),
                   "-o", vec(iso), "-O", str(Path(tmp) / "pl"), str(mha)]
            # interleave the contenders so that a changing machine load hits both alike
            cold, warm, pl = [], [], []
            for _ in range(args.repeat):
                if exe:
                    pl.append(_timed(lambda: subprocess.run(cmd, check=True, capture_output=True)))
                drr.clear_cache()
                cold.append(_timed(lambda: drr.render_drr(vol, view)))
                warm.append(_timed(lambda: drr.render_drr(vol, view)))
            ours = drr.render_drr(vol, view)
            cold, warm = min(cold), min(warm)
            pl = min(pl) if pl else float("nan")
            corr = float("nan")
            if exe:
                with open(Path(tmp) / "pl0000.pfm", "rb") as f:
                    f.readline()
                    w, h = (int(x) for x in f.readline().split())
                    scale = float(f.readline())
                    theirs = np.frombuffer(f.read(), dtype="<f4" if scale < 0 else ">f4").reshape(h, w)[:, ::-1]
                a = (ours.image - ours.image.mean()) / ours.image.std()
                b = (theirs - theirs.mean()) / theirs.std()
                corr = float((a * b).mean())
            rows.append((name, pl, cold, warm, corr))

    print(f"\nbest of {args.repeat}, interleaved; load average now {os.getloadavg()[0]:.1f}")
    print(f"{args.size}x{args.size} DRR       plastimatch  needleplan cold  warm    ratio cold  ratio warm  corr")
    for name, pl, cold, warm, corr in rows:
        print(f"{name:16s}  {pl:9.2f} s  {cold:12.2f} s  {warm:5.2f} s  {cold / pl:9.2f}x  {warm / pl:9.2f}x  {corr:.4f}")
    if not exe:
        print("plastimatch not found (apt-get install plastimatch): no ratio")

    # interactive preview: the angles change every frame
    drr.prepare(vol, step_mm=3.0)
    n = 30
    t = time.perf_counter()
    for i in range(n):
        view = view_for_angles(iso, -30 + 2 * i, -10 + i, vol.patient_position, geometry=geom)
        drr.render_preview(vol, view, size=128)
    fps = n / (time.perf_counter() - t)
    print(f"\npreview 128x128 (~3 mm voxels): {fps:.1f} updates/s (goal >= 10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
