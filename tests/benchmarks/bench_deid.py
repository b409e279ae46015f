"""How long de-identifying a DICOM file takes (not collected by pytest).

Runs :func:`aldesk.imaging.deid.deidentify_file` (PS3.15 Table E.1-1 basic profile, the edition the
installed dicom-anonymizer ships) over every readable ``*.dcm`` of the shared real samples, ``--repeat``
times, and prints milliseconds per file (median of the repeats) with the share spent in the
de-identification walk itself (the rest is pydicom reading and writing the file).

    python tests/benchmarks/bench_deid.py --json bench_deid.json
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import pydicom

from aldesk.errors import InvalidScanError
from aldesk.imaging.deid import deidentify_dataset, deidentify_file, profile_edition

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dicom-samples"
SECRET = b"bench" * 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    files = sorted(args.samples.resolve().rglob("*.dcm"))
    out = Path(tempfile.mkdtemp())
    readable = []
    for i, f in enumerate(files):
        try:
            deidentify_file(f, out / f"{i}.dcm", uid_secret=SECRET)
            readable.append(f)
        except InvalidScanError:
            pass
    per_file, walk = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        for i, f in enumerate(readable):
            deidentify_file(f, out / f"{i}.dcm", uid_secret=SECRET, patient_pseudonym="p")
        per_file.append((time.perf_counter() - t) / len(readable) * 1000)
        datasets = [pydicom.dcmread(f, force=True) for f in readable]
        for ds in datasets:
            for _elem in ds.iterall():  # parse deferred values outside the timing
                pass
        t = time.perf_counter()
        for ds in datasets:
            deidentify_dataset(ds, uid_secret=SECRET, patient_pseudonym="p")
        walk.append((time.perf_counter() - t) / len(readable) * 1000)
    result = {"edition": profile_edition(), "files": len(readable), "skipped_unreadable": len(files) - len(readable),
              "ms_per_file": round(statistics.median(per_file), 2), "walk_ms_per_file": round(statistics.median(walk), 2),
              "repeat": args.repeat, "python": platform.python_version(), "pydicom": pydicom.__version__}
    print(f"PS3.15 {result['edition']}: {result['files']} real DICOM files ({result['skipped_unreadable']} unreadable "
          f"skipped): {result['ms_per_file']} ms per file, of which the de-identification walk "
          f"{result['walk_ms_per_file']} ms (median of {args.repeat})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
