"""A generated project for the "when can I stop?" tests, read through its queue like a reader would."""

from __future__ import annotations

import hashlib

import numpy as np

from aldesk.app.labelling import record_label
from aldesk.store import Project

CLASSES = ["normal", "pneumonia"]


def make_project(path, n=240, seed=0) -> tuple[Project, dict[int, str]]:
    """n scan rows with 32x32 previews: 'pneumonia' ones carry a bright blob of random size (classes
    overlap a little). Returns the open project and its answer key (scan id -> class)."""
    from aldesk.store.project import utc_now

    rng = np.random.default_rng(seed)
    p = Project.create(path, CLASSES)
    root_id, _ = p.scans.root_for(path)
    truth = rng.integers(0, 2, n)
    yy, xx = np.mgrid[:32, :32]
    with p.transaction():
        for i in range(n):
            img = rng.normal(100, 40, (32, 32))
            if truth[i]:
                r = rng.uniform(1, 6)
                img += 30 * (((yy - 16) ** 2 + (xx - 16) ** 2) < r * r)
            uid = hashlib.sha1(f"{seed}-{i}".encode()).hexdigest()
            p.scans.insert_scan({"uid": "sha:" + uid, "pixel_hash": uid, "root_id": root_id,
                                 "relpath": f"s{i:04d}.png", "file_size": 1, "file_mtime": 0.0, "format": "png",
                                 "modality": "CR", "rows": 32, "columns": 32, "frames": 1, "samples": 1,
                                 "bits_allocated": 8, "bits_stored": 8, "signed": 0, "photometric": "MONOCHROME2",
                                 "windows": "[]", "imported_at": utc_now()},
                                np.clip(img, 0, 255).astype(np.uint8))
    ids = p.scans.ids()
    return p, {int(s): CLASSES[int(t)] for s, t in zip(ids, truth)}


def read_through_queue(path, rounds: int = 8) -> None:
    """20 seed labels, then ``rounds`` retrains of the queue, the reader labelling its first 10 scans
    (audit scans included) each time, and a final retrain: ``rounds + 2`` models, 20 + 10·rounds labels."""
    from aldesk.app.worklist import refresh_worklist

    p, key = make_project(path)
    for s in list(key)[:20]:
        record_label(p, s, "seed", key[s])
    for _ in range(rounds):
        wl = refresh_worklist(p, "dr_a", folds=2)
        for s in wl.to_label[:10].tolist():
            record_label(p, int(s), "dr_a", key[int(s)])
    refresh_worklist(p, "dr_a", folds=2)
    p.close()
