"""Package merge under SIGKILL (issue 8, point 3): all or nothing, however the merge is interrupted.

Two copies of one project (the hub and a reader's workstation) each gather labels; the workstation's
labels (with history: changed labels) go into a package. ``aldesk package import`` is then killed with
SIGKILL at random moments, each time on a fresh copy of the hub: afterwards the hub passes
``PRAGMA integrity_check`` and its labels are exactly as before the merge or exactly as after a
complete merge, never in between.
"""

from __future__ import annotations

import random
import shutil
import sys
import time
from pathlib import Path

import pytest

from aldesk.store import PROJECT_DB_NAME, Project
from tests.conftest import kill_rounds
from tests.faults.conftest import wait_for_writer

REPO = Path(__file__).resolve().parents[2]
N_SCANS = 300


def _labels_state(project_path: Path) -> tuple:
    with Project.open(project_path) as p:
        assert p.integrity_check() == "ok"
        labels = sorted(p.conn.execute(
            "SELECT l.id, l.scan_id, a.name, l.value, l.note, l.created_at, COALESCE(l.replaced_by, '') "
            "FROM labels l JOIN annotators a ON a.id = l.annotator_id"))
        annotators = sorted(r[0] for r in p.conn.execute("SELECT name FROM annotators"))
        current = p.conn.execute("SELECT COUNT(*) FROM labels WHERE replaced_by IS NULL").fetchone()[0]
    return tuple(labels), tuple(annotators), current


def _label(project: Project, reader: str, picks, classes, rng) -> None:
    ann = project.labels.annotator_id(reader)
    ids = project.scans.ids()
    project.labels.add_many([{"scan_id": int(ids[i]), "annotator_id": ann, "value": rng.choice(classes)}
                             for i in picks], source="gui")


def _build(tmp: Path) -> tuple[Path, Path]:
    """The hub project (with its own labels) and a package of ~550 labels from a workstation copy."""
    sys.path.insert(0, str(REPO))
    from aldesk.app.packages import export_package
    from tests.benchmarks.synthetic_project import build

    rng = random.Random(4)
    hub = build(tmp / "hub", N_SCANS, seed_labels=30, progress=lambda *_: None)
    ws = tmp / "workstation"
    shutil.copytree(hub, ws)
    with Project.open(ws) as p:
        classes = p.classes
        _label(p, "ws_reader_a", range(0, 250), classes, rng)
        _label(p, "ws_reader_b", range(100, 300), classes, rng)
        _label(p, "ws_reader_a", range(0, 100), classes + ["unsure"], rng)  # changes: history rows
    with Project.open(hub) as p:
        _label(p, "hub_reader", range(50, 200), classes, rng)
    package = tmp / "ws.aldpkg"
    with Project.open(ws) as p:
        export_package(p, package)
    return hub, package


@pytest.mark.parametrize("kills", kill_rounds(8, 50))
def test_sigkill_during_package_merge_is_all_or_nothing(tmp_path, zygote, kills):
    rng = random.Random(8)
    hub, package = _build(tmp_path)
    before = _labels_state(hub)

    # one complete merge: the "after" state, and how long a merge takes from start to exit
    done = tmp_path / "merged"
    shutil.copytree(hub, done)
    t = time.perf_counter()
    pid = zygote.start(run="merge", project=str(done), package=str(package))
    assert zygote.wait(pid)["exit"] == 0
    full = time.perf_counter() - t
    after = _labels_state(done)
    assert len(after[0]) >= len(before[0]) + 500, "the package should add a few hundred labels"

    outcomes = {"unchanged": 0, "merged": 0}
    killed = in_transaction = 0
    for i in range(kills):
        work = tmp_path / f"round-{i}"
        shutil.copytree(hub, work)
        pid = zygote.start(run="merge", project=str(work), package=str(package))
        if i % 2:
            time.sleep(rng.uniform(0.0, full * 1.3))
        else:  # aim at the write transaction itself: kill once the merge holds the write lock
            in_transaction += wait_for_writer(work / PROJECT_DB_NAME, full * 3)
            time.sleep(rng.uniform(0.0, 0.01))
        status = zygote.kill_and_wait(pid)
        killed += status["killed"]
        state = _labels_state(work)
        if state == before:
            outcomes["unchanged"] += 1
        elif state == after:
            outcomes["merged"] += 1
        else:
            raise AssertionError(f"round {i}: half a merge is in the project ({len(state[0])} label rows; "
                                 f"before {len(before[0])}, after {len(after[0])})")
        # a re-run always completes the merge, once
        pid = zygote.start(run="merge", project=str(work), package=str(package))
        assert zygote.wait(pid)["exit"] == 0
        assert _labels_state(work) == after
        shutil.rmtree(work)
    assert killed >= kills // 2, f"only {killed} of {kills} kills landed before the merge ended"
    print(f"merge {full:.2f} s; {killed} kills mid-run, {in_transaction} while writing; outcomes {outcomes}")
    assert outcomes["unchanged"] > 0, outcomes
    assert in_transaction >= kills // 4, f"only {in_transaction} kills landed while the merge held the write lock"
