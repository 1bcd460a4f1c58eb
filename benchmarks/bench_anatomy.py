"""Time ``anatomy_from_labels`` (canal, parts, landmarks) per vertebra; print the figures.

Usage: ``python benchmarks/bench_anatomy.py``.  Inputs: the lumbar phantom (1 mm, truth
labels) and, when present, the shared real scans with their reference labels.  Goal:
< 2 s per vertebra at 1 mm on one core of this 2-core machine.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from needleplan.io import load_ct  # noqa: E402
from needleplan.segmentation import anatomy_from_labels, import_labels  # noqa: E402
from tests.conftest import shared_data_dir  # noqa: E402


def _run(name, volume, labels):
    t0 = time.perf_counter()
    an = anatomy_from_labels(volume, labels)
    dt = time.perf_counter() - t0
    n = len(an.vertebrae)
    peds = sum(len(v.pedicles) for v in an.vertebrae.values())
    sp = "x".join(f"{s:.2g}" for s in volume.spacing_mm)
    print(f"{name:28s} {sp:>12s} mm  {n:2d} vertebrae  {peds:2d} pedicles  "
          f"{dt:6.2f} s  ({dt / max(n, 1):.2f} s per vertebra)")


def main() -> None:
    from tests.phantoms import lumbar_phantom, thoracic_phantom

    print("anatomy_from_labels: canal + parts + landmarks from a vertebra label map")
    for make in (lumbar_phantom, thoracic_phantom):
        ph = make()
        _run(f"phantom {make.__name__}", ph.volume, ph.truth.labels)
    d = shared_data_dir()
    cases = [("tptbox-l3-1.5mm", "sub-ct_label-22_ct.nii.gz", "sub-ct_seg-vert_label-22_msk.nii.gz"),
             ("ts-abdomen-3mm", "ct.nii.gz", "totalseg-total.nii.gz")]
    for folder, ct, lab in cases:
        if (d / folder / ct).exists():
            vol = load_ct(d / folder / ct)
            labels, _ = import_labels(d / folder / lab, vol)
            _run(folder, vol, labels)
    print("goal: < 2 s per vertebra at 1 mm (TotalSegmentator's own CPU figure for the whole "
          "'total' task is 1-4.5 min per scan in fast mode, segmentation only)")


if __name__ == "__main__":
    main()
