"""Time the plan report: a 10-trajectory PDF (goal <= 5 s) and the other plan outputs.

Run from the repository root::

    python benchmarks/bench_report.py [--levels 5] [--repeat 3]

Uses the hand-built synthetic case of ``tests/report/synthetic.py`` (5 lumbar levels,
both pedicles = 10 trajectories), or the phantom + real planner with ``--phantom``.
Prints seconds per output and the share spent in simulated fluoroscopy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _case(levels: int, phantom: bool):
    names = ("L1", "L2", "L3", "L4", "L5", "T12", "T11")[:levels]
    if phantom:
        from needleplan.phantom import make_phantom
        from needleplan.planner import PlanRequest, plan

        ph = make_phantom(levels=tuple(names))
        p = plan(ph.volume, ph.truth, PlanRequest(approach="bipedicular"))
        return ph.volume, ph.truth, p
    from tests.report.synthetic import make_case

    return make_case(tuple(names))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--phantom", action="store_true", help="phantom truth + real planner instead of the synthetic case")
    args = ap.parse_args()
    t0 = time.perf_counter()
    volume, anatomy, plan = _case(args.levels, args.phantom)
    print(f"case: {len(plan.trajectories)} trajectories, volume {volume.shape} "
          f"({time.perf_counter() - t0:.2f} s to build)")

    from needleplan.pipeline import write_plan_outputs
    from needleplan.report import write_report_pdf, write_slicer_markups
    from needleplan.report._figures import fluoro_images

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_report_pdf(plan, volume, anatomy, tmp / "warm.pdf")  # imports, fonts, DRR cache
        times, cpu = [], []
        for i in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            write_report_pdf(plan, volume, anatomy, tmp / f"r{i}.pdf")
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        size = (tmp / "r0.pdf").stat().st_size
        pp = plan.input.get("patient_position")
        t = time.perf_counter()
        for tr in plan.trajectories:
            fluoro_images(volume, tr, pp)
        t_drr = time.perf_counter() - t
        t = time.perf_counter()
        write_slicer_markups(plan, tmp / "plan.mrk.json")
        t_mrk = time.perf_counter() - t
        t = time.perf_counter()
        write_plan_outputs(tmp / "all", plan, volume, anatomy)
        t_all = time.perf_counter() - t
    n = len(plan.trajectories)
    print(f"plan.pdf ({n} trajectories): best {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s, "
          f"{size / 1e6:.2f} MB, CPU {min(cpu):.2f} s  (goal <= 5 s: {'met' if min(times) <= 5 else 'MISSED'})")
    try:
        import os

        print(f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall times grow with load)")
    except OSError:
        pass
    print(f"  of which simulated fluoroscopy ({2 * n} DRRs): {t_drr:.2f} s")
    print(f"plan.mrk.json: {t_mrk * 1000:.1f} ms")
    print(f"whole plan folder (json + pdf + markups + 3 label maps): {t_all:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
