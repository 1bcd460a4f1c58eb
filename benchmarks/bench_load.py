"""Load the LIDC chest CT (275 DICOM slices) with needleplan and with SimpleITK; compare.

Each load runs in a fresh Python subprocess so that peak memory (ru_maxrss) is measured
fairly; the two loaders alternate and the median of ``--repeat`` runs is reported.  The
files are read once beforehand so both loaders see a warm page cache.

Usage::

    python benchmarks/bench_load.py [PATH] [--repeat 3]

Goal (issue 2): needleplan time <= 1.0x SimpleITK's and no more peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO.parent / "shared" / "data" / "lidc0314-chest-1mm" / "dicom"

_CHILD = r"""
import json, resource, sys, time
which, path = sys.argv[1], sys.argv[2]
def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
if which == "needleplan":
    from needleplan.io import load_ct
    base = rss_mb()
    c0, t0 = cpu_s(), time.perf_counter()
    vol = load_ct(path)
    dt, cpu = time.perf_counter() - t0, cpu_s() - c0
    shape, dtype = vol.shape, str(vol.voxels.dtype)
    checksum = int(vol.voxels.sum(dtype="int64"))
else:
    import SimpleITK as sitk
    base = rss_mb()
    c0, t0 = cpu_s(), time.perf_counter()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(path))
    img = reader.Execute()
    arr = sitk.GetArrayViewFromImage(img)
    dt, cpu = time.perf_counter() - t0, cpu_s() - c0
    shape, dtype = img.GetSize(), str(arr.dtype)
    checksum = int(arr.sum(dtype="int64"))
print(json.dumps({"time_s": dt, "cpu_s": cpu, "peak_mb": rss_mb(), "base_mb": base, "shape": list(shape),
                  "dtype": dtype, "checksum": checksum}))
"""


def run_child(which: str, path: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    out = subprocess.run([sys.executable, "-c", _CHILD, which, str(path)], check=True,
                         capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_scan(n_files: int) -> None:
    """Header scan of a folder of many small files (64x64 CT slices, 4 series)."""
    import tempfile
    import time

    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    from needleplan.io import scan_path

    with tempfile.TemporaryDirectory(prefix="np-bench-scan-") as tmp:
        pix = np.zeros((64, 64), "<i2").tobytes()
        for n in range(n_files):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = CTImageStorage
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
            ds.SeriesInstanceUID = f"1.2.3.{n % 4}"
            ds.StudyInstanceUID, ds.Modality = "1.2.3", "CT"
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.ImagePositionPatient = [0, 0, n // 4]
            ds.PixelSpacing = [0.5, 0.5]
            ds.Rows = ds.Columns = 64
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated = ds.BitsStored = 16
            ds.HighBit, ds.PixelRepresentation = 15, 1
            ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
            ds.PixelData = pix
            ds.save_as(f"{tmp}/{n:05d}.dcm", enforce_file_format=True)
        t0 = time.perf_counter()
        series = scan_path(tmp)
        dt = time.perf_counter() - t0
    print(f"header scan of {n_files} files ({len(series)} series): {dt:.2f} s "
          f"({1e3 * dt / n_files:.2f} ms per file)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", default=str(DEFAULT), help="DICOM series folder")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scan-files", type=int, default=2000,
                    help="also time a header scan of this many small files (0: skip)")
    args = ap.parse_args(argv)
    path = Path(args.path)
    if not path.is_dir():
        print(f"bench_load: '{path}' is not a folder (set PATH to the LIDC series)",
              file=sys.stderr)
        return 2
    for f in path.iterdir():  # warm the page cache for both loaders
        f.read_bytes()

    runs: dict[str, list[dict]] = {"needleplan": [], "simpleitk": []}
    for _ in range(args.repeat):
        for which in runs:
            runs[which].append(run_child(which, path))
    med = {w: {k: statistics.median(r[k] for r in rs) for k in ("time_s", "cpu_s", "peak_mb", "base_mb")}
           for w, rs in runs.items()}
    n, s = med["needleplan"], med["simpleitk"]
    same = runs["needleplan"][0]["checksum"] == runs["simpleitk"][0]["checksum"]
    print(f"series: {path} ({runs['needleplan'][0]['shape']}, {args.repeat} runs each, median)")
    for name, m in (("needleplan", n), ("SimpleITK ", s)):
        added = m["peak_mb"] - m["base_mb"]
        print(f"  {name}  time {m['time_s']:.3f} s (CPU {m['cpu_s']:.2f} s)   peak RSS {m['peak_mb']:.0f} MB "
              f"(after imports {m['base_mb']:.0f} MB, load adds {added:.0f} MB)")
    print(f"  time ratio needleplan / SimpleITK: {n['time_s'] / s['time_s']:.2f}x (goal <= 1.0x; "
          f"CPU-time ratio {n['cpu_s'] / s['cpu_s']:.2f}x, robust to a busy machine)")
    print(f"  peak memory ratio: {n['peak_mb'] / s['peak_mb']:.2f}x (goal <= 1.0x)")
    print(f"  same voxel checksum: {same}")
    if args.scan_files:
        bench_scan(args.scan_files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
