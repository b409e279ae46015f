"""Import under faults: SIGKILL at random moments, and mutated real sample files (issue 8, points 3 and 5).

* An import worker is killed with SIGKILL at random moments, over and over, while the scan folder
  grows: after every kill the project passes ``PRAGMA integrity_check``, every committed scan row has
  its preview, no scan is listed twice, and a final re-run imports everything exactly once.
* hypothesis mutates real DICOM samples (truncation, byte flips, huge declared Rows/Columns, wrong
  element lengths): the importer never raises, accounts for every file with a reason and stays
  within a memory bound (speed is a benchmark's business, not a test's: tests/benchmarks/).
"""

from __future__ import annotations

import random
import sqlite3
import time

import pytest

from aldesk.store import PROJECT_DB_NAME, Project
from tests.app.conftest import write_png
from tests.conftest import kill_rounds
from tests.faults.conftest import wait_for_writer

NEW_FILES_PER_ROUND = 25


def _check_after_kill(project_path) -> int:
    """Integrity, previews, no duplicates; returns the number of committed scans."""
    with Project.open(project_path) as p:
        assert p.integrity_check() == "ok"
        c = p.conn
        n = c.execute("SELECT COUNT(*) FROM scans").fetchone()[0]
        orphans = c.execute("SELECT COUNT(*) FROM scans s LEFT JOIN previews v ON v.scan_id = s.id "
                            "WHERE v.scan_id IS NULL").fetchone()[0]
        assert orphans == 0, f"{orphans} committed scans without a preview"
        dup = c.execute("SELECT COUNT(*) FROM (SELECT pixel_hash FROM scans GROUP BY pixel_hash HAVING COUNT(*) > 1)"
                        ).fetchone()[0]
        assert dup == 0, "a scan was imported twice"
        return n


@pytest.mark.parametrize("kills", kill_rounds(12, 50))
def test_sigkill_during_import_at_random_moments(tmp_path, zygote, kills):
    rng = random.Random(8)
    folder = tmp_path / "scans"
    n_files = 0

    def add_files(k: int) -> None:
        nonlocal n_files
        for _ in range(k):
            write_png(folder / f"{n_files // 100:02d}" / f"img_{n_files:04d}.png", seed=n_files, size=24)
            n_files += 1

    project = tmp_path / "p"
    Project.create(project, ["normal", "pneumonia"]).close()
    add_files(60)
    # how long one round takes uninterrupted, to spread the kills over it
    probe = tmp_path / "probe"
    Project.create(probe, ["normal", "pneumonia"]).close()
    t = time.perf_counter()
    pid = zygote.start(run="import", project=str(probe), folder=str(folder), batch_files=4)
    assert zygote.wait(pid)["exit"] == 0
    full = time.perf_counter() - t

    killed_mid_run, counts = 0, []
    writing = 0
    for i in range(kills):
        add_files(NEW_FILES_PER_ROUND)
        pid = zygote.start(run="import", project=str(project), folder=str(folder), batch_files=4)
        if i % 2:
            time.sleep(rng.uniform(0.0, full * 1.2))
        else:  # aim at a write transaction: kill once the import holds the write lock
            writing += wait_for_writer(project / PROJECT_DB_NAME, full * 3)
            time.sleep(rng.uniform(0.0, 0.005))
        status = zygote.kill_and_wait(pid)
        killed_mid_run += status["killed"]
        counts.append(_check_after_kill(project))
    assert killed_mid_run >= kills // 2, f"only {killed_mid_run} of {kills} kills landed before the import ended"
    assert writing >= kills // 4, f"only {writing} kills landed while the import held the write lock"
    assert counts == sorted(counts), "committed scans went missing after a kill"

    from aldesk.app.importer import import_paths

    with Project.open(project) as p:
        s = import_paths(p, [folder], jobs=1)
        assert s.failed == 0 and s.duplicates == 0 and s.skipped == 0
        assert s.imported + s.unchanged == n_files
        assert p.scans.count() == n_files
        rels = [r[0] for r in p.conn.execute("SELECT relpath FROM scans")]
        assert len(set(rels)) == n_files
        assert p.integrity_check() == "ok"
    assert sqlite3.connect(project / PROJECT_DB_NAME).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# --------------------------------------------------------------------------- fuzzed real samples
SAMPLES = [
    "DICOMSamples-jl/CT_Explicit_Little.dcm",     # uncompressed CT 512 x 512
    "DICOMSamples-jl/MR_Implicit_Little.dcm",     # implicit VR
    "dcm_qa_ts/4.dcm",                            # RLE
    "dcm_qa_ts/5.dcm",                            # JPEG lossless
    "pydicom-data/693_J2KR.dcm",                  # JPEG 2000
    "pydicom-data/OBXXXX1A_rle_2frame.dcm",       # palette colour, 2 frames, RLE
]
FILES_PER_EXAMPLE = 4
PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"


def _huge(data: bytes, draw_value: int, what: str) -> bytes:
    """Re-write the header with a huge declared size (pixel data unchanged)."""
    import io

    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    if what == "rows_cols":
        ds.Rows = ds.Columns = 65535
    elif what == "frames":
        ds.NumberOfFrames = str(draw_value)
    else:
        ds.BitsAllocated, ds.SamplesPerPixel = 64, 4
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=False)
    return out.getvalue()


def _mutate(data: bytes, kind: str, a: float, b: int) -> bytes:
    n = len(data)
    if kind == "truncate":
        return data[: int(n * a)]
    if kind == "flip":
        buf = bytearray(data)
        rng = random.Random(b)
        for _ in range(1 + b % 64):
            buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
        return bytes(buf)
    if kind == "flip_header":  # the first KB holds the meta header and the image attributes
        buf = bytearray(data)
        rng = random.Random(b)
        for _ in range(1 + b % 16):
            buf[rng.randrange(min(n, 1500))] = rng.randrange(256)
        return bytes(buf)
    if kind == "pixel_length":  # the Pixel Data element's length field says something else
        at = data.rfind(PIXEL_DATA_TAG)
        if at < 0:
            return data[: n // 2]
        buf = bytearray(data)
        # explicit VR OB/OW: tag, VR, 2 reserved bytes, 4-byte length; implicit: tag, 4-byte length
        pos = at + 8 if data[at + 4:at + 6] in (b"OB", b"OW") else at + 4
        buf[pos:pos + 4] = (b * 2654435761 % 2**32).to_bytes(4, "little")
        return bytes(buf)
    if kind in ("rows_cols", "frames", "bits"):
        return _huge(data, 10**9 + b, kind)
    raise AssertionError(kind)


def _files_strategy():
    from hypothesis import strategies as st

    one = st.tuples(st.sampled_from(SAMPLES),
                    st.sampled_from(["truncate", "flip", "flip_header", "pixel_length", "rows_cols", "frames", "bits"]),
                    st.floats(0.0, 1.0), st.integers(0, 2**31))
    return st.lists(one, min_size=FILES_PER_EXAMPLE, max_size=FILES_PER_EXAMPLE)


def test_import_of_mutated_real_samples_never_crashes(dicom_samples):
    import resource
    import tempfile
    import tracemalloc
    from pathlib import Path

    from hypothesis import HealthCheck, given, settings

    from aldesk.app.importer import import_paths

    originals = {name: (dicom_samples / name).read_bytes() for name in SAMPLES if (dicom_samples / name).is_file()}
    if len(originals) < 3:
        pytest.skip("too few of the real DICOM samples are present")
    seen: dict = {"examples": 0, "failed": 0, "imported": 0, "kinds": set(), "codes": set()}

    @settings(max_examples=12, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(_files_strategy())
    def run(spec):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "fuzz"
            folder.mkdir()
            for i, (name, kind, a, b) in enumerate(spec):
                if name not in originals:
                    name = next(iter(originals))
                (folder / f"{i}_{kind}.dcm").write_bytes(_mutate(originals[name], kind, a, b))
            project = Project.create(Path(tmp) / "p", ["normal", "pneumonia"])
            try:
                tracemalloc.start()
                s = import_paths(project, [folder], jobs=2)
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                assert s.status == "done"
                assert s.files == len(spec), s.to_json()
                assert s.imported + len(s.problems) == len(spec)
                for p in s.problems:
                    assert p["reason"] and p["code"] and Path(p["path"]).parent == folder, p
                assert peak < 200 * 2**20, f"import process traced {peak / 2**20:.0f} MiB"
                # the worker processes have ended: their peak resident memory stays bounded
                children_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
                assert children_mib < 1024, f"a worker reached {children_mib:.0f} MiB"
                assert project.integrity_check() == "ok"
                assert project.scans.count() == s.imported
            finally:
                if tracemalloc.is_tracing():
                    tracemalloc.stop()
                project.close()
            seen["kinds"].update(k for _, k, _, _ in spec)
            seen["codes"].update(p["code"] for p in s.problems)
            seen["examples"] += 1
            seen["failed"] += s.failed + s.skipped
            seen["imported"] += s.imported

    run()
    print(seen)
    assert seen["examples"] >= 12 and seen["failed"] > 0 and len(seen["kinds"]) >= 5
