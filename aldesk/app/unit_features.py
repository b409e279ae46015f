"""Feature vectors of series and study units: slice features pooled (mean and max) and cached.

For each series of a unit, at most ``SLICES_PER_STACK`` evenly spaced slices of its main stack are
decoded (the same display pipeline as import previews), described by the project's extractor and
pooled into one series vector; the unit's vector pools every sampled slice of all its series. Both
are cached (``features`` per unit, ``series_features`` per series), so ranking reads one vector per
unit. Single images in a unit project get [f, f] (mean = max = their own features).

Also names the series behind a unit's score ("why this study"): the series whose own pooled vector
the current model is least sure about.
"""

from __future__ import annotations

import os

import numpy as np

from aldesk.app.callbacks import Progress, ShouldStop, check_stop, never_stop, no_progress
from aldesk.errors import InvalidScanError, LearningError
from aldesk.features.pooling import pool_mean_max, pooled_version, sample_slices
from aldesk.store import Project

PREVIEW_SIZE = 128
CHUNK_UNITS = 16          # units per task sent to a worker (and per write)
IN_PROCESS_BELOW = 64     # fewer units than this: a pool's start-up costs more than it saves


def slice_preview(path: str, frame: int, preview_size: int = PREVIEW_SIZE) -> np.ndarray:
    """One slice through the display pipeline, longest side <= preview_size: (h, w) or (h, w, 3) uint8."""
    from aldesk.imaging import read_frames, to_display
    from aldesk.imaging.display import block_mean, preview_factor

    frames, params = read_frames(path)
    frame = min(frame, frames.shape[0] - 1)
    img = frames[frame]
    factor = preview_factor(img.shape[0], img.shape[1], preview_size)
    if img.ndim == 2:
        return to_display(block_mean(img, factor) if factor > 1 else img, params)
    small = block_mean(img, factor) if factor > 1 else img.astype(np.float32)
    return np.clip(small + 0.5, 0, 255).astype(np.uint8)


def unit_feature_set(project: Project, ext) -> tuple[int, int]:
    """(feature set id, dim) of the pooled set for ``ext`` (created when new): dim = 2 x slice dim."""
    store = project.features
    version = pooled_version(ext.version)
    set_id = store.find_set(ext.name, version)
    if set_id is not None:
        return set_id, store.dim(set_id)
    state = ext.get_state() if ext.needs_fit else None
    probe = ext.transform([np.zeros((8, 8), np.uint8)])
    set_id = store.create_set(ext.name, version, 2 * int(probe.shape[1]), state)
    return set_id, store.dim(set_id)


def extract_unit_features(project: Project, ext, *, jobs: int | None = None, progress: Progress = no_progress,
                          should_stop: ShouldStop = never_stop) -> tuple[int, int, int]:
    """Pooled vectors for every unit the cache lacks. ``ext`` is fitted already; slices are decoded in
    ``jobs`` worker processes (default: all cores) once there are enough units. Returns (set id,
    computed, cached)."""
    set_id, _ = unit_feature_set(project, ext)
    store = project.features
    missing = store.missing_scan_ids(set_id).tolist()
    total = project.scans.count()
    cached = total - len(missing)
    progress(cached, total, f"{ext.name}: {cached} cached")
    done = cached

    def write(results: list[tuple[int, np.ndarray, list[tuple[int, np.ndarray]]]]) -> None:
        nonlocal done
        X = np.stack([v for _, v, _ in results])
        if not np.all(np.isfinite(X)):
            raise LearningError(f"extractor {ext.name} produced non-finite values; this is a bug, please report it")
        store.put(set_id, np.array([s for s, _, _ in results], dtype=np.int64), X)
        parts = [p for _, _, ps in results for p in ps]
        if parts:
            project.units.put_series_features(set_id, [i for i, _ in parts], np.stack([v for _, v in parts]))
        done += len(results)
        progress(done, total, ext.name)

    plans = (_plan(project, missing[i:i + CHUNK_UNITS]) for i in range(0, len(missing), CHUNK_UNITS))
    jobs = jobs or os.cpu_count() or 1
    if len(missing) < IN_PROCESS_BELOW or jobs == 1:
        for chunk in plans:
            check_stop(should_stop, "feature extraction")
            write([unit_vectors(ext, plan) for plan in chunk])
    else:
        from aldesk.app.features import run_pool

        run_pool(ext, _pool_units, ((None, chunk) for chunk in plans), jobs, lambda _, results: write(results),
                 should_stop)
    return set_id, len(missing), cached


def _plan(project: Project, scan_ids: list[int]) -> list[tuple]:
    """Per unit: (scan id, stored preview, [(series id, [(path, frame), ...] sampled)]): plain, picklable."""
    from aldesk.app.units import unit_view

    out = []
    for scan_id in scan_ids:
        view = unit_view(project, scan_id)
        series = []
        if view is not None:
            for s, row in zip(view.series, project.units.series(scan_id)):
                images = s.stacks[0].images if s.stacks else []
                series.append((row.id, [images[k] for k in sample_slices(len(images))]))
        out.append((scan_id, project.scans.preview(scan_id), series))
    return out


def unit_vectors(ext, plan: tuple) -> tuple[int, np.ndarray, list[tuple[int, np.ndarray]]]:
    """(scan id, unit vector (2 d,), [(series id, series vector (2 d,))]) for one planned unit."""
    scan_id, preview, series = plan
    all_feats, parts = [], []
    for series_id, images in series:
        previews = []
        for path, frame in images:
            try:
                previews.append(slice_preview(path, frame))
            except InvalidScanError:
                continue   # a slice that no longer reads: pool the others
        if previews:
            F = np.asarray(ext.transform(previews), dtype=np.float32)
            all_feats.append(F)
            parts.append((series_id, pool_mean_max(F)))
    if not all_feats:   # a single image, or nothing readable: the unit's stored preview stands in
        all_feats = [np.asarray(ext.transform([preview]), dtype=np.float32)]
    return scan_id, pool_mean_max(np.concatenate(all_feats)), parts


def _pool_units(plans: list[tuple]) -> list:
    from aldesk.app import features

    return [unit_vectors(features._WORKER_EXTRACTOR, plan) for plan in plans]


def series_reasons(project: Project, scan_ids: list[int], extractor: str = "default") -> dict[int, str]:
    """scan id -> "series S2 Ax fMRI is the least certain (p = 0.52)" for units with several series.

    Uses the stored model (plain arrays) and the pool's standardisation; empty without a model.
    """
    from aldesk.app.features import load_features
    from aldesk.learning.models import from_arrays

    latest = project.models.latest()
    if not latest or not latest.get("arrays") or latest.get("extractor", extractor) != extractor:
        return {}
    _, X = load_features(project, extractor)
    mean = X.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = X.std(axis=0, dtype=np.float64).astype(np.float32)
    std[std < 1e-12] = 1.0
    model = from_arrays(latest["arrays"])
    set_id = _pooled_set(project, extractor)
    out: dict[int, str] = {}
    for scan_id in scan_ids:
        parts = project.units.series_features(set_id, scan_id) if set_id is not None else []
        if len(parts) < 2:
            continue
        V = (np.stack([v for _, v in parts]) - mean) / std
        P = np.clip(model.predict_proba(V), 1e-12, 1.0)
        entropy = -(P * np.log(P)).sum(axis=1)
        k = int(entropy.argmax())
        row = parts[k][0]
        name = f"S{row.number}" if row.number is not None else "a series"
        desc = f" {row.description}" if row.description else ""
        top = int(P[k].argmax())
        out[scan_id] = (f"series {name}{desc} is the least certain of {len(parts)} "
                        f"({project.classes[top]} {P[k, top]:.2f})")
    return out


def _pooled_set(project: Project, extractor: str) -> int | None:
    from aldesk.errors import AldeskError
    from aldesk.features.registry import get_extractor

    try:
        ext = get_extractor(extractor)
    except AldeskError:   # an extractor that needs options (onnx): no per-series reason
        return None
    return project.features.find_set(ext.name, pooled_version(ext.version))
