"""Build large projects fast for GUI benchmarks: N scan rows, previews, feature vectors and files.

Realistic where the GUI feels it: every scan is a file on disk (hard links to a few dozen 512 x 512
16-bit PNGs made from real PneumoniaMNIST chest X-rays, upsampled), decoded by the real viewer
pipeline; previews are the real 128 x 128 downsample; features are the real ``default`` extractor's
vectors of the source images plus a little noise, stored under the extractor's own name/version so
``load_features`` finds them cached (as after a real import + extraction). Everything goes through the
store API (``ScanStore.insert_scan``, ``FeatureStore.put``) in a few large transactions.

    python -m tests.benchmarks.synthetic_project /tmp/big 100000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
PNEUMONIAMNIST = (REPO / ".." / "shared" / "data" / "pneumoniamnist" / "pneumoniamnist.npz").resolve()
CLASSES = ["normal", "pneumonia"]
N_SOURCES = 64
SOURCE_SIZE = 512
PREVIEW_SIZE = 128
SEED_READER = "seed_reader"


def _source_images(n: int, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """n real chest X-rays (28 x 28, uint8) and their classes (0 normal, 1 pneumonia), balanced."""
    if PNEUMONIAMNIST.is_file():
        d = np.load(PNEUMONIAMNIST)
        imgs, y = d["train_images"], d["train_labels"][:, 0]
        pick = np.concatenate([rng.choice(np.flatnonzero(y == c), n // 2, replace=False) for c in (0, 1)])
        return [imgs[i] for i in pick], y[pick].astype(np.int64)
    # without the shared data: smooth random blobs (still exercises decode and windowing)
    imgs = [np.clip(rng.normal(128, 40, (28, 28)), 0, 255).astype(np.uint8) for _ in range(n)]
    return imgs, np.arange(n) % 2


def _write_sources(folder: Path, images: list[np.ndarray]) -> tuple[list[Path], list[np.ndarray]]:
    """512 x 512 12-bit-in-16-bit PNGs (upsampled real images) and their 128 x 128 uint8 previews."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths, previews = [], []
    for i, img in enumerate(images):
        big = np.asarray(Image.fromarray(img).resize((SOURCE_SIZE, SOURCE_SIZE), Image.BICUBIC), dtype=np.float32)
        grey16 = (big * (4095.0 / 255.0)).astype(np.uint16)
        path = folder / f"source_{i:03d}.png"
        Image.fromarray(grey16).save(path)
        paths.append(path)
        previews.append(np.asarray(Image.fromarray(img).resize((PREVIEW_SIZE, PREVIEW_SIZE), Image.BICUBIC)))
    return paths, previews


def build(path: str | os.PathLike, n_scans: int, *, seed_labels: int = 40, seed: int = 0,
          progress=print) -> Path:
    """Create a project at ``path`` with ``n_scans`` scans; returns its folder. Refuses an existing one."""
    from aldesk.features.registry import get_extractor
    from aldesk.store import Project
    from aldesk.store.project import utc_now

    t0 = time.perf_counter()
    path = Path(path)
    rng = np.random.default_rng(seed)
    images, classes = _source_images(N_SOURCES, rng)
    sources, previews = _write_sources(path.parent / (path.name + "-files") / "_sources", images)
    data = path.parent / (path.name + "-files") / "scans"
    project = Project.create(path, CLASSES, name=f"synthetic {n_scans}")
    root_id, _ = project.scans.root_for(data)
    data.mkdir(parents=True, exist_ok=True)
    now = utc_now()
    which = rng.integers(0, N_SOURCES, n_scans)
    stat = [s.stat() for s in sources]
    chunk = 10_000
    for start in range(0, n_scans, chunk):
        with project.transaction():
            for i in range(start, min(start + chunk, n_scans)):
                k = int(which[i])
                sub = f"{i // 1000:03d}"
                rel = f"{sub}/scan_{i:06d}.png"
                target = data / rel
                if not target.exists():
                    target.parent.mkdir(exist_ok=True)
                    os.link(sources[k], target)
                uid = hashlib.sha1(f"synthetic-{seed}-{i}".encode()).hexdigest()
                values = {
                    "uid": "sha:" + uid, "pixel_hash": uid, "root_id": root_id, "relpath": rel,
                    "file_size": stat[k].st_size, "file_mtime": stat[k].st_mtime, "format": "png",
                    "modality": "CR", "rows": SOURCE_SIZE, "columns": SOURCE_SIZE, "frames": 1, "samples": 1,
                    "bits_allocated": 16, "bits_stored": 16, "signed": 0, "photometric": "MONOCHROME2",
                    "windows": "[]", "imported_at": now,
                }
                project.scans.insert_scan(values, previews[k])
        progress(f"  {min(start + chunk, n_scans):,} scans  ({time.perf_counter() - t0:.1f} s)")
    ext = get_extractor("default")
    base = ext.transform(previews).astype(np.float32)
    set_id = project.features.create_set(ext.name, ext.version, base.shape[1], None)
    ids = project.scans.ids()
    for start in range(0, len(ids), 50_000):
        part = ids[start:start + 50_000]
        X = base[which[start:start + len(part)]] + rng.normal(0, 0.02, (len(part), base.shape[1])).astype(np.float32)
        project.features.put(set_id, part, X)
    progress(f"  features ({time.perf_counter() - t0:.1f} s)")
    if seed_labels:
        reader = project.labels.annotator_id(SEED_READER)
        pick = rng.choice(len(ids), seed_labels, replace=False)
        project.labels.add_many([{"scan_id": int(ids[j]), "annotator_id": reader,
                                  "value": CLASSES[int(classes[which[j]])]} for j in pick], source="synthetic")
    project.close()
    progress(f"built {n_scans:,} scans at {path} in {time.perf_counter() - t0:.1f} s")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("n_scans", type=int)
    parser.add_argument("--seed-labels", type=int, default=40)
    args = parser.parse_args(argv)
    build(args.path, args.n_scans, seed_labels=args.seed_labels)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
