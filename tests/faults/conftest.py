"""Fixtures for the fault tests: a warm helper process that forks workers for SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def wait_for_writer(db: Path, timeout: float) -> bool:
    """Poll until another connection holds the write lock (True) or ``timeout`` passes (False)."""
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
            except sqlite3.OperationalError:  # "database is locked": the worker is writing
                return True
            time.sleep(0.0005)
        return False
    finally:
        conn.close()


class Zygote:
    """Client of tests/faults/zygote.py: ``start(...)`` a worker, ``kill(pid)``, ``wait(pid)``."""

    def __init__(self) -> None:
        # module-scoped, so started before the per-test environment: no detached backups from its workers
        env = os.environ | {"ALDESK_NO_BACKGROUND_BACKUP": "1"}
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("zygote.py"))], cwd=REPO, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert self._read() == {"ready": True}

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the zygote helper process died")
        return json.loads(line)

    def _send(self, cmd: dict) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def start(self, **cmd) -> int:
        return int(self._send(cmd)["pid"])

    def wait(self, pid: int) -> dict:
        return self._send({"wait": pid})

    def kill_and_wait(self, pid: int) -> dict:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.wait(pid)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def zygote():
    z = Zygote()
    yield z
    z.close()
