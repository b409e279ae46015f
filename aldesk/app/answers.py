"""Read CSV files that name scans by path (label files, answer keys) and match them to scans.

A path may be absolute, or relative to the folder it was imported from; a ``scan_key`` column (as
in this project's own de-identified exports) names scans by their pseudonymous key instead, and a
``series_uid`` or ``study_uid`` column names series and study units by their DICOM UIDs. Every
problem names the file and the line, and nothing is recorded unless the whole file is good.

Conflicts are data, not errors: real data sets hold the same image (same pixels or UID, so the same scan
here) twice with different labels. ``on_conflict`` says what to do with them:
* "drop" (answer keys): the image is left out entirely - neither scored nor given to the simulated oracle;
* "latest" (a reader's label file): the later line is that reader's label, as if they had changed their mind;
* "refuse" (``--strict``): nothing is read, every conflict is named.
Every conflict is reported (file, both lines, both labels), never silently resolved. An image listed in
both the pool and the test split is held out of the pool (a test image must never train) and reported.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from aldesk.errors import InputFileError
from aldesk.store import Project
from aldesk.store.project import SPECIAL_LABELS


KEY_COLUMNS = ("scan_key", "series_uid", "study_uid")   # columns that may stand in for 'path'
ON_CONFLICT = ("drop", "latest", "refuse")


@dataclass(frozen=True)
class Conflict:
    """The same image given two different labels in one file."""
    file: str
    line: int
    label: str
    other_line: int
    other_label: str
    resolution: str  # "dropped" | "latest line kept"

    def message(self) -> str:
        return (f"{self.file}: lines {self.line} and {self.other_line} are the same image, labelled "
                f"{self.label!r} and {self.other_label!r}: {self.resolution}")

    def to_json(self) -> dict:
        return {"file": self.file, "line": self.line, "label": self.label, "other_line": self.other_line,
                "other_label": self.other_label, "resolution": self.resolution}


@dataclass
class CsvRead:
    """The usable rows of a CSV plus what was reported about it (conflicts, images held out of the pool)."""
    rows: list
    conflicts: list = field(default_factory=list)
    held_out_of_pool: list = field(default_factory=list)  # [{"file", "line", "test_line"}]

    def warnings(self) -> list[str]:
        out = [c.message() for c in self.conflicts]
        out += [f"{h['file']}: line {h['line']} (pool) is the same image as line {h['test_line']} (test split): "
                f"held out of the pool" for h in self.held_out_of_pool]
        return out

    def report(self) -> dict:
        return {"conflicts": [c.to_json() for c in self.conflicts], "held_out_of_pool": list(self.held_out_of_pool)}


@dataclass(frozen=True)
class CsvRow:
    line: int
    scan_id: int
    label: str
    split: str | None
    note: str = ""
    duration_ms: int | None = None


class ScanPathIndex:
    """Find a scan by absolute path or by path relative to its imported folder.

    A file that was not imported because it duplicates a scan (same UID or same pixels) finds that scan:
    labelling the copy labels the image.
    """

    def __init__(self, project: Project):
        self.project = project
        self._by_key: dict[str, int] | None = None
        self.by_abs: dict[str, int] = {}
        self.by_rel: dict[str, list[int]] = {}
        for source in (project.scans.iter_paths(), project.scans.iter_duplicate_paths()):
            for scan_id, root, rel in source:
                self.by_abs[os.path.normpath(os.path.join(root, rel))] = scan_id
                self.by_rel.setdefault(rel, []).append(scan_id)

    def find_key(self, key: str, column: str = "scan_key") -> tuple[int | None, str]:
        """(scan id or None, why not) for a scan key of this project's exports, or a series/study UID."""
        if column != "scan_key":
            return self.project.units.find_unit(column, key.strip())
        if self._by_key is None:
            from aldesk.app.export import scan_keys

            self._by_key = {k: sid for sid, k in scan_keys(self.project).items()}
        sid = self._by_key.get(key.strip())
        return (sid, "") if sid is not None else (None, "no scan of this project has this scan key")

    def find(self, path: str) -> tuple[int | None, str]:
        """(scan id or None, why not)."""
        text = path.strip().replace("\\", "/")
        if os.path.isabs(text):
            sid = self.by_abs.get(os.path.normpath(text))
            return (sid, "") if sid is not None else (None, "no imported scan has this absolute path")
        hits = self.by_rel.get(text[2:] if text.startswith("./") else text, [])
        if len(hits) == 1:
            return hits[0], ""
        if len(hits) > 1:
            return None, "matches scans in several imported folders; give the absolute path"
        return None, "no imported scan has this path (relative to its imported folder)"


def _first_bad_utf8_line(path: Path) -> int:
    """The line number of the first line that is not UTF-8 (the decoder reads ahead in blocks, so the
    CSV reader's own line count is no help here)."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


def read_labelled_csv(project: Project, csv_path: str | os.PathLike, *, allow_unknown: bool = False,
                      on_conflict: str = "drop") -> CsvRead:
    """Rows of a ``path,label[,split][,note][,duration_ms]`` CSV matched to scans. Labels are class
    names (any case), 'unsure'/'skip', or class indices 0..C-1; a note is free text, duration_ms the
    time spent reading in milliseconds. on_conflict: see the module docstring."""
    if on_conflict not in ON_CONFLICT:
        raise ValueError(f"on_conflict == {on_conflict!r}; choose one of {', '.join(ON_CONFLICT)}")
    csv_path = Path(csv_path)
    try:
        handle = open(csv_path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputFileError(f"{csv_path}: cannot be read ({exc.strerror})") from exc
    classes = project.classes
    by_name = {c.lower(): c for c in classes} | {s: s for s in SPECIAL_LABELS}
    index = ScanPathIndex(project)
    rows: list[CsvRow] = []
    errors: list[str] = []
    seen: dict[int, int] = {}  # scan id -> index in rows
    conflicts: list[Conflict] = []
    dropped: set[int] = set()  # scan ids left out for a conflict ("drop")
    held_out: list[dict] = []
    with handle:
        try:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            key_column = None if "path" in header else next((k for k in KEY_COLUMNS if k in header), None)
            by_key = key_column is not None
            if ("path" not in header and not by_key) or "label" not in header:
                raise InputFileError(
                    f"{csv_path}: line 1: the header must name the columns 'path' (or 'scan_key', 'series_uid', "
                    f"'study_uid') and 'label' "
                    f"(found: {', '.join(reader.fieldnames or []) or 'nothing'})")
            reader.fieldnames = header
            for row in reader:
                line = reader.line_num
                path = (row.get(key_column if by_key else "path") or "").strip()
                raw = (row.get("label") or "").strip()
                if not path and not raw:
                    continue
                label = by_name.get(raw.lower())
                if label is None and raw.isdigit() and int(raw) < len(classes):
                    label = classes[int(raw)]
                if label is None:
                    errors.append(f"line {line}: label {raw!r} is not a class of this project ({', '.join(classes)})")
                    continue
                scan_id, why = index.find_key(path, key_column) if by_key else index.find(path)
                if scan_id is None:
                    if not allow_unknown:
                        errors.append(f"line {line}: {path!r}: {why}")
                    continue
                split = (row.get("split") or "").strip().lower() or None
                duration = (row.get("duration_ms") or "").strip()
                if duration and not duration.isdigit():
                    errors.append(f"line {line}: duration_ms {duration!r} is not a whole number of milliseconds")
                    continue
                new = CsvRow(line, scan_id, label, split, (row.get("note") or "").strip(),
                             int(duration) if duration else None)
                if scan_id in seen:  # the same image twice (a copy of the file, or the same path)
                    first = rows[seen[scan_id]]
                    if first.label != label:
                        if on_conflict == "refuse":
                            errors.append(f"line {line}: {path!r} is the same image as line {first.line}, "
                                          f"labelled {label!r} here but {first.label!r} there")
                            continue
                        resolution = "dropped" if on_conflict == "drop" else "latest line kept"
                        conflicts.append(Conflict(csv_path.name, first.line, first.label, line, label, resolution))
                        if on_conflict == "drop":
                            dropped.add(scan_id)
                        else:
                            rows[seen[scan_id]] = replace(new, split=_merged_split(first.split, split))
                    elif (split == "test") != (first.split == "test"):  # a test image must never train
                        pool_line, test_line = (first.line, line) if split == "test" else (line, first.line)
                        held_out.append({"file": csv_path.name, "line": pool_line, "test_line": test_line})
                        rows[seen[scan_id]] = replace(first, split="test")
                    continue
                seen[scan_id] = len(rows)
                rows.append(new)
        except UnicodeDecodeError as exc:
            raise InputFileError(f"{csv_path}: line {_first_bad_utf8_line(csv_path)}: not UTF-8 text ({exc.reason}); "
                                 "save the file as UTF-8 (e.g. 'CSV UTF-8' in a spreadsheet)") from exc
        except csv.Error as exc:
            raise InputFileError(f"{csv_path}: line {reader.line_num}: not a readable CSV ({exc})") from exc
    if errors:
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise InputFileError(f"{csv_path}: nothing was recorded; fix these lines{more}:\n  " + "\n  ".join(errors[:10]))
    return CsvRead([r for r in rows if r.scan_id not in dropped], conflicts, held_out)


def _merged_split(a: str | None, b: str | None) -> str | None:
    return "test" if "test" in (a, b) else (b or a)
