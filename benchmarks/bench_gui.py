"""Interactive speed of the viewer: one drag update of a needle, and its parts.

Goal (issue 5): <= 100 ms per update while dragging an entry/target, for a typical scan.
One update = re-check the trajectory (planner.evaluate_trajectory) + two preview DRRs
(bull's-eye, progression; 128 px, CT block-averaged 4x) + one event-loop pass that repaints
the slice views, the fluoroscopy views and the plan panel.

Run under a (virtual) display::

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/bench_gui.py

Prints median / 90th percentile in ms for the sample study (whole loop through the main
window) and for the real chest CT lidc0314 (512 x 512 x 275; DRR and slice parts).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("NEEDLEPLAN_NO_CONFIRM", "1")

import numpy as np  # noqa: E402
import PyQt6  # noqa: E402,F401
from PyQt6.QtCore import QSettings  # noqa: E402


def stats(ms: list[float]) -> str:
    ms = sorted(ms)
    p90 = ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))]
    return f"median {statistics.median(ms):6.1f} ms   p90 {p90:6.1f} ms   (n={len(ms)})"


def timeit(fn, n=15, warm=2) -> list[float]:
    for _ in range(warm):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def bench_sample(app, tmp):
    from needleplan.planner import PlanRequest, plan
    from needleplan.ui.fluoro_view import prepare_fluoro
    from needleplan.ui.main_window import MainWindow
    from tests.ui.sample import sample_study

    vol, anatomy = sample_study()
    p = plan(vol, anatomy, PlanRequest())
    prepare_fluoro(vol)
    win = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    win.resize(1600, 1000)
    win.show()
    win.session.set_study(vol, anatomy, p)
    win.session.select(2)
    app.processEvents()
    t = win.session.trajectories[2]
    win.set_crosshair(t.target_lps)
    app.processEvents()
    step = [0]

    def one_update():
        k = step[0] = step[0] + 1
        off = np.array([np.sin(k / 3.0) * 3, np.cos(k / 3.0) * 3, 0.0])
        win._handle_dragged(2, "target", t.target_lps + off, False)
        win._apply_pending_move()
        app.processEvents()  # paint everything that changed, once, as the event loop does

    loop = timeit(one_update, n=30)
    win._handle_dragged(2, "target", t.target_lps, True)
    while not win.fluoro_idle:
        app.processEvents()
    ev = timeit(lambda: win.session.evaluate(win.session.trajectories[2]), n=30)
    def full_views():  # rendered in a worker thread; wait for the result
        win.render_fluoro(preview=False)
        while not win.fluoro_idle:
            app.processEvents()
            time.sleep(0.002)

    full = timeit(full_views, n=5, warm=1)
    print(f"sample {vol.shape} {', '.join(f'{s:.2f}' for s in vol.spacing_mm)} mm")
    print(f"  drag update (check + 2 preview DRRs + repaint) {stats(loop)}")
    print(f"  re-check only (evaluate_trajectory)            {stats(ev)}")
    print(f"  resting views (2 x 320 px DRR, all needles)    {stats(full)}")
    t0 = time.perf_counter()  # File > Export plan folder… (worker thread; the GUI keeps painting)
    win.export_plan(tmp / "export", anonymize=True)
    while win.busy:
        app.processEvents()
        time.sleep(0.002)
    n = len(win.last_export or {})
    print(f"  export plan folder ({len(p.trajectories)} trajectories, {n} files, anonymised) "
          f"{time.perf_counter() - t0:.2f} s{'' if win.last_error is None else ' FAILED: ' + win.last_error}")
    win.session.modified = False
    win.close()


def bench_real(app):
    from needleplan.io import load_ct
    from needleplan.planner.model import Trajectory
    from needleplan.ui.fluoro_view import make_view, prepare_fluoro, render_image
    from needleplan.ui.slice_view import SliceView
    from tests.conftest import shared_data_dir

    path = shared_data_dir() / "lidc0314-chest-1mm" / "dicom"
    if not path.is_dir():
        print("lidc0314-chest-1mm missing: skipped")
        return
    t0 = time.perf_counter()
    vol = load_ct(path)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    prepare_fluoro(vol)
    t_prep = time.perf_counter() - t0
    lo, hi = vol.bounds_lps()
    c = (lo + hi) / 2
    target = c + np.array([8.0, 20.0, 0.0])
    entry = target + np.array([35.0, 90.0, 10.0])
    traj = Trajectory("T6", "left", "transpedicular", entry, (entry + target) / 2, target)
    pp = vol.meta.get("patient_position") or "HFP"
    k = [0]

    def previews():
        k[0] += 1
        e = entry + np.array([np.sin(k[0]) * 2, 0, np.cos(k[0]) * 2])
        tt = Trajectory("T6", "left", "transpedicular", e, (e + target) / 2, target)
        for kind in ("bullseye", "progression"):
            render_image(vol, make_view(kind, tt, pp, pixels=128), preview=True,
                         needles=[(tt.skin_entry_lps, tt.target_lps, 3.05)])

    prev = timeit(previews, n=15)
    full = timeit(lambda: render_image(vol, make_view("bullseye", traj, pp, pixels=320),
                                       needles=[(entry, target, 3.05)]), n=3, warm=1)
    views = {o: SliceView(o) for o in ("axial", "sagittal", "coronal")}
    for v in views.values():
        v.resize(600, 500)
        v.set_volume(vol)
        v.set_trajectories([traj], 0)
        v.show()
    app.processEvents()

    def paint_all():
        for v in views.values():
            v.set_crosshair_lps(target + np.random.default_rng().normal(0, 5, 3))
            v.repaint()

    paint = timeit(paint_all, n=15)
    print(f"lidc0314 {vol.shape} {', '.join(f'{s:.2f}' for s in vol.spacing_mm)} mm "
          f"(load {t_load:.1f} s, fluoro prepare {t_prep:.1f} s)")
    print(f"  2 preview DRRs (128 px, preview)      {stats(prev)}")
    print(f"  1 resting DRR (320 px, 2 mm)       {stats(full)}")
    print(f"  3 slice views new slice + repaint  {stats(paint)}")
    print(f"  => drag update estimate            ~{statistics.median(prev) + statistics.median(paint) + 5:.0f} ms "
          "(+ re-check, a few ms)")
    for v in views.values():
        v.close()


def main() -> int:
    import tempfile

    from needleplan.ui.app import get_app

    app = get_app()
    tmp = Path(tempfile.mkdtemp(prefix="bench-gui-"))
    print(f"cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    bench_sample(app, tmp)
    bench_real(app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
