"""Project-level use cases: create, describe, find missing files, relink moved data."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from aldesk.errors import ProjectError
from aldesk.store import Project


def create_project(path: str | os.PathLike, classes: list[str], name: str | None = None,
                   unit: str = "image") -> Project:
    return Project.create(path, classes, name=name, unit=unit)


def scheduled_backup(path: str | os.PathLike, progress=None, should_stop=None) -> Path | None:
    """Worker body for the daily backup, on its own connection so the caller's thread never waits."""
    with Project.open(path) as project:
        return project.backup_if_due()


def missing_scans(project: Project) -> list[tuple[int, str]]:
    """(scan id, expected path) for every scan whose source file is no longer where it was imported from."""
    return [(sid, os.path.join(root, rel)) for sid, root, rel in project.scans.iter_paths()
            if not os.path.isfile(os.path.join(root, rel))]


def project_info(project: Project, *, check_files: bool = True) -> dict:
    problems = project.scans.problems()
    kinds: dict[str, int] = {}
    for p in problems:
        kinds[p["kind"]] = kinds.get(p["kind"], 0) + 1
    info = {
        "name": project.name,
        "path": str(project.path.resolve()),
        "project_id": project.project_id,
        "classes": project.classes,
        "scans": project.scans.count(),
        "unit": project.units.kind(),
        "units": project.scans.count(),
        **project.units.counts(),
        "files": project.scans.count() - project.units.series_units() + project.units.slice_count(),
        "labels": project.labels.count(),
        "annotators": [name for name, _ in project.labels.annotators()],
        "roots": list(project.scans.roots().values()),
        "modalities": {k or "(none)": v for k, v in project.scans.counts_by("modality").items()},
        "not_imported": kinds,
        "imports": len(project.scans.imports()),
        "status": project.status.describe(),
    }
    if check_files:
        info["missing_files"] = len(missing_scans(project))
    return info


@dataclass
class RelinkResult:
    old: str
    new: str | None
    found: int
    checked: int


def relink(project: Project, new_root: str | os.PathLike, *, sample: int = 50) -> list[RelinkResult]:
    """Point every imported folder whose files moved at its new place under ``new_root``.

    For each old folder, tries ``new_root`` itself, then ``new_root/<old folder name>``, then deeper
    tails of the old path; picks the first where most of a sample of its scans exist with the same size.
    """
    new_root = Path(os.path.abspath(new_root))
    if not new_root.is_dir():
        raise ProjectError(f"{new_root}: is not a folder; give the folder the scans were moved to")
    results = []
    for root_id, old in project.scans.roots().items():
        rels = project.scans.relpaths(root_id, limit=sample)
        if not rels:
            continue
        if sum(os.path.isfile(os.path.join(old, r)) for r in rels) == len(rels):
            results.append(RelinkResult(old, None, len(rels), len(rels)))  # not moved
            continue
        parts = Path(old).parts
        candidates = [new_root] + [new_root.joinpath(*parts[-k:]) for k in range(1, min(4, len(parts)))]
        best = None
        for cand in candidates:
            found = sum(os.path.isfile(cand / r) for r in rels)
            if found * 2 > len(rels) and (best is None or found > best[1]):
                best = (cand, found)
        if best is None:
            results.append(RelinkResult(old, None, 0, len(rels)))
            continue
        project.scans.set_root_path(root_id, str(best[0]))
        results.append(RelinkResult(old, str(best[0]), best[1], len(rels)))
    return results
