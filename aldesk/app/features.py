"""Extract feature vectors once per (extractor, version) and cache them in the project.

Vectors are computed in a process pool from the stored previews (the source files are not read
again), written in batches, and reused until the extractor's version changes. Learned extractors
are fitted once on a sample of the project's own previews; the fitted state is stored as plain arrays.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

from aldesk.app.callbacks import Progress, ShouldStop, check_stop, never_stop, no_progress
from aldesk.errors import LearningError
from aldesk.store import Project

CHUNK = 256
FIT_SAMPLE = 5000
IN_PROCESS_BELOW = 2000  # fewer scans than this: a pool's start-up costs more than it saves


@dataclass
class FeatureResult:
    extractor: str
    version: str
    computed: int
    cached: int
    dim: int


def _make_extractor(name: str, options: dict):
    from aldesk.features.registry import get_extractor

    return get_extractor(name, **options)


def extract_features(
    project: Project,
    extractor: str = "default",
    *,
    options: dict | None = None,
    jobs: int | None = None,
    progress: Progress = no_progress,
    should_stop: ShouldStop = never_stop,
) -> FeatureResult:
    """Compute the vectors the cache lacks for ``extractor``; an unchanged extractor costs one query."""
    options = dict(options or {})
    ext = _make_extractor(extractor, options)
    if project.units.kind() != "image":
        return _unit_features(project, ext, jobs, progress, should_stop)
    store = project.features
    set_id = store.find_set(ext.name, ext.version)
    if set_id is None:
        state = None
        if ext.needs_fit:
            progress(0, 0, f"fitting {ext.name} on the project's scans")
            ext.fit(_fit_sample(project, seed=0))
            state = ext.get_state()
        dim = _probe_dim(project, ext)
        set_id = store.create_set(ext.name, ext.version, dim, state)
    elif ext.needs_fit:
        ext.set_state(store.state(set_id))
    missing = store.missing_scan_ids(set_id)
    total = project.scans.count()
    cached = total - len(missing)
    progress(cached, total, f"{ext.name}: {cached} cached")
    done = cached
    jobs = jobs or os.cpu_count() or 1

    def write(ids: np.ndarray, X: np.ndarray) -> None:
        nonlocal done
        if not np.all(np.isfinite(X)):
            raise LearningError(f"extractor {ext.name} produced non-finite values; this is a bug, please report it")
        store.put(set_id, ids, X)
        done += len(ids)
        progress(done, total, f"{ext.name}")

    chunks = _preview_chunks(project, missing)
    if len(missing) < IN_PROCESS_BELOW or jobs == 1:
        for ids, images in chunks:
            check_stop(should_stop, "feature extraction")
            write(ids, ext.transform(images))
    else:
        run_pool(ext, _transform, chunks, jobs, write, should_stop)
    return FeatureResult(ext.name, ext.version, len(missing), cached, store.dim(set_id))


def _unit_features(project: Project, ext, jobs: int | None, progress: Progress, should_stop: ShouldStop) -> FeatureResult:
    """Series/study projects: slice features pooled per unit (aldesk.app.unit_features)."""
    from aldesk.app.unit_features import extract_unit_features
    from aldesk.features.pooling import pooled_version

    version = pooled_version(ext.version)
    set_id = project.features.find_set(ext.name, version)
    if ext.needs_fit:
        if set_id is None:
            progress(0, 0, f"fitting {ext.name} on the project's scans")
            ext.fit(_fit_sample(project, seed=0))
        else:
            ext.set_state(project.features.state(set_id))
    set_id, computed, cached = extract_unit_features(project, ext, jobs=jobs, progress=progress, should_stop=should_stop)
    return FeatureResult(ext.name, version, computed, cached, project.features.dim(set_id))


def load_features(project: Project, extractor: str = "default", options: dict | None = None,
                  **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """(scan ids (n,), X (n, d) float32) for every scan, extracting what the cache lacks first."""
    result = extract_features(project, extractor, options=options, **kwargs)
    set_id = project.features.find_set(result.extractor, result.version)
    return project.features.matrix(set_id)


def _fit_sample(project: Project, seed: int) -> list[np.ndarray]:
    ids = project.scans.ids()
    if len(ids) > FIT_SAMPLE:
        ids = np.sort(np.random.default_rng(seed).choice(ids, FIT_SAMPLE, replace=False))
    return [img for _, img in project.scans.iter_previews(ids.tolist())]


def _probe_dim(project: Project, ext) -> int:
    for _, img in project.scans.iter_previews(project.scans.ids()[:1].tolist()):
        return int(ext.transform([img]).shape[1])
    return int(ext.transform([np.zeros((8, 8), np.uint8)]).shape[1])


def _preview_chunks(project: Project, ids: np.ndarray):
    ids = ids.tolist()
    for i in range(0, len(ids), CHUNK):
        part = ids[i:i + CHUNK]
        got = list(project.scans.iter_previews(part))
        yield np.array([s for s, _ in got], dtype=np.int64), [img for _, img in got]


_WORKER_EXTRACTOR = None


def _init_worker(extractor) -> None:
    import signal

    from threadpoolctl import threadpool_limits

    global _WORKER_EXTRACTOR
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threadpool_limits(1)  # one process per core already
    _WORKER_EXTRACTOR = extractor


def _transform(images: list[np.ndarray]) -> np.ndarray:
    return _WORKER_EXTRACTOR.transform(images)


def run_pool(ext, task, chunks, jobs: int, write, should_stop: ShouldStop) -> None:
    """``write(key, task(arg))`` for each ``(key, arg)`` of ``chunks``, the tasks run in ``jobs`` worker
    processes that hold ``ext`` (at most 2 chunks per worker in flight: memory stays flat), written as they
    come back; cancelled between results."""
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(ext,))
    in_flight: dict[Future, object] = {}
    try:
        exhausted = False
        while True:
            check_stop(should_stop, "feature extraction")
            while not exhausted and len(in_flight) < jobs * 2:
                nxt = next(chunks, None)
                if nxt is None:
                    exhausted = True
                    break
                in_flight[pool.submit(task, nxt[1])] = nxt[0]
            if not in_flight:
                return
            done, _ = wait(in_flight, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in done:
                write(in_flight.pop(fut), fut.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
