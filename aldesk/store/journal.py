"""Labels a reader gave while another process held the project's write lock, kept durably until written.

The reader is never refused: when the label cannot be committed at once (a long import, label file or
merge is writing), it is appended here -- one JSON line, flushed and fsynced before the screen says
"saved (pending)" -- and written into the database by the next write that gets the lock, in any process,
before that write's own rows (so the order of a reader's labels is kept). Replaying is idempotent: an
entry whose label id is already in the database is skipped, so a crash between the database commit and
the journal truncation repeats nothing.

The file lives in the project folder (``pending-labels.jsonl``) beside a lock file; appends and replays
hold an exclusive ``flock`` on the lock file, so two processes never lose each other's entries.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one writer per workstation, no cross-process lock
    fcntl = None

JOURNAL_NAME = "pending-labels.jsonl"
LOCK_NAME = "pending-labels.lock"


class LabelJournal:
    def __init__(self, project_dir: Path):
        self.path = Path(project_dir) / JOURNAL_NAME
        self._lock_path = Path(project_dir) / LOCK_NAME

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._lock_path, "a") as lock:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def has_entries(self) -> bool:
        """Cheap (one stat): called before every label write."""
        try:
            return self.path.stat().st_size > 0
        except OSError:
            return False

    def append(self, entry: dict) -> None:
        """Durably add one label (fsynced, the folder too when the file is new) before returning."""
        line = json.dumps(entry, separators=(",", ":"), ensure_ascii=True) + "\n"
        with self._locked():
            new = not self.path.exists()
            with open(self.path, "a", encoding="ascii") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            if new:
                _fsync_dir(self.path.parent)

    def entries(self) -> list[dict]:
        """Pending labels, oldest first. A torn last line (power cut mid-append, never acknowledged) is
        ignored."""
        try:
            text = self.path.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and "id" in entry:
                out.append(entry)
        return out

    @contextmanager
    def draining(self) -> Iterator[list[dict]]:
        """Hold the journal while the caller writes its entries (and commits them, inside the block);
        emptied only when the block succeeds. Never take this while holding the database's write lock:
        a reader's append waits for this lock, and it takes the database lock first (no cycle)."""
        with self._locked():
            entries = self.entries()
            yield entries
            if entries:
                with open(self.path, "w", encoding="ascii") as fh:
                    fh.flush()
                    os.fsync(fh.fileno())

    def remove(self, label_id: str) -> bool:
        """Take a pending label back (undo before it was written). True if it was pending."""
        with self._locked():
            entries = self.entries()
            keep = [e for e in entries if e.get("id") != label_id]
            if len(keep) == len(entries):
                return False
            tmp = self.path.with_name(self.path.name + ".writing")
            with open(tmp, "w", encoding="ascii") as fh:
                fh.writelines(json.dumps(e, separators=(",", ":")) + "\n" for e in keep)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            return True


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot sync a directory; the file itself is synced
    finally:
        os.close(fd)
