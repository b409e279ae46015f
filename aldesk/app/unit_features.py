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

import numpy as np

from aldesk.app.callbacks import Progress, ShouldStop, check_stop, never_stop, no_progress
from aldesk.errors import InvalidScanError, LearningError
from aldesk.features.pooling import pool_mean_max, pooled_version, sample_slices
from aldesk.store import Project

PREVIEW_SIZE = 128
WRITE_EVERY = 64


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


def extract_unit_features(project: Project, ext, *, progress: Progress = no_progress,
                          should_stop: ShouldStop = never_stop) -> tuple[int, int, int]:
    """Pooled vectors for every unit the cache lacks. ``ext`` is fitted already. Returns (set id, computed, cached)."""
    from aldesk.app.units import unit_view

    set_id, _ = unit_feature_set(project, ext)
    store = project.features
    missing = store.missing_scan_ids(set_id).tolist()
    total = project.scans.count()
    cached = total - len(missing)
    progress(cached, total, f"{ext.name}: {cached} cached")
    ids, rows, series_ids, series_rows = [], [], [], []

    def flush() -> None:
        if ids:
            X = np.stack(rows)
            if not np.all(np.isfinite(X)):
                raise LearningError(f"extractor {ext.name} produced non-finite values; this is a bug, please report it")
            store.put(set_id, np.array(ids, dtype=np.int64), X)
            ids.clear(), rows.clear()
        if series_ids:
            project.units.put_series_features(set_id, list(series_ids), np.stack(series_rows))
            series_ids.clear(), series_rows.clear()

    for done, scan_id in enumerate(missing, start=1):
        check_stop(should_stop, "feature extraction")
        view = unit_view(project, scan_id)
        if view is None:
            f = ext.transform([project.scans.preview(scan_id)])[0]
            vector = np.concatenate([f, f]).astype(np.float32)
        else:
            all_feats = []
            for s, row in zip(view.series, project.units.series(scan_id)):
                images = s.stacks[0].images if s.stacks else []
                previews = []
                for k in sample_slices(len(images)):
                    path, frame = images[k]
                    try:
                        previews.append(slice_preview(path, frame))
                    except InvalidScanError:
                        continue   # a slice that no longer reads: pool the others
                if not previews:
                    continue
                F = np.asarray(ext.transform(previews), dtype=np.float32)
                all_feats.append(F)
                series_ids.append(row.id)
                series_rows.append(pool_mean_max(F))
            if not all_feats:   # nothing readable: the unit's stored preview stands in
                all_feats = [np.asarray(ext.transform([project.scans.preview(scan_id)]), dtype=np.float32)]
            vector = pool_mean_max(np.concatenate(all_feats))
        ids.append(scan_id)
        rows.append(vector)
        if len(ids) >= WRITE_EVERY:
            flush()
        progress(cached + done, total, ext.name)
    flush()
    return set_id, len(missing), cached


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
