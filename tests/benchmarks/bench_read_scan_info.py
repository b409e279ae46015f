"""Benchmark: read_scan_info / read_frames per file on real samples (a script, not a pytest test).

    python tests/benchmarks/bench_read_scan_info.py [--quick] [--json out.json]

Prints the median milliseconds per file and writes them as JSON (default: bench_imaging.json in
the current folder).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from aldesk.imaging import read_frames, read_scan_info

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dicom-samples"
FILES = {
    "CT 512x512 int16 uncompressed": "DICOMSamples-jl/CT_Explicit_Little.dcm",
    "CT 512x512 int16 J2K lossless": "pydicom-data/693_J2KR.dcm",
    "MR 384x384 RLE": "dcm_qa_ts/4.dcm",
    "MR 384x384 JPEG lossless": "dcm_qa_ts/5.dcm",
    "CR 1955x1841 uncompressed": "pydicom-data/RG1_UNCI.dcm",
    "US 480x640 RGB": "pydicom-data/US1_UNCR.dcm",
}


def median_ms(func, path, repeat: int) -> float:
    func(path)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func(path)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="bench_imaging.json", help="JSON file (same as --json)")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--quick", action="store_true", help="fewer repeats per file")
    args = ap.parse_args(argv)
    out = Path(args.json or args.out)
    results = {}
    for label, relpath in FILES.items():
        path = SAMPLES / relpath
        if not path.is_file():
            continue
        repeat = 200 if path.stat().st_size < 2_000_000 else 20
        if args.quick:
            repeat = max(5, repeat // 10)
        results[label] = {fn.__name__: median_ms(fn, path, repeat)
                          for fn in (read_scan_info, read_frames)}
        print(f"{label:34s} " + "  ".join(f"{k} {v:7.2f} ms" for k, v in results[label].items()))
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
