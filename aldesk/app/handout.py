"""Hand-out: what a reader takes to an offline workstation, and how their work comes back.

The lead's round trip::

    aldesk package handout MASTER /media/usb/lee --annotator dr_lee --scans 200 --with-scans
    (dr_lee labels in /media/usb/lee with aldesk, offline)
    aldesk package export /media/usb/lee lee.aldpkg
    aldesk package import MASTER lee.aldpkg

The copy is a consistent copy of the master's database (SQLite backup API) with the same project id,
so its package merges back. When the project reads blind (setting ``blind_reading``, default on),
the copy holds no other reader's labels and no trained model (the model's guess is hidden before a
read, too). Never changes the master, except that ranking the next scans caches their features.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from aldesk.app.callbacks import Progress, ShouldStop, check_stop, never_stop, no_progress
from aldesk.errors import LearningError, ProjectError
from aldesk.store import Project
from aldesk.store.project import utc_now

HANDOUT_NOTE = "HANDOUT.txt"


@dataclass
class HandoutResult:
    out: Path
    annotator: str
    blind: bool
    scans: int
    files_copied: int
    labels_removed: int
    selection: str
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"out": str(self.out), "annotator": self.annotator, "blind": self.blind, "scans": self.scans,
                "files_copied": self.files_copied, "labels_removed": self.labels_removed,
                "selection": self.selection, "warnings": self.warnings}


def next_scans_for(project: Project, annotator: str, n: int, *, progress: Progress = no_progress,
                   should_stop: ShouldStop = never_stop) -> tuple[list[int], str]:
    """The next ``n`` scans of ``annotator``'s queue (``aldesk.app.review.annotator_queue``: requested
    reads, then scans needing another read mixed with unread scans in active-learning ranking order).
    Returns (scan ids, how the ranking was made)."""
    from aldesk.app.review import annotator_queue

    if n < 1:
        raise ProjectError(f"scans == {n}, must be >= 1")
    all_ids = project.scans.ids().tolist()
    try:
        from aldesk.app.modelling import rank

        ranking = rank(project, batch=n, progress=progress, should_stop=should_stop)
        first = [r.scan_id for r in ranking.batch]
        how = f"the reader's queue, unread scans in active-learning order ({ranking.strategy})"
    except (LearningError, ImportError) as exc:
        first, how = [], f"the reader's queue, unread scans in import order (no ranking: {exc})"
    order = list(dict.fromkeys(first + all_ids))
    return annotator_queue(project, annotator, order, limit=n), how


def handout(
    project: Project,
    out: str | os.PathLike,
    *,
    annotator: str,
    scans: int | None = None,
    with_scans: bool = False,
    progress: Progress = no_progress,
    should_stop: ShouldStop = never_stop,
) -> HandoutResult:
    """Prepare the folder ``out`` (new or empty) as ``annotator``'s offline copy of ``project``.

    scans : only the next N scans for this reader (``next_scans_for``); None keeps every scan.
    with_scans : copy the scan files into ``out/scans/`` and point the copy's folders there (after
        moving the copy, ``aldesk relink COPY COPY/scans`` finds them again).
    """
    out = Path(os.path.abspath(out))
    annotator = annotator.strip()
    if not annotator:
        raise ProjectError("annotator name is empty; give the reader's name, e.g. --annotator dr_lee")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ProjectError(f"{out}: already exists and is not empty; choose a new folder for the hand-out")
    from aldesk.app.review import review_settings

    blind = bool(review_settings(project)["blind_reading"])
    warnings: list[str] = []
    keep, selection = None, "all scans"
    if scans is not None:
        keep, selection = next_scans_for(project, annotator, scans, progress=progress, should_stop=should_stop)
        if len(keep) < scans:
            warnings.append(f"only {len(keep)} scans still need a read by {annotator}")
    sources = {}
    if with_scans:
        wanted = set(keep) if keep is not None else None
        sources = {sid: (root, rel) for sid, root, rel in project.scans.iter_paths()
                   if wanted is None or sid in wanted}
        missing = [os.path.join(r, p) for r, p in sources.values() if not os.path.isfile(os.path.join(r, p))]
        if missing:
            raise ProjectError(f"{len(missing)} scan files are missing (e.g. {missing[0]}); run `aldesk relink` "
                               "on the project first. Nothing was written")

    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    if partial.exists():
        shutil.rmtree(partial)
    try:
        project.packages.copy_database(partial)
        copy = Project.open(partial)
        try:
            removed = copy.packages.restrict_copy(keep_scans=keep, keep_annotator=annotator if blind else None,
                                                  drop_models=blind)
            copy.labels.annotator_id(annotator)
            files = 0
            if with_scans:
                files = _copy_scan_files(copy, sources, partial, out, progress, should_stop)
            copy.set_meta("handout", json.dumps({
                "from_project_id": project.project_id, "from_path": str(project.path.resolve()),
                "annotator": annotator, "created": utc_now(), "blind": blind, "scans": copy.scans.count(),
                "with_scans": with_scans, "selection": selection}))
            n_scans = copy.scans.count()
        finally:
            copy.close()
        (partial / HANDOUT_NOTE).write_text(_note(project, annotator, out, blind, n_scans, with_scans), encoding="utf-8")
        if out.exists():
            out.rmdir()
        os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return HandoutResult(out, annotator, blind, n_scans, files, removed["labels"], selection, warnings)


def _copy_scan_files(copy: Project, sources: dict, partial: Path, final: Path, progress: Progress,
                     should_stop: ShouldStop) -> int:
    """Copy each scan file to scans/<folder name>/<relpath> and relink the copy's roots there."""
    roots = copy.scans.roots()
    names: dict[int, str] = {}
    used: set[str] = set()
    for rid, rpath in roots.items():
        base = Path(rpath).name or f"root{rid}"
        name, k = base, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        names[rid] = name
    root_of = {rpath: rid for rid, rpath in roots.items()}
    for i, (sid, (root, rel)) in enumerate(sorted(sources.items())):
        check_stop(should_stop, "hand-out")
        dst = partial / "scans" / names[root_of[root]] / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(root, rel), dst)
        progress(i + 1, len(sources), "copying scans")
    for rid in roots:
        copy.scans.set_root_path(rid, str(final / "scans" / names[rid]))
    return len(sources)


def _note(project: Project, annotator: str, out: Path, blind: bool, n_scans: int, with_scans: bool) -> str:
    return (
        f"aldesk hand-out for {annotator} from project {project.name!r} ({project.project_id})\n"
        f"{n_scans} scans; {'blind reading: no other reader labels or model guesses' if blind else 'not blind'}; "
        f"{'scan files included under scans/' if with_scans else 'scan files not included'}.\n\n"
        f"1. Open this folder with aldesk and label as {annotator}.\n"
        "   If the folder was moved: aldesk relink THIS_FOLDER THIS_FOLDER/scans\n"
        "2. When done: aldesk package export THIS_FOLDER work.aldpkg\n"
        "3. The lead merges it: aldesk package import MASTER_PROJECT work.aldpkg\n"
    )
