"""Export the labelled set for model builders: CSV, JSON, or one folder per class with the images.

Each exported scan carries its final label and how it was reached, every reader's label, the
agreement between readers, the latest model's probabilities (when a stored model can be reloaded)
and a split that is stratified by class and grouped by patient (no patient in two splits).

No patient data by default, in contents or names: rows name a scan by its pseudonymous ``scan_key``
(its UID remapped under a key derived from the project's private salt, equal to the SOP Instance UID
of its de-identified DICOM copy), its study and series by remapped UIDs (``study_key``,
``series_key``) and its patient by the project's salted ``patient_key``; never by a path, since file
and folder names are identifiers too. DICOM copies are de-identified (PS3.15 basic profile,
:mod:`aldesk.imaging.deid`), rasters re-written without metadata, and files named by scan id.
A series or study unit (``aldesk init --unit``) is one row: ``unit``, ``n_files`` and ``series_keys`` (its
series' remapped UIDs); ``folders`` writes every file of the unit, in reading order, under ``<class>/<scan id>/``.
``include_identifiers`` must be asked for (adds ``path`` and the identifier columns, copies the
original files) and is written into ``manifest.json``.
The export appears whole or not at all: it is written beside OUT and renamed into place at the end.
Never modifies labels, scans or a source file (applying the model may cache missing feature vectors).

For the GUI's export dialog (aldesk.ui): run ``export_labelled_set(project, out, ExportOptions(format=
"csv"|"json"|"folders", splits=parse_splits("70,15,15") or None, seed=0, include_identifiers=False,
dicom_as="dicom"|"png"), progress=..., should_stop=...)`` in a worker on its own Project connection;
show ``ExportResult.warnings`` (burned-in annotation, images that failed, no model) when it finishes.
``InputFileError``/``ProjectError`` messages are for the user as they are.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from aldesk import __version__
from aldesk.app.callbacks import Progress, ShouldStop, check_stop, never_stop, no_progress
from aldesk.app.partial_dirs import PartialDir
from aldesk.errors import AldeskError, InputFileError, InvalidScanError, ProjectError
from aldesk.store import Project
from aldesk.store.project import utc_now

EXPORT_FORMAT = "aldesk-export"
EXPORT_VERSION = 1
FORMATS = ("csv", "json", "folders")
DICOM_AS = ("dicom", "png")
SPLIT_NAMES = {2: ("train", "test"), 3: ("train", "val", "test")}
METHODS = ("adjudicated", "consensus", "single reader")
IDENTIFIER_COLUMNS = {"PatientID": "patient_id", "PatientName": "patient_name", "PatientBirthDate": "patient_birth_date",
                      "AccessionNumber": "accession_number", "StudyInstanceUID": "study_instance_uid",
                      "SeriesInstanceUID": "series_instance_uid", "SOPInstanceUID": "sop_instance_uid"}


# --------------------------------------------------------------------------- options
def parse_splits(text: str | None) -> tuple[float, ...] | None:
    """"70,15,15" -> (0.7, 0.15, 0.15); "80,20" -> (0.8, 0.2); None/"" -> None (no split)."""
    if not text:
        return None
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise InputFileError(f"--splits {text!r}: give 2 or 3 comma-separated numbers, e.g. 70,15,15") from None
    if len(parts) not in SPLIT_NAMES or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise InputFileError(f"--splits {text!r}: give 2 (train,test) or 3 (train,val,test) non-negative numbers, "
                             "e.g. 70,15,15")
    total = sum(parts)
    return tuple(p / total for p in parts)


def parse_private(text: str) -> tuple[str, int, int]:
    """"SIEMENS CSA HEADER:0029:08" -> ("SIEMENS CSA HEADER", 0x0029, 0x08): a private attribute a
    de-identified copy may keep (PS3.15 Retain Safe Private option): its private creator, its odd
    group and its element offset in the creator's block (the last two hex digits of the element)."""
    parts = text.rsplit(":", 2)
    try:
        creator, group, offset = parts[0].strip(), int(parts[1], 16), int(parts[2], 16)
    except (IndexError, ValueError):
        creator, group, offset = "", 0, -1
    if not creator or group % 2 == 0 or not 0x0009 <= group <= 0xFFFF or not 0 <= offset <= 0xFF:
        raise InputFileError(f"--keep-private {text!r}: give CREATOR:GROUP:OFFSET, a private creator, an odd "
                             "hex group and the element's offset in the creator's block, e.g. "
                             "'SIEMENS CSA HEADER:0029:08' for (0029,xx08)")
    return creator, group, offset


@dataclass(frozen=True)
class ExportOptions:
    """What to export; the GUI's export dialog fills one of these.

    splits : fractions (train, [val,] test) summing to 1, or None for no split (column left empty).
    shift_dates, clean_descriptors : PS3.15 retention options for de-identified DICOM copies: dates
        shifted by a per-patient number of days (intervals kept), descriptions kept but cleaned.
    include_burned_in : also write images whose pixels may show text (a name, a date) that
        de-identification cannot remove; by default such images are left out of a de-identified
        image export (``--format folders``), each with its reason in the manifest.
    keep_private : private attributes de-identified copies keep (:func:`parse_private`); every other
        private attribute is removed.
    """

    format: str = "csv"
    splits: tuple[float, ...] | None = None
    seed: int = 0
    include_identifiers: bool = False
    dicom_as: str = "dicom"
    shift_dates: bool = False
    clean_descriptors: bool = False
    include_burned_in: bool = False
    keep_private: tuple[tuple[str, int, int], ...] = ()

    def check(self) -> None:
        if self.format not in FORMATS:
            raise InputFileError(f"format == {self.format!r}, must be one of {', '.join(FORMATS)}")
        if self.dicom_as not in DICOM_AS:
            raise InputFileError(f"dicom_as == {self.dicom_as!r}, must be one of {', '.join(DICOM_AS)}")
        if self.splits is not None:
            if len(self.splits) not in SPLIT_NAMES or abs(sum(self.splits) - 1.0) > 1e-6 or min(self.splits) < 0:
                raise InputFileError(f"splits == {self.splits!r}: give 2 or 3 fractions summing to 1")

    def to_json(self) -> dict:
        d = asdict(self)
        d["splits"] = None if self.splits is None else [round(100 * s, 4) for s in self.splits]
        d["split_names"] = list(SPLIT_NAMES[len(self.splits)]) if self.splits else []
        d["keep_private"] = [f"{c}:{g:04X}:{o:02X}" for c, g, o in self.keep_private]
        return d


# --------------------------------------------------------------------------- final labels
@dataclass
class FinalLabel:
    scan_id: int
    label: str
    method: str               # adjudicated | consensus | single reader
    method_detail: str        # adjudicated | dawid-skene | majority (aldesk.app.review)
    weight: float             # training weight of the label (1 adjudicated; consensus posterior)
    agreement: float | None   # share of voting readers who chose ``label``
    n_readers: int            # readers who gave a class (unsure/skip do not vote)
    readers: dict[str, str]   # reader -> current value (class, unsure or skip)


def final_label_table(project: Project) -> tuple[list[FinalLabel], dict[str, int]]:
    """Final labels exactly as training uses them (``aldesk.app.review.project_consensus``, which
    ``labelling.final_labels`` also reads), with how each was reached: "adjudicated" (a reviewer's
    decision), "single reader" (one reader gave a class), else "consensus" (Dawid–Skene or majority
    vote: ``method_detail``). Returns (rows in scan id order, {reason: n} of read scans left out).
    """
    from aldesk.app.review import project_consensus

    classes = set(project.classes)
    final = project_consensus(project).final
    reads: dict[int, dict[str, str]] = {}
    for l in project.labels.current():
        reads.setdefault(l.scan_id, {})[l.annotator] = l.value
    rows = []
    for sid in sorted(final):
        f = final[sid]
        readers = reads.get(sid, {})
        votes = [v for v in readers.values() if v in classes]
        if f.source == "adjudicated":
            method = "adjudicated"
        else:
            method = "single reader" if len(votes) <= 1 else "consensus"
        agreement = round(votes.count(f.label) / len(votes), 4) if votes else None
        rows.append(FinalLabel(int(sid), f.label, method, f.source, round(float(f.weight), 6), agreement,
                               len(votes), dict(sorted(readers.items()))))
    excluded = {"disputed": 0, "no_class_read": 0}
    for sid, readers in reads.items():
        if sid in final:
            continue
        n_votes = sum(v in classes for v in readers.values())
        excluded["disputed" if n_votes else "no_class_read"] += 1
    return rows, excluded


# --------------------------------------------------------------------------- splits
def grouped_stratified_split(y: np.ndarray, groups: list, fractions: tuple[float, ...], seed: int = 0) -> np.ndarray:
    """Assign each item to a split so that no group spans two splits and each class is spread as
    ``fractions`` asks, as closely as whole groups allow.

    y : (n,) int class index; groups : n hashable group keys (patient keys); fractions : (k,) summing
    to 1. Returns (n,) int split index. Greedy: groups in random order (seeded), largest first, each
    to the split whose per-class counts move closest to their targets (squared error).
    """
    y = np.asarray(y, dtype=np.int64)
    n_classes = int(y.max()) + 1 if len(y) else 0
    members: dict = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    keys = list(members)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(keys))
    keys = sorted((keys[i] for i in order), key=lambda g: -len(members[g]))
    frac = np.asarray(fractions, dtype=np.float64)
    target = frac[:, None] * np.bincount(y, minlength=n_classes)[None, :]
    current = np.zeros_like(target)
    out = np.empty(len(y), dtype=np.int64)
    for g in keys:
        idx = members[g]
        counts = np.bincount(y[idx], minlength=n_classes).astype(np.float64)
        before = ((current - target) ** 2).sum(axis=1)
        after = ((current + counts - target) ** 2).sum(axis=1)
        need = (target - current).sum(axis=1)
        best = min(range(len(frac)), key=lambda s: (after[s] - before[s], -need[s], s))
        current[best] += counts
        out[idx] = best
    return out


# --------------------------------------------------------------------------- model
def model_probabilities(project: Project, *, progress: Progress = no_progress,
                        should_stop: ShouldStop = never_stop) -> tuple[dict[int, np.ndarray], dict]:
    """({scan id: (n_classes,) probabilities}, what model) from the latest stored model, or ({}, why not).

    Only models stored as plain arrays (logistic) can be reloaded; others leave the column empty.
    """
    latest = project.models.latest()
    if latest is None:
        return {}, {"available": False, "reason": "no model trained yet (run `aldesk train PROJECT`)"}
    about = {"id": latest["id"], "created_at": latest["created_at"], "estimator": latest["estimator"],
             "extractor": latest["extractor"], "n_labels": latest["n_labels"]}
    if not latest.get("arrays"):
        return {}, about | {"available": False, "reason": f"the latest model ({latest['estimator']}) is stored "
                            "without weights; only logistic models can be reloaded for an export"}
    try:
        from aldesk.app.features import load_features
        from aldesk.learning.base import standardize
        from aldesk.learning.models import from_arrays

        ids, X = load_features(project, latest["extractor"], progress=progress, should_stop=should_stop)
        model = from_arrays(latest["arrays"])
        proba = np.asarray(model.predict_proba(standardize(X)), dtype=np.float64)
    except (AldeskError, ImportError, KeyError, ValueError) as exc:
        if should_stop():
            raise
        return {}, about | {"available": False, "reason": f"the latest model cannot be applied ({exc})"}
    if proba.shape[1] != len(project.classes):
        return {}, about | {"available": False, "reason": "the latest model was trained on other classes; retrain it"}
    return {int(s): proba[i] for i, s in enumerate(ids.tolist())}, about | {"available": True}


# --------------------------------------------------------------------------- export
@dataclass
class ExportResult:
    out: Path
    scans: int
    manifest: dict
    problems: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    burned_in_left_out: list[dict] = field(default_factory=list)  # {scan_id, scan_key, reason}

    def to_json(self) -> dict:
        return {"out": str(self.out), "scans": self.scans, "problems": self.problems, "warnings": self.warnings,
                "burned_in_left_out": self.burned_in_left_out, "manifest": self.manifest}


def uid_secret(project: Project) -> bytes:
    """The key of UID remapping: derived from the project's private salt, so re-exports agree."""
    return hmac.new(bytes.fromhex(project.patient_salt), b"aldesk-export-uid-v1", hashlib.sha256).digest()


def scan_keys(project: Project, secret: bytes | None = None) -> dict[int, str]:
    """{scan id: pseudonymous scan key} for every scan (see :func:`aldesk.imaging.deid.scan_key`)."""
    from aldesk.imaging.deid import scan_key

    secret = uid_secret(project) if secret is None else secret
    return {r["id"]: scan_key(r["uid"], secret) for r in project.packages.export_rows()}


def _safe_name(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_. " else "_" for ch in name).strip(" .")
    return cleaned or "_"


def _prepare_out(out: Path) -> PartialDir:
    """The hidden folder the export is written into; removed even if this process is killed."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ProjectError(f"{out}: already exists and is not empty; choose a new folder for the export")
    out.parent.mkdir(parents=True, exist_ok=True)
    return PartialDir.create(out)


def export_labelled_set(
    project: Project,
    out: str | os.PathLike,
    options: ExportOptions = ExportOptions(),
    *,
    progress: Progress = no_progress,
    should_stop: ShouldStop = never_stop,
) -> ExportResult:
    """Write the labelled set to the new folder ``out`` (see the module docstring).

    Files: ``labels.csv`` (csv, folders) or ``labels.json`` (json), ``manifest.json``, and for
    folders ``[<split>/]<class>/<scan id>.dcm|.png``. Raises ProjectError when there is nothing to
    export or (folders) source files are missing; CancelledError when ``should_stop()``.
    """
    from aldesk.imaging.deid import remap_uid, scan_key

    options.check()
    out = Path(os.path.abspath(out))  # absolute: every path a message or the log names is then masked whole
    classes = project.classes
    finals, excluded = final_label_table(project)
    if not finals:
        raise ProjectError(f"{project.path}: no scan has a final label yet; nothing to export")
    scans = {r["id"]: r for r in project.packages.export_rows()}
    if options.format == "folders":
        missing = [f.scan_id for f in finals
                   if not os.path.isfile(os.path.join(scans[f.scan_id]["root"], scans[f.scan_id]["relpath"]))]
        if missing:
            raise ProjectError(f"{len(missing)} labelled scans' files are missing (e.g. scan {missing[0]}; "
                               "`aldesk missing PROJECT` lists them); if the data moved, run "
                               "`aldesk relink PROJECT NEW_ROOT`. Nothing was exported")

    probs, model = model_probabilities(project, should_stop=should_stop)
    split_names: tuple[str, ...] = SPLIT_NAMES[len(options.splits)] if options.splits else ()
    split_of: dict[int, str] = {}
    if options.splits:
        y = np.array([classes.index(f.label) for f in finals], dtype=np.int64)
        groups = [scans[f.scan_id]["patient_key"] or f"scan:{f.scan_id}" for f in finals]
        assigned = grouped_stratified_split(y, groups, options.splits, options.seed)
        split_of = {f.scan_id: split_names[k] for f, k in zip(finals, assigned.tolist())}

    readers = sorted({name for f in finals for name in f.readers})
    notes: dict[int, dict[str, str]] = {}  # the readers' notes: "reader: note; ..." in a notes column
    for row in project.labels.current():
        if row.note:
            notes.setdefault(row.scan_id, {})[row.annotator] = row.note
    partial_dir = _prepare_out(out)
    partial = partial_dir.path
    problems: list[dict] = []
    warnings: list[str] = []
    burned_in: dict[str, list[int]] = {"YES": [], "unknown": []}
    left_out: list[dict] = []  # images that may show burned-in text, with why
    secret = uid_secret(project)
    study_series = project.scans.study_series()
    unit_files = project.units.files_of([f.scan_id for f in finals])   # series/study units: all their files
    unit_kind = project.units.kind()
    records = []
    try:
        for n, f in enumerate(finals):
            check_stop(should_stop, "export")
            scan = scans[f.scan_id]
            source = os.path.join(scan["root"], scan["relpath"])
            p = probs.get(f.scan_id)
            study, series = study_series.get(f.scan_id, (None, None))
            rec = {
                "scan_id": f.scan_id, "scan_key": scan_key(scan["uid"], secret),
                "study_key": remap_uid(study, secret) if study else "",
                "series_key": remap_uid(series, secret) if series else "",
                "unit": unit_kind if f.scan_id in unit_files else "image",
                "n_files": len(unit_files.get(f.scan_id, ())) or 1,
                "series_keys": ";".join(dict.fromkeys(remap_uid(su, secret) for su, _, _ in unit_files.get(f.scan_id, ()))),
                "label": f.label, "split": split_of.get(f.scan_id, ""),
                "method": f.method, "method_detail": f.method_detail, "weight": f.weight, "agreement": f.agreement, "n_readers": f.n_readers, "readers": f.readers,
                "patient_key": scan["patient_key"] or "", "format": scan["format"], "modality": scan["modality"] or "",
                "model_probability": None if p is None else round(float(p[classes.index(f.label)]), 6),
                "probabilities": None if p is None else {c: round(float(v), 6) for c, v in zip(classes, p)},
                "notes": "; ".join(f"{r}: {t}" for r, t in sorted(notes.get(f.scan_id, {}).items())),
            }
            if options.include_identifiers:
                rec["path"] = scan["relpath"]
                rec["files"] = ";".join(path for _, _, path in unit_files.get(f.scan_id, ()))
                rec["identifiers"] = _identifiers(source, scan["format"])
            if options.format == "folders" and (reason := _burned_in_exclusion(source, scan, options)):
                left_out.append({"scan_id": f.scan_id, "scan_key": rec["scan_key"], "reason": reason})
                progress(n + 1, len(finals), "images")
                continue
            if options.format == "folders":
                folder = partial.joinpath(*([rec["split"]] if rec["split"] else []), _safe_name(f.label))
                try:
                    if f.scan_id in unit_files:   # a series or study: every file, in reading order
                        files, flags = [], []
                        for k, (_, _, path) in enumerate(unit_files[f.scan_id]):
                            written, flag = _write_image(path, scan, folder / str(f.scan_id) / f"{k:05d}", options, secret)
                            files += written
                            flags.append(flag)
                        burned = "YES" if "YES" in flags else "unknown" if "unknown" in flags else (flags[0] if flags else "")
                    else:
                        files, burned = _write_image(source, scan, folder / str(f.scan_id), options, secret)
                except InvalidScanError as exc:
                    problems.append({"scan_id": f.scan_id, "scan_key": rec["scan_key"],
                                     "reason": _without_path(exc.reason, source)})
                    files, burned = [], ""
                rec["file"] = ";".join(p.relative_to(partial).as_posix() for p in files)
                rec["burned_in_annotation"] = burned
                if burned in burned_in:
                    burned_in[burned].append(f.scan_id)
                progress(n + 1, len(finals), "images")
            records.append(rec)

        index = _write_index(partial, records, options, classes, readers)
        if left_out:
            warnings.append(f"{len(left_out)} images left out: their pixels may show text (a name, a date) that "
                            "de-identification cannot remove (burned-in annotation); see 'burned_in_left_out' in "
                            "manifest.json, or export them with --include-burned-in after checking them")
        if burned_in["YES"]:
            warnings.append(f"{len(burned_in['YES'])} exported DICOM images declare burned-in annotation (text in the "
                            f"pixels, which de-identification cannot remove); check scans {burned_in['YES'][:10]}")
        if problems:
            warnings.append(f"{len(problems)} images could not be written; see 'problems' in manifest.json")
        if not model.get("available"):
            warnings.append(f"model probabilities left empty: {model['reason']}")
        manifest = _manifest(project, options, records, excluded | {"burned_in": len(left_out)}, split_names, model,
                             index, problems, burned_in, left_out, warnings)
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        partial_dir.close()
    return ExportResult(out, len(records), manifest, problems, warnings, left_out)


def _without_path(reason: str, source: str) -> str:
    """A problem's reason without the file's path or name (a reader's message may quote them)."""
    for text in sorted({source, os.path.basename(source), os.path.dirname(source)} - {""}, key=len, reverse=True):
        reason = reason.replace(text, "<file>")
    return reason


def _identifiers(source: str, fmt: str) -> dict[str, str]:
    if fmt != "dicom" or not os.path.isfile(source):
        return {}
    from aldesk.imaging.deid import read_identifiers

    try:
        found = read_identifiers(source)
    except (OSError, ValueError, AldeskError):
        return {}
    return {IDENTIFIER_COLUMNS[k]: v for k, v in found.items() if k in IDENTIFIER_COLUMNS}


def deid_options(options: ExportOptions, scan: dict, secret: bytes):
    """The de-identification options of one scan: its patient's date shift when dates are shifted
    (scans without a patient key each get their own)."""
    from aldesk.imaging.deid import DeidOptions, date_shift_days

    shift = None
    if options.shift_dates:
        shift = date_shift_days(scan["patient_key"] or f"scan:{scan['uid']}", secret)
    return DeidOptions(date_shift_days=shift, clean_descriptors=options.clean_descriptors,
                       safe_private=frozenset(options.keep_private))


def _write_image(source: str, scan: dict, stem: Path, options: ExportOptions, secret: bytes) -> tuple[list[Path], str]:
    """(files written, burned-in annotation flag "YES"/"NO"/"unknown" or "" for rasters)."""
    from aldesk.imaging.deid import deidentify_file, save_display_png, strip_raster

    stem.parent.mkdir(parents=True, exist_ok=True)
    if scan["format"] == "dicom":
        if options.dicom_as == "png":
            return save_display_png(source, stem), _burned_in(source)
        if options.include_identifiers:
            dst = stem.with_name(stem.name + ".dcm")
            shutil.copyfile(source, dst)
            return [dst], _burned_in(source)
        report = deidentify_file(source, stem.with_name(stem.name + ".dcm"), uid_secret=secret,
                                 patient_pseudonym=scan["patient_key"], options=deid_options(options, scan, secret))
        return [stem.with_name(stem.name + ".dcm")], report.burned_in
    if options.include_identifiers:
        dst = stem.with_name(stem.name + Path(source).suffix.lower())
        shutil.copyfile(source, dst)
        return [dst], ""
    try:
        return [strip_raster(source, stem)], ""
    except (OSError, ValueError) as exc:
        raise InvalidScanError(source, f"cannot be re-written without metadata ({exc})", code="export-failed") from exc


def _burned_in_exclusion(source: str, scan: dict, options: ExportOptions) -> str:
    """Why this image stays out of a de-identified image export ("" when it goes in): its pixels may
    show text that header de-identification cannot remove (:func:`aldesk.imaging.deid.burned_in_reason`)."""
    if scan["format"] != "dicom" or options.include_identifiers or options.include_burned_in:
        return ""
    from aldesk.imaging.deid import read_burned_in_reason

    try:
        return read_burned_in_reason(source)
    except (OSError, ValueError, AldeskError):
        return ""  # unreadable: writing it fails next and is reported as a problem


def _burned_in(source: str) -> str:
    from aldesk.imaging.deid import DeidReport, read_burned_in

    try:
        return read_burned_in(source)
    except (OSError, ValueError, AldeskError):
        return DeidReport().burned_in


def _columns(options: ExportOptions, classes: list[str], readers: list[str], records: list[dict]) -> list[str]:
    cols = ["scan_id", "scan_key", "study_key", "series_key", "unit", "n_files", "series_keys"] + (
        ["path", "files"] if options.include_identifiers else []) + [
            "label", "split", "method", "method_detail", "weight", "agreement", "n_readers", "patient_key", "format",
            "modality", "model_probability"] + [f"p_{c}" for c in classes] + [f"reader:{r}" for r in readers] + [
            "notes"]
    if options.format == "folders":
        cols += ["file", "burned_in_annotation"]
    if options.include_identifiers:
        cols += list(IDENTIFIER_COLUMNS.values())
    return cols


def _write_index(out: Path, records: list[dict], options: ExportOptions, classes: list[str],
                 readers: list[str]) -> str:
    if options.format == "json":
        doc = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "classes": classes, "readers": readers,
               "scans": records}
        (out / "labels.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return "labels.json"
    cols = _columns(options, classes, readers, records)
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(cols)
        for rec in records:
            flat = {k: v for k, v in rec.items() if k not in ("readers", "probabilities", "identifiers")}
            flat |= {f"reader:{r}": v for r, v in rec["readers"].items()}
            flat |= {f"p_{c}": v for c, v in (rec["probabilities"] or {}).items()}
            flat |= rec.get("identifiers") or {}
            writer.writerow(["" if flat.get(c) is None else flat.get(c, "") for c in cols])
    return "labels.csv"


def _manifest(project: Project, options: ExportOptions, records: list[dict], excluded: dict,
              split_names: tuple[str, ...], model: dict, index: str, problems: list[dict], burned_in: dict,
              left_out: list[dict], warnings: list[str]) -> dict:
    from aldesk.imaging.deid import BURNED_IN_MODALITIES, profile_edition

    per_class = {c: 0 for c in project.classes}
    per_method: dict[str, int] = {}
    per_split: dict[str, dict[str, int]] = {s: {c: 0 for c in project.classes} for s in split_names}
    patients_per_split: dict[str, set] = {s: set() for s in split_names}
    for rec in records:
        per_class[rec["label"]] += 1
        per_method[rec["method"]] = per_method.get(rec["method"], 0) + 1
        if rec["split"]:
            per_split[rec["split"]][rec["label"]] += 1
            patients_per_split[rec["split"]].add(rec["patient_key"] or f"scan:{rec['scan_id']}")
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "aldesk_version": __version__,
        "project_id": project.project_id,
        "project_name": project.name,
        "created": utc_now(),
        "options": options.to_json(),
        "identifiers_included": options.include_identifiers,
        "deidentification": None if options.include_identifiers else {
            "patients": "pseudonymous patient key only (salted HMAC of the Patient ID)",
            "dicom": (f"PS3.15 Table E.1-1 basic profile, edition {profile_edition()}"
                      + (", dates shifted per patient" if options.shift_dates else "")
                      + (", descriptors cleaned" if options.clean_descriptors else "")
                      + (", listed private attributes kept" if options.keep_private else ""))
            if options.dicom_as == "dicom" else "converted to PNG (pixels only)",
            "profile_edition": profile_edition(),
            "uids": "remapped to 2.25.<int> with a keyed hash, consistently across the export",
            "rasters": "re-written with pixels only (no text chunks, EXIF, ICC)",
            "burned_in_annotation_yes": burned_in["YES"],
            "burned_in_annotation_unknown": len(burned_in["unknown"]),
            "burned_in_rule": ("images with Burned In Annotation = YES, or of modality "
                               f"{'/'.join(BURNED_IN_MODALITIES)} without an explicit NO, are left out of image "
                               "exports unless include_burned_in"),
        },
        "burned_in_left_out": left_out,
        "index": index,
        "classes": project.classes,
        "counts": {
            "scans": len(records),
            "per_class": per_class,
            "per_method": per_method,
            "per_split": per_split,
            "patients_per_split": {s: len(v) for s, v in patients_per_split.items()},
            "readers": len({r for rec in records for r in rec["readers"]}),
            "excluded": excluded,
            "images_failed": len(problems),
        },
        "model": model,
        "problems": problems,
        "warnings": warnings,
    }
