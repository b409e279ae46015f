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


def build(path: str | os.PathLike, n_scans: int, *, seed_labels: int = 40, seed: int = 0, reads: int = 0,
          readers: int = 3, double_read: float = 0.2, progress=print) -> Path:
    """Create a project at ``path`` with ``n_scans`` scans; returns its folder. Refuses an existing one.

    ``reads`` > 0 adds that many current labels from ``readers`` readers (see ``add_reads``) instead of
    the ``seed_labels`` labels of one reader."""
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
    if reads:
        add_reads(project, ids, classes[which], reads, readers=readers, double_read=double_read, seed=seed)
        progress(f"  {reads:,} reads by {readers} readers ({time.perf_counter() - t0:.1f} s)")
    elif seed_labels:
        reader = project.labels.annotator_id(SEED_READER)
        pick = rng.choice(len(ids), seed_labels, replace=False)
        project.labels.add_many([{"scan_id": int(ids[j]), "annotator_id": reader,
                                  "value": CLASSES[int(classes[which[j]])]} for j in pick], source="synthetic")
    project.close()
    progress(f"built {n_scans:,} scans at {path} in {time.perf_counter() - t0:.1f} s")
    return path


READER_ACCURACY = (0.95, 0.9, 0.75)  # a careful, a good and a hurried reader, cycled


def add_reads(project, ids: np.ndarray, truth: np.ndarray, n_reads: int, *, readers: int = 3,
              double_read: float = 0.2, seed: int = 0, chunk: int = 20_000) -> None:
    """``n_reads`` current labels on the first scans of ``ids`` (a campaign labels some scans, not all):
    a ``double_read`` share of the read scans is read by two different readers so consensus
    (Dawid–Skene) has overlap to learn from; each reader errs at their own rate. Written through
    ``LabelStore.add_many`` in chunks of ``chunk`` labels, as label files arrive.

    ids : (n_scans,) int64 scan ids; truth : (n_scans,) int64 the source image's class (0/1)."""
    rng = np.random.default_rng(seed + 1)
    n_scans = int(round(n_reads / (1.0 + double_read)))
    if n_scans > len(ids):
        raise ValueError(f"{n_reads} reads need {n_scans} scans; the project has {len(ids)}")
    names = [f"reader_{j + 1}" for j in range(readers)]
    aid = [project.labels.annotator_id(n) for n in names]
    acc = np.array([READER_ACCURACY[j % len(READER_ACCURACY)] for j in range(readers)])
    first = np.arange(n_scans) % readers
    second = (first + 1 + rng.integers(0, max(readers - 1, 1), n_scans)) % readers
    pairs = [(i, int(first[i])) for i in range(n_scans)]
    pairs += [(int(i), int(second[i])) for i in range(n_reads - n_scans)]
    rows = []
    for i, j in pairs:
        value = int(truth[i]) if rng.random() < acc[j] else 1 - int(truth[i])
        rows.append({"scan_id": int(ids[i]), "annotator_id": aid[j], "value": CLASSES[value]})
    for start in range(0, len(rows), chunk):
        project.labels.add_many(rows[start:start + chunk], source="synthetic")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("n_scans", type=int)
    parser.add_argument("--seed-labels", type=int, default=40)
    parser.add_argument("--reads", type=int, default=0, help="labels from several readers (replaces --seed-labels)")
    parser.add_argument("--readers", type=int, default=3)
    args = parser.parse_args(argv)
    build(args.path, args.n_scans, seed_labels=args.seed_labels, reads=args.reads, readers=args.readers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
