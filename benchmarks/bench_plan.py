"""Time the planner after segmentation: every level, both pedicles, and a manual check.

Usage::

    python benchmarks/bench_plan.py            # phantoms + the shared chest CT when present
    python benchmarks/bench_plan.py --quick    # phantoms only

Prints, per case: levels, pedicles searched, wall and CPU seconds for the first plan
(distance maps built) and a second plan (maps cached), seconds per pedicle, and the
time of one manual-trajectory evaluation (what the GUI calls on every drag).
Target (issue 4): all levels of lidc0314-chest-1mm planned bilaterally in <= 2 s,
<= 0.1 s per pedicle; a comparable open-source planner takes 2-3 s per pedicle.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from needleplan.planner import PlanRequest, evaluate_trajectory, plan  # noqa: E402
from needleplan.planner._maps import _CACHE  # noqa: E402


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def _bench(name, volume, anatomy):
    n_ped = sum(len(va.pedicles) for va in anatomy.vertebrae.values() if va.name[0] in "TL")
    _CACHE.clear()
    p, w1, c1 = _timed(lambda: plan(volume, anatomy, PlanRequest()))
    p, w2, c2 = _timed(lambda: plan(volume, anatomy, PlanRequest()))
    t = next((t for t in p.trajectories if t.approach == "transpedicular"), None)
    manual = float("nan")
    if t is not None:
        rng = np.random.default_rng(0)
        reps = 20
        w = time.perf_counter()
        for _ in range(reps):
            evaluate_trajectory(volume, anatomy, t.level, t.side, t.approach, t.skin_entry_lps,
                                t.target_lps + rng.normal(0, 1.5, 3))
        manual = (time.perf_counter() - w) / reps
    per = f"cpu/pedicle(first)={c1 / n_ped:5.3f} s" if n_ped else f"cpu/level(first)={c1 / len(p.levels):5.3f} s"
    print(f"{name:28s} levels={len(p.levels):2d} pedicles={n_ped:2d}  first: {w1:5.2f} s wall {c1:5.2f} s cpu"
          f"  cached: {w2:5.2f} s wall {c2:5.2f} s cpu  {per}"
          f"  manual check={manual * 1000:5.1f} ms  ok={sum(t.status == 'ok' for t in p.trajectories)}"
          f"/{len(p.trajectories)}", flush=True)
    return c1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="phantoms only")
    args = ap.parse_args(argv)
    from tests.phantoms import cervical_phantom, lumbar_phantom, thoracic_phantom

    for name, f in (("phantom L1-L3", lumbar_phantom), ("phantom T7-T9 (narrow T8)", thoracic_phantom),
                    ("phantom C4-C6 anterolateral", cervical_phantom)):
        ph = f()
        _bench(name, ph.volume, ph.truth)
    if args.quick:
        return 0
    from tests.conftest import shared_data_dir

    chest = shared_data_dir() / "lidc0314-chest-1mm" / "dicom"
    if not chest.exists():
        print("lidc0314-chest-1mm not found: skipped")
        return 0
    from needleplan.io import load_ct
    from needleplan.segmentation import segment

    volume = load_ct(chest)
    anatomy, w, c = _timed(lambda: segment(volume))
    print(f"(segmentation of lidc0314-chest-1mm: {w:.1f} s wall, not counted below)")
    cpu = _bench("lidc0314-chest-1mm", volume, anatomy)
    print(f"target: <= 2 s for all levels -> {'met' if cpu <= 2.0 else 'NOT met'} ({cpu:.2f} s cpu)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
