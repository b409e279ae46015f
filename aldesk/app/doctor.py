"""``aldesk doctor PROJECT``: the full health check of a project, and the way out of each finding.

Runs what opening cannot afford on a large project: ``PRAGMA integrity_check`` over every page and
``foreign_key_check``; compares the commit counter with the one recorded after the last commit (lost
-wal file); lists interrupted imports, leftover temporaries and the newest verified backup. Never
changes the project, except ``accept_loss=True``, which records that the user carries on without
commits that were lost (the counter is reset; everything still in the database is kept).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from aldesk.errors import ProjectError
from aldesk.store import PROJECT_DB_NAME, Project
from aldesk.store.backups import (BACKUP_DIR_NAME, accept_lost_commits, backup_commits, backup_side_store_missing,
                                  list_backups)
from aldesk.store.openlock import read_recorded_commits
from aldesk.store.preview_store import PREVIEW_STORE_NAME


def diagnose(path: str | os.PathLike) -> dict:
    """A JSON-ready report: ``ok`` (bool), ``problems`` and ``advice`` (lists of sentences), and facts."""
    path = Path(path)
    report: dict = {"project": str(path.resolve()), "ok": True, "problems": [], "advice": [],
                    "integrity": None, "foreign_key_errors": None,
                    "commits": {"database": None, "recorded": read_recorded_commits(path), "missing": 0},
                    "wal_bytes": _size(Path(str(path / PROJECT_DB_NAME) + "-wal")),
                    "interrupted_imports": 0, "labels": None, "backups": _backups(path)}
    try:
        project = Project.open(path, allow_damaged=True)
    except ProjectError as exc:
        report["problems"].append(f"cannot be opened: {exc}")
        _advise_restore(report, path)
        report["ok"] = False
        return report
    with project:
        health = project.health()
        damaged = project.status.damaged
    verdict = health["integrity"]
    report["integrity"] = "ok" if verdict == ["ok"] else verdict
    report["foreign_key_errors"] = health["foreign_key_errors"]
    report["labels"] = health["labels"]
    report["interrupted_imports"] = health["interrupted_imports"]
    have = report["commits"]["database"] = health["commits"]
    recorded = report["commits"]["recorded"]
    if recorded is not None and have < recorded:
        report["commits"]["missing"] = recorded - have
    if verdict != ["ok"]:
        report["problems"].append(f"damaged pages: {'; '.join(verdict[:5])}")
    if health["foreign_key_errors"]:
        report["problems"].append(f"{health['foreign_key_errors']} rows point at rows that do not exist (foreign_key_check)")
    if report["commits"]["missing"]:
        report["problems"].append(
            f"{report['commits']['missing']} committed changes are missing: the {PROJECT_DB_NAME}-wal file was "
            "deleted or damaged after they were saved, or an older copy was put in place of the database")
        report["advice"].append(f"if no backup holds them, carry on without them: `aldesk doctor {path} --accept-loss`")
    if damaged and not report["problems"]:
        report["problems"].append(damaged)
    if report["problems"]:
        report["ok"] = False
        _advise_restore(report, path)
    lacks = report["backups"].get("latest_side_store_missing") or {}
    if any(lacks.values()):
        report["advice"].append(f"the newest backup names previews or feature vectors that {BACKUP_DIR_NAME}/"
                                f"{PREVIEW_STORE_NAME} does not hold ({lacks}); a restore of it would make the previews "
                                f"again from the scans' files where they exist: take a new backup (`aldesk backup {path}`)")
    if report["interrupted_imports"]:
        report["advice"].append(f"{report['interrupted_imports']} import(s) were interrupted: run the same "
                                "`aldesk import` again to finish (what they committed is kept)")
    leftovers = sorted(p.name for p in (path / BACKUP_DIR_NAME).glob(".partial-*")) if (path / BACKUP_DIR_NAME).is_dir() else []
    report["backup_temporaries"] = leftovers
    return report


def accept_loss(path: str | os.PathLike) -> int:
    """Carry on without commits that were lost (see ``aldesk.store.backups.accept_lost_commits``)."""
    return accept_lost_commits(path)


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def _backups(path: Path) -> dict:
    backups = list_backups(path)
    if not backups:
        return {"count": 0, "latest": None, "latest_at": None, "latest_commits": None}
    newest = backups[0]
    commits = backup_commits(newest)
    lacks = backup_side_store_missing(newest)
    return {"count": len(backups), "latest": str(newest),
            "latest_at": datetime.fromtimestamp(newest.stat().st_mtime).isoformat(timespec="seconds"),
            "latest_commits": commits, "latest_side_store_missing": lacks}


def _advise_restore(report: dict, path: Path) -> None:
    if report["backups"]["count"]:
        report["advice"].insert(0, f"restore the newest backup ({Path(report['backups']['latest']).name}, "
                                f"{report['backups']['latest_at']}): `aldesk backup {path} --restore latest`; it says "
                                "which labels the backup lacks and keeps the damaged database aside")
    else:
        report["advice"].insert(0, "no backup exists: copy the whole project folder somewhere safe before anything else")
