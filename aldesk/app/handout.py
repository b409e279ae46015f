"""Hand-out: what a reader takes to an offline workstation, and how their work comes back.

The lead's round trip::

    aldesk package handout MASTER /media/usb/lee --annotator dr_lee --scans 200 --deidentified
    (dr_lee labels in /media/usb/lee with aldesk, offline)
    aldesk package export /media/usb/lee lee.aldpkg
    aldesk package import MASTER lee.aldpkg

The copy is a copy of the master's database (SQLite backup API) with the same project id, thinned
and scrubbed: no key of the master, no patient-key salt (patient keys re-keyed so they cannot be
reversed), no source path in its import log, and every scan file it carries under a pseudonymous
name. A hand-out is identified or de-identified by the lead's explicit choice: a de-identified one
copies DICOM files de-identified (PS3.15 basic profile, :mod:`aldesk.imaging.deid`) and rasters
with pixels only; an identified one carries the original files (or their paths) and says so.

The master records the hand-out (reader, role, the scans issued) with a fresh secret that only the
copy shares: the copy's packages are signed with it and the master merges only that reader's reads
of those scans (:mod:`aldesk.app.packages`). When the project reads blind (setting
``blind_reading``, default on), the copy holds no other reader's labels and no trained model.
Never changes the master, except that ranking the next scans caches their features and the
hand-out is recorded.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from aldesk.app.callbacks import Progress, ShouldStop, check_stop, never_stop, no_progress
from aldesk.app.packages import handout_info
from aldesk.errors import InvalidScanError, LearningError, ProjectError
from aldesk.store import Project
from aldesk.store.annotations import ROLES
from aldesk.store.packages import scan_ref

HANDOUT_NOTE = "HANDOUT.txt"
IDENTIFIED_WARNING = ("IDENTIFIED hand-out: the copy carries the original scans (or their paths) with every "
                      "patient identifier they hold; keep it on an encrypted disk and hand it over in person")


@dataclass
class HandoutResult:
    out: Path
    annotator: str
    blind: bool
    scans: int
    files_copied: int
    labels_removed: int
    selection: str
    deidentified: bool = True
    role: str = "annotator"
    handout_id: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"out": str(self.out), "annotator": self.annotator, "role": self.role, "blind": self.blind,
                "deidentified": self.deidentified, "handout_id": self.handout_id, "scans": self.scans,
                "files_copied": self.files_copied, "labels_removed": self.labels_removed,
                "selection": self.selection, "warnings": self.warnings}


def handout_reader(project: Project) -> str | None:
    """The reader a hand-out copy was issued to (its reads must be recorded under this name), or
    None when ``project`` is not a hand-out copy."""
    info = handout_info(project)
    name = (info or {}).get("annotator")
    return name.strip() if isinstance(name, str) and name.strip() else None


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

        from aldesk.app.progress import mix_audit

        ranking = rank(project, batch=n, progress=progress, should_stop=should_stop)
        # offline readers read audit scans too (unmarked), so their labels keep the accuracy estimate honest
        first, _ = mix_audit(project, annotator, [r.scan_id for r in ranking.batch], project.scans.ids(),
                             n_labels=ranking.n_labelled)
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
    deidentified: bool | None,
    scans: int | None = None,
    with_scans: bool = False,
    role: str | None = None,
    progress: Progress = no_progress,
    should_stop: ShouldStop = never_stop,
) -> HandoutResult:
    """Prepare the folder ``out`` (new or empty) as ``annotator``'s offline copy of ``project``.

    deidentified : the lead's explicit choice. True: the scan files are copied de-identified under
        pseudonymous names (``with_scans`` implied). False: identified; ``with_scans`` copies the
        original files (pseudonymous names), else the copy reads them where they are.
    scans : only the next N scans for this reader (``next_scans_for``); None keeps every scan.
    role : the reader's role if they are new to the project (default annotator); an existing
        reader keeps theirs. Only a reviewer's or lead's hand-out may send adjudications back.
    """
    if deidentified is None:
        raise ProjectError("choose what the hand-out carries: de-identified scans (--deidentified) or the "
                           "identified originals (--identified)")
    out = Path(os.path.abspath(out))
    annotator = annotator.strip()
    if not annotator:
        raise ProjectError("annotator name is empty; give the reader's name, e.g. --annotator dr_lee")
    if role is not None and role not in ROLES:
        raise ProjectError(f"role == {role!r}, must be one of {', '.join(ROLES)}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ProjectError(f"{out}: already exists and is not empty; choose a new folder for the hand-out")
    if handout_info(project) is not None:
        raise ProjectError(f"{project.path}: is itself a hand-out copy; hand out from the lead's project")
    from aldesk.app.review import review_settings

    with_scans = with_scans or deidentified
    blind = bool(review_settings(project)["blind_reading"])
    warnings: list[str] = [] if deidentified else [IDENTIFIED_WARNING]
    keep, selection = None, "all scans"
    if scans is not None:
        keep, selection = next_scans_for(project, annotator, scans, progress=progress, should_stop=should_stop)
        if len(keep) < scans:
            warnings.append(f"only {len(keep)} scans still need a read by {annotator}")
    if with_scans and project.packages.unit_files():
        raise ProjectError("this project labels series/study units: a hand-out cannot carry their files yet; "
                           "hand out with --identified (without --with-scans) to a workstation that reaches the data")
    sources = {}
    if with_scans:
        wanted = set(keep) if keep is not None else None
        sources = {sid: os.path.join(root, rel) for sid, root, rel in project.scans.iter_paths()
                   if wanted is None or sid in wanted}
        missing = [sid for sid, p in sources.items() if not os.path.isfile(p)]
        if missing:
            raise ProjectError(f"{len(missing)} scan files are missing (e.g. scan {missing[0]}); run `aldesk relink` "
                               "on the project first. Nothing was written")
        if deidentified:
            left_out = _burned_in_scans(project, sources, should_stop)
            if left_out:
                warnings.append(f"{len(left_out)} scans left out: their pixels may show burned-in text, which "
                                f"de-identification cannot remove (scans {', '.join(map(str, sorted(left_out)[:10]))}"
                                f"{' …' if len(left_out) > 10 else ''}; {next(iter(left_out.values()))})")
                sources = {sid: p for sid, p in sources.items() if sid not in left_out}
                keep = [sid for sid in (keep if keep is not None else project.scans.ids().tolist())
                        if sid not in left_out]

    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    if partial.exists():
        shutil.rmtree(partial)
    try:
        project.packages.copy_database(partial)
        copy = Project.open(partial)
        try:
            copy.conn.execute("PRAGMA secure_delete = ON")  # what is removed is overwritten, not left in free pages
            copy.packages.scrub_copy()
            removed = copy.packages.restrict_copy(keep_scans=keep, keep_annotator=annotator if blind else None,
                                                  drop_models=blind)
            files, burned = 0, 0
            if with_scans:
                files, burned = _copy_scan_files(copy, sources, partial, out, deidentified, progress, should_stop)
            if burned:
                warnings.append(f"{burned} de-identified DICOM images declare burned-in annotation (text in the "
                                "pixels, which de-identification cannot remove)")
            refs = [(scan_ref(uid), sid) for sid, uid, _st, _se in copy.packages.scan_identity()]
            n_scans = len(refs)
            issued = project.packages.issue_handout(annotator, role or "annotator", deidentified, refs)
            copy.labels.annotator_id(annotator, role=issued.role)
            copy.set_meta("handout", json.dumps({
                "id": issued.id, "from_project_id": project.project_id, "from_project_name": project.name,
                "annotator": annotator, "role": issued.role, "created": issued.issued_at, "blind": blind,
                "deidentified": deidentified, "scans": n_scans, "with_scans": with_scans, "selection": selection}))
            copy.set_meta("handout_secret", issued.secret.hex())
            copy.conn.execute("VACUUM")
        finally:
            copy.close()
        (partial / HANDOUT_NOTE).write_text(_note(project, annotator, issued.role, blind, n_scans, with_scans,
                                                  deidentified), encoding="utf-8")
        if out.exists():
            out.rmdir()
        os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return HandoutResult(out, annotator, blind, n_scans, files, removed["labels"], selection, deidentified,
                         issued.role, issued.id, warnings)


def _burned_in_scans(project: Project, sources: dict[int, str], should_stop: ShouldStop) -> dict[int, str]:
    """{scan id: why} of the DICOM scans whose pixels may show text (``deid.burned_in_reason``)."""
    from aldesk.imaging.deid import read_burned_in_reason

    formats = {r["id"]: r["format"] for r in project.packages.export_rows()}
    out = {}
    for sid, src in sources.items():
        check_stop(should_stop, "hand-out")
        if formats.get(sid) == "dicom":
            try:
                why = read_burned_in_reason(src)
            except (OSError, ValueError, InvalidScanError):
                why = ""   # unreadable: de-identifying it fails next, naming the scan
            if why:
                out[sid] = why
    return out


def _copy_scan_files(copy: Project, sources: dict[int, str], partial: Path, final: Path, deidentified: bool,
                     progress: Progress, should_stop: ShouldStop) -> tuple[int, int]:
    """Copy each scan file to scans/<scan id>.<ext> (de-identified or as it is) and point the copy's
    scans there. Returns (files copied, de-identified DICOM declaring burned-in annotation)."""
    from aldesk.imaging.deid import deidentify_file, remap_uid, strip_raster

    uid_secret = secrets.token_bytes(32)   # this copy's UIDs: consistent within it, unlinkable to the source
    folder = partial / "scans"
    folder.mkdir(parents=True, exist_ok=True)
    identity = {sid: (uid, study, series) for sid, uid, study, series in copy.packages.scan_identity()}
    formats = {r["id"]: r["format"] for r in copy.packages.export_rows()}
    keys = copy.scans.patient_keys(list(sources))
    renames, burned = [], 0
    for i, (sid, src) in enumerate(sorted(sources.items())):
        check_stop(should_stop, "hand-out")
        uid, study, series = identity[sid]
        stem = folder / f"scan-{sid:07d}"
        try:
            if not deidentified:
                dst = stem.with_name(stem.name + Path(src).suffix.lower())
                shutil.copy2(src, dst)
                new_uid = None
            elif formats.get(sid) == "dicom":
                dst = stem.with_name(stem.name + ".dcm")
                report = deidentify_file(src, dst, uid_secret=uid_secret, patient_pseudonym=keys.get(sid))
                burned += report.burned_in == "YES"
                new_uid = None if uid.startswith("sha:") else remap_uid(uid, uid_secret)
                study = remap_uid(study, uid_secret) if study else study
                series = remap_uid(series, uid_secret) if series else series
            else:
                dst = strip_raster(src, stem)
                new_uid = None
        except (InvalidScanError, OSError, ValueError) as exc:
            raise ProjectError(f"scan {sid} cannot be copied into the hand-out ({getattr(exc, 'reason', exc)}); "
                               "nothing was written") from None
        st = dst.stat()
        renames.append((sid, dst.name, new_uid, study, series, st.st_size, st.st_mtime))
        progress(i + 1, len(sources), "copying scans" + (" (de-identified)" if deidentified else ""))
    copy.packages.pseudonymise_scans(renames, str(final / "scans"))
    return len(sources), burned


def _note(project: Project, annotator: str, role: str, blind: bool, n_scans: int, with_scans: bool,
          deidentified: bool) -> str:
    what = ("DE-IDENTIFIED: scans de-identified (DICOM PS3.15 basic profile; images re-written with pixels only), "
            "under pseudonymous names" if deidentified else
            f"{IDENTIFIED_WARNING}.")
    return (
        f"aldesk hand-out for {annotator} ({role}) from project {project.name!r} ({project.project_id})\n"
        f"{n_scans} scans; {'blind reading: no other reader labels or model guesses' if blind else 'not blind'}; "
        f"{'scan files included under scans/' if with_scans else 'scan files not included (read where they are)'}.\n"
        f"{what}\n\n"
        f"1. Open this folder with aldesk; your reads are recorded as {annotator}.\n"
        "   If the folder was moved: aldesk relink THIS_FOLDER THIS_FOLDER/scans\n"
        "2. When done: aldesk package export THIS_FOLDER work.aldpkg\n"
        "3. The lead merges it: aldesk package import MASTER_PROJECT work.aldpkg\n"
        "   (only your reads of these scans are accepted; the package is signed with this hand-out's key)\n"
    )
