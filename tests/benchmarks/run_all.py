"""Run every benchmark and write one benchmarks.json plus a Markdown table (not collected by pytest).

    python tests/benchmarks/run_all.py [--quick] [--repeats 3] [--out DIR]

Each benchmark script is run in its own process with ``--json FILE``; numeric figures are the median
of the repeats, and ratios are those each script computed within one run (both implementations timed
in the same process, so machine drift cancels). Figures carry their unit in the key (``_s``, ``_ms``,
``_mib``, ``_per_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (script, quick args, full args)
BENCHMARKS = {
    "import": ("bench_import.py", ["--quick"], ["--n", "2000", "--memory", "--n-small", "2000", "--n-large", "20000"]),
    "read_scan_info": ("bench_read_scan_info.py", ["--quick"], []),
    "rank": ("bench_rank.py", ["--quick"], []),
    "features": ("bench_features.py", ["--quick"], []),
    "consensus": ("bench_consensus.py", ["--quick"], []),
    "ui": ("bench_ui.py", ["--quick"], []),
    "scale": ("bench_scale.py", ["--quick"], []),
    "scroll": ("bench_scroll.py", ["--quick"], []),
}


def machine() -> dict:
    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            mem = f"{int(fh.readline().split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((l.split(":", 1)[1].strip() for l in fh if l.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "python": platform.python_version(),
            "os": platform.platform(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d")}


def run_one(name: str, script: str, args: list[str], repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.json"
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, str(HERE / script), *args, "--json", str(out)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"],
                        "returncode": proc.returncode}
            if not out.exists():
                return {"error": [f"{script} wrote no --json file"], "returncode": proc.returncode}
            data = json.loads(out.read_text())
            data["_wall_s"] = time.perf_counter() - t
            runs.append(data)
    return merge_runs(runs)


def _flatten(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flatten(v, f"{prefix}{k}." if not prefix else f"{prefix}{k}.")
    else:
        yield prefix.rstrip("."), obj


def merge_runs(runs: list[dict]) -> dict:
    """Median of every numeric figure over the repeats; other values from the first run."""
    flat = [dict(_flatten(r)) for r in runs]
    merged = {}
    for key in flat[0]:
        values = [f.get(key) for f in flat]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            merged[key] = statistics.median(values)
        else:
            merged[key] = values[0]
    merged["repeats"] = len(runs)
    return merged


# last key part -> (unit suffix, factor) for scripts whose keys do not carry their unit
UNIT_OF_FIELD = {
    "seconds": ("s", 1.0), "reference_seconds": ("reference_s", 1.0), "target_seconds": ("target_s", 1.0),
    "ratio_to_reference": ("ratio_to_reference", 1.0), "bytes": ("mib", 1 / 2**20), "target_bytes": ("target_mib", 1 / 2**20),
    "read_scan_info": ("read_scan_info_ms", 1.0), "read_frames": ("read_frames_ms", 1.0),
}
#: figures left out of the Markdown table (still in benchmarks.json): targets and bookkeeping
TABLE_SKIP = ("_target_s", "_target_mib", "n_files", "jobs", "pool", "test", "seeds", "n_scans", "repeats")


def _slug(text: str) -> str:
    out = "".join(c.lower() if c.isalnum() else "_" for c in text)
    while "__" in out:
        out = out.replace("__", "_")
    return out.strip("_")


def with_units(name: str, figures: dict) -> dict:
    """Add unit-carrying aliases (``rank_100k_hybrid_b_100_trained_model_s``) for keys that lack a unit.

    The unit-less originals move under ``_raw`` (kept in the JSON, left out of the table)."""
    out, raw = {}, {}
    for key, value in figures.items():
        head, _, last = key.rpartition(".")
        if head and last in UNIT_OF_FIELD:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                unit, factor = UNIT_OF_FIELD[last]
                out[f"{name}_{_slug(head)}_{unit}"] = value * factor
            raw[key] = value
        elif head and last in ("met", "note"):
            out[f"{name}_{_slug(head)}_{last}"] = value
            raw[key] = value
        else:
            out[key] = value
    if raw:
        out["_raw"] = raw
    return out


def markdown(results: dict, info: dict) -> str:
    lines = [f"Benchmarks of {info['date']} on {info['cpu']}, {info['cores']} cores, {info['memory']}, "
             f"Python {info['python']} (median of repeats).", "", "| benchmark | figure | value |", "|---|---|---|"]
    for bench, figures in results.items():
        if bench == "machine":
            continue
        for key, value in figures.items():
            if key.startswith("_") or key.endswith(TABLE_SKIP) or value is None or key.endswith("_note"):
                continue
            if isinstance(value, str) and key != "error":
                continue
            if isinstance(value, bool):
                value = "yes" if value else "NO"
            elif isinstance(value, float):
                value = f"{value:.4g}"
            elif key == "error":
                value = " ".join(map(str, value)) if isinstance(value, list) else value
            elif isinstance(value, (list, dict)):
                continue
            lines.append(f"| {bench} | {key} | {value} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--only", help="comma-separated benchmark names")
    ap.add_argument("--out", type=Path, default=Path.cwd())
    args = ap.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    info = machine()
    results: dict = {"machine": info}
    for name in names:
        script, quick, full = BENCHMARKS[name]
        if not (HERE / script).exists():
            results[name] = {"error": f"{script} not present"}
            continue
        print(f"== {name} ({script}) ...", file=sys.stderr, flush=True)
        results[name] = run_one(name, script, quick if args.quick else full, repeats)
        if "error" not in results[name]:
            results[name] = with_units(name, results[name])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmarks.json").write_text(json.dumps(results, indent=2))
    table = markdown(results, info)
    (args.out / "benchmarks.md").write_text(table)
    print(table)
    return 1 if any(isinstance(v, dict) and "error" in v for v in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
