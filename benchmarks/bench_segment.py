"""Benchmark: classical vertebra segmentation of the whole lidc0314 chest CT.

Run ``python benchmarks/bench_segment.py [DICOM_DIR_OR_CT_FILE ...]``.  Prints wall time
and peak resident memory of :func:`needleplan.segmentation._vertebrae.segment_vertebrae`
(issue 3 goal: 512 x 512 x 275 in <= 20 s on 2 cores, peak <= 4 GB) next to
TotalSegmentator's published CPU figures.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from needleplan.io import load_ct  # noqa: E402
from needleplan.segmentation._vertebrae import segment_vertebrae  # noqa: E402
from tests.conftest import shared_data_dir  # noqa: E402

TOTALSEG_CPU = ("TotalSegmentator (Wasserthal et al. 2023, README): '--fast' (3 mm) "
                "about 1-4.5 min per CT on a laptop CPU; full 1.5 mm model much slower on CPU")


class _PeakRSS:
    """Sample the process's resident memory every 20 ms."""

    def __init__(self):
        self.proc = psutil.Process()
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def bench(path: Path, repeats: int = 1) -> None:
    t0 = time.perf_counter()
    vol = load_ct(path)
    t_load = time.perf_counter() - t0
    base = psutil.Process().memory_info().rss
    times = []
    with _PeakRSS() as mem:
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = segment_vertebrae(vol)
            times.append(time.perf_counter() - t0)
    ru_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB -> MB
    print(f"{path.name}: {vol.shape} voxels, spacing {tuple(round(float(s), 3) for s in vol.spacing_mm)} mm")
    print(f"  load_ct                : {t_load:6.1f} s")
    print(f"  segment_vertebrae      : {min(times):6.1f} s (best of {repeats}; goal <= 20 s)")
    print(f"  peak RSS while running : {mem.peak / 2**20:6.0f} MB (process, incl. the CT; "
          f"+{(mem.peak - base) / 2**20:.0f} MB over the loaded CT; goal <= 4096 MB); "
          f"ru_maxrss {ru_peak:.0f} MB")
    print(f"  levels                 : {', '.join(res.levels)} (confidence {res.naming_confidence:.2f})")
    print(f"  cores                  : {psutil.cpu_count()} logical, load average "
          f"{', '.join(f'{x:.1f}' for x in psutil.getloadavg())}")
    print(f"  reference              : {TOTALSEG_CPU}")


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or [shared_data_dir() / "lidc0314-chest-1mm" / "dicom"]
    for p in paths:
        if not p.exists():
            print(f"missing: {p} (set NEEDLEPLAN_SHARED)", file=sys.stderr)
            return 2
        bench(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
