"""The reader is never refused: a label that cannot be committed at once waits, durably, in the journal."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aldesk.app import labelling
from aldesk.store import Project
from aldesk.store.journal import JOURNAL_NAME
from tests.store.test_label_cost import _add_scans

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def proj(tmp_path):
    p = Project.create(tmp_path / "p", ["normal", "pneumonia"])
    ids = _add_scans(p, 20)
    yield p, ids
    p.close()


class _Writer:
    """Another connection holding the project's write lock, as an import batch would."""

    def __init__(self, path: Path):
        self.conn = sqlite3.connect(path / "project.sqlite", isolation_level=None)
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self):
        self.conn.execute("COMMIT")
        self.conn.close()


def _values(p, scan_id):
    return [(l.annotator, l.value) for l in p.labels.history(scan_id)]


def test_a_label_given_while_another_process_writes_is_journaled_then_written(proj):
    p, ids = proj
    writer = _Writer(p.path)
    try:
        rec = labelling.record_read(p, ids[0], "dr_a", "pneumonia", note="left base")
        assert rec.pending
        assert (p.path / JOURNAL_NAME).stat().st_size > 0
        assert _values(p, ids[0]) == []
        assert labelling.flush_pending(p) == 0  # still locked: nothing lost, nothing written
        assert [e["id"] for e in labelling.pending_labels(p)] == [rec.label_id]
    finally:
        writer.release()
    assert labelling.flush_pending(p) == 1
    assert labelling.pending_labels(p) == []
    row = p.labels.get(rec.label_id)
    assert row is not None and (row.annotator, row.value, row.note) == ("dr_a", "pneumonia", "left base")


def test_the_next_write_writes_the_journal_first_keeping_the_readers_order(proj):
    p, ids = proj
    writer = _Writer(p.path)
    first = labelling.record_read(p, ids[1], "dr_a", "pneumonia")
    writer.release()
    second = labelling.record_read(p, ids[1], "dr_a", "normal")  # the lock is free: both are written, in order
    assert first.pending and not second.pending
    assert _values(p, ids[1]) == [("dr_a", "pneumonia"), ("dr_a", "normal")]
    assert p.labels.current_for_scan(ids[1])[0].value == "normal"
    assert labelling.pending_labels(p) == []


def test_a_label_file_writes_the_journal_too(proj, tmp_path):
    p, ids = proj
    writer = _Writer(p.path)
    pending = labelling.record_read(p, ids[2], "dr_b", "normal")
    writer.release()
    p.labels.add_many([{"scan_id": ids[3], "annotator_id": p.labels.annotator_id("dr_c"), "value": "normal"}],
                      source="csv", chunk=1)
    assert pending.pending and p.labels.get(pending.label_id) is not None
    assert labelling.pending_labels(p) == []


def test_replay_is_idempotent_by_label_id(proj):
    """A crash after the commit but before the journal was emptied: replaying again adds nothing."""
    p, ids = proj
    writer = _Writer(p.path)
    rec = labelling.record_read(p, ids[4], "dr_a", "pneumonia")
    saved = (p.path / JOURNAL_NAME).read_text()
    writer.release()
    labelling.flush_pending(p)
    (p.path / JOURNAL_NAME).write_text(saved)  # as if the journal had not been emptied
    assert labelling.flush_pending(p) == 1
    assert [l.id for l in p.labels.history(ids[4])] == [rec.label_id]


def test_undo_of_a_pending_label_takes_it_out_of_the_journal(proj):
    p, ids = proj
    labelling.record_read(p, ids[5], "dr_a", "normal")
    writer = _Writer(p.path)
    try:
        rec = labelling.record_read(p, ids[5], "dr_a", "pneumonia")
        assert rec.pending
        labelling.undo_label(p, rec.label_id)
        assert labelling.pending_labels(p) == []
    finally:
        writer.release()
    assert p.labels.current_for_scan(ids[5])[0].value == "normal"


def test_a_torn_last_line_is_ignored(proj):
    p, ids = proj
    writer = _Writer(p.path)
    rec = labelling.record_read(p, ids[6], "dr_a", "normal")
    writer.release()
    with open(p.path / JOURNAL_NAME, "a") as fh:
        fh.write('{"id": "torn", "scan_id": ')  # power cut mid-append: never acknowledged
    assert [e["id"] for e in labelling.pending_labels(p)] == [rec.label_id]
    assert labelling.flush_pending(p) == 1 and p.labels.get(rec.label_id) is not None


def test_a_bad_value_is_still_refused_at_once(proj):
    p, ids = proj
    with pytest.raises(Exception, match="not a class of this project"):
        labelling.record_read(p, ids[0], "dr_a", "maybe")


def test_gui_style_labelling_beside_writers_in_other_processes_refuses_nothing(proj):
    """Two other processes write in turns (a label file in chunks, import-like batches holding the lock
    0.3 s) while this one labels like the reading screen: every label is saved or pending, none refused,
    and once the writers stop every label is in the project."""
    p, ids = proj
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from aldesk.store import Project
        p = Project.open({str(p.path)!r})
        who = sys.argv[1]
        end = time.monotonic() + 4.0
        ids = [r[0] for r in p.conn.execute("SELECT id FROM scans ORDER BY id")]
        aid = p.labels.annotator_id(who)
        i = 0
        while time.monotonic() < end:
            if who == "batch":
                with p.transaction() as c:      # an import batch, longer than the reader waits
                    c.execute("UPDATE meta SET value = value WHERE key = 'name'")
                    time.sleep(0.3)
            else:
                p.labels.add_many([{{"scan_id": ids[(i + k) % len(ids)], "annotator_id": aid,
                                    "value": ("normal", "pneumonia")[(i + k) % 2]}} for k in range(40)],
                                  source="csv", chunk=10)
            i += 1
            time.sleep(0.01)
        p.close()
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, who], cwd=REPO) for who in ("batch", "labelfile")]
    try:
        time.sleep(0.5)
        given = []
        for i in range(30):
            scan = ids[i % len(ids)]
            value = ("normal", "pneumonia")[i % 2]
            rec = labelling.record_read(p, scan, "dr_gui", value)  # raises if refused
            given.append((scan, value, rec))
            time.sleep(0.05)
    finally:
        for proc in procs:
            assert proc.wait(timeout=60) == 0
    labelling.flush_pending(p, wait_ms=5000)
    assert labelling.pending_labels(p) == []
    assert sum(r.pending for _, _, r in given) > 0, "the writers never held the lock: the test proved nothing"
    latest = {}
    for scan, value, _ in given:
        latest[scan] = value
    mine = {l.scan_id: l.value for l in p.labels.current("dr_gui")}
    assert mine == latest
