"""Import throughput and memory against the bare decode pipeline (not collected by pytest).

Generates N realistic 512x512 16-bit CT files (half uncompressed, half RLE; every file has its own
pixels and UIDs), then times in the same run:
  (a) `aldesk import` on the folder (a fresh project, in a child process), and
  (b) the bare pipeline: pydicom read + decode + window + downsample, with the same worker count.
Prints the throughput ratio a/b (target >= 0.7). With --memory it also imports N_small and N_large
files and compares the peak resident memory of the largest process (target: large <= 1.2x small).

    python tests/benchmarks/bench_import.py --n 2000 --jobs 2 --json out.json
    python tests/benchmarks/bench_import.py --memory --n-small 2000 --n-large 20000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np


def _phantom(i: int) -> np.ndarray:
    """A CT-like slice in HU+1024 (air 0, soft tissue ~1064, bone ~2000), unique per index."""
    yy, xx = np.mgrid[-256:256, -256:256].astype(np.float32)
    r = np.hypot(xx / 200, yy / 160)
    img = np.where(r < 1, 1024 + 40, 0).astype(np.float32)
    img += np.where(np.hypot((xx - 60) / 50, yy / 70) < 1, -800, 0)          # a lung
    img += np.where(np.hypot((xx + 60) / 50, yy / 70) < 1, -800, 0)          # the other
    img += np.where(np.hypot(xx / 25, (yy + 120) / 20) < 1, 900, 0)          # spine
    rng = np.random.default_rng(i)
    img += rng.normal(0, 12, img.shape).astype(np.float32) * (r < 1)
    img[0, :16] = np.frombuffer(i.to_bytes(32, "little"), dtype=np.uint16)   # unique pixels
    return np.clip(img, 0, 4095).astype(np.uint16)


def _write_one(args) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, RLELossless, generate_uid

    i, folder, rle = args
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName = f"BENCH{i // 100:05d}", "Bench^Patient"
    ds.Modality, ds.BodyPartExamined = "CT", "CHEST"
    ds.Rows = ds.Columns = 512
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.PixelSpacing = [0.7, 0.7]
    ds.PixelData = _phantom(i).tobytes()
    if rle:
        ds.compress(RLELossless, encoding_plugin="pylibjpeg")
    ds.save_as(Path(folder) / f"ct_{i:06d}.dcm", enforce_file_format=True)


def generate(folder: Path, n: int, jobs: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    have = len(list(folder.glob("*.dcm")))
    if have >= n:
        return
    with ProcessPoolExecutor(jobs) as pool:
        list(pool.map(_write_one, [(i, str(folder), i % 2 == 1) for i in range(have, n)], chunksize=64))


def _bare_one(path: str) -> int:
    """The bare pipeline for one file: read + decode + rescale/window + 4x block-mean downsample."""
    import pydicom

    ds = pydicom.dcmread(path)
    arr = ds.pixel_array.astype(np.float32)
    arr *= float(ds.RescaleSlope)
    arr += float(ds.RescaleIntercept)
    lo = float(ds.WindowCenter) - float(ds.WindowWidth) / 2
    np.subtract(arr, lo, out=arr)
    np.multiply(arr, 255.0 / float(ds.WindowWidth), out=arr)
    np.clip(arr, 0, 255, out=arr)
    small = arr.reshape(128, 4, 128, 4).mean(axis=(1, 3)).astype(np.uint8)
    return int(small[64, 64])


def bare_pipeline(folder: Path, jobs: int) -> float:
    files = sorted(str(p) for p in folder.glob("*.dcm"))
    t = time.perf_counter()
    with ProcessPoolExecutor(jobs, mp_context=__import__("multiprocessing").get_context("spawn")) as pool:
        for _ in pool.map(_bare_one, files, chunksize=8):
            pass
    return len(files) / (time.perf_counter() - t)


def aldesk_import(folder: Path, jobs: int) -> tuple[float, float, dict]:
    """(files/s, peak RSS MiB of the largest process, summary) for `aldesk import` in a child process."""
    work = Path(tempfile.mkdtemp(prefix="aldesk-bench-"))
    try:
        subprocess.run([sys.executable, "-m", "aldesk", "init", str(work / "p"), "--classes", "a,b"],
                       check=True, capture_output=True)
        code = (
            "import json, resource, sys, time\n"
            "from aldesk.cli import main\n"
            "t = time.perf_counter()\n"
            f"rc = main(['import', {str(work / 'p')!r}, {str(folder)!r}, '--jobs', '{jobs}', '--json', '--quiet'])\n"
            "sys.stderr.write(json.dumps({'seconds': time.perf_counter() - t}))\n"
            "sys.exit(rc)\n"
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        summary = json.loads(proc.stdout)
        seconds = json.loads(proc.stderr.strip().splitlines()[-1])["seconds"]
        return summary["imported"] / seconds, max(peak_kib, before) / 1024, summary
    finally:
        shutil.rmtree(work, ignore_errors=True)


def peak_of_fresh_import(folder: Path, jobs: int) -> float:
    """Peak RSS measured by a fresh interpreter, so earlier runs in this process don't mask it."""
    code = (
        "import resource, subprocess, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from bench_import import aldesk_import\n"
        f"rate, _, s = aldesk_import(__import__('pathlib').Path({str(folder)!r}), {jobs})\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, s['imported'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "aldesk-bench-ct")
    ap.add_argument("--memory", action="store_true", help="also compare peak memory at --n-small vs --n-large")
    ap.add_argument("--n-small", type=int, default=2000)
    ap.add_argument("--n-large", type=int, default=20000)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true", help="1,000 files, no memory comparison")
    args = ap.parse_args()
    if args.quick:
        args.n, args.memory = min(args.n, 1000), False

    folder = args.data / f"n{args.n}"
    t = time.perf_counter()
    generate(folder, args.n, args.jobs)
    print(f"data: {args.n} files in {folder} (generated/checked in {time.perf_counter() - t:.1f} s)")
    bare = bare_pipeline(folder, args.jobs)
    rate, peak, summary = aldesk_import(folder, args.jobs)
    ratio = rate / bare
    figures = {
        "n_files": args.n, "jobs": args.jobs,
        "bare_pipeline_files_per_s": round(bare, 1),
        "import_files_per_s": round(rate, 1),
        "import_to_bare_ratio": round(ratio, 3),
        "import_peak_rss_mib": round(peak, 1),
        "imported": summary["imported"],
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    print(f"bare pipeline   {bare:8.1f} files/s")
    print(f"aldesk import   {rate:8.1f} files/s   ratio {ratio:.2f} (target >= 0.7)")
    if args.memory:
        small, large = args.data / f"n{args.n_small}", args.data / f"n{args.n_large}"
        generate(small, args.n_small, args.jobs)
        generate(large, args.n_large, args.jobs)
        m_small = peak_of_fresh_import(small, args.jobs)
        m_large = peak_of_fresh_import(large, args.jobs)
        figures |= {"peak_rss_small_mib": round(m_small, 1), "peak_rss_large_mib": round(m_large, 1),
                    "n_small": args.n_small, "n_large": args.n_large,
                    "peak_rss_ratio": round(m_large / m_small, 3)}
        print(f"peak RSS {args.n_small}: {m_small:.0f} MiB, {args.n_large}: {m_large:.0f} MiB, "
              f"ratio {m_large / m_small:.2f} (target <= 1.2)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
