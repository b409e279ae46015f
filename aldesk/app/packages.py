"""Annotation packages: a workstation's labels (with history, notes, times) as one plain-data file,
merged into another copy of the project without losing or doubling a label.

A package is a zip holding only JSON, never pixels:

``package.json``  {"format": "aldesk-annotation-package", "version": 1, "project_id", "project_name",
                   "created", "aldesk_version", "workstation", "filters": {"annotator", "since"},
                   "classes": [...], "counts": {"labels", "current", "scans", "annotators", "reviews"},
                   "checksum": {"algorithm": "sha256", "members": {"labels.json": hex, ...}}}
``labels.json``   {"annotators": [{"name", "role"}], "scans": [{"uid", "pixel_hash", "path"}],
                   "labels": [{"id", "scan_uid", "annotator", "value", "note", "created_at",
                               "duration_ms", "workstation", "source", "replaced_by"}]}
``reviews.json``  (only if the project has review tables) {"tables": {name: [row, ...]}}

Reading a package trusts nothing in it: member names, sizes and compression ratios are checked
before anything is decompressed, sizes again while reading, the checksum before parsing, and the
JSON (parsed with ``json`` only: never unpickled or evaluated) field by field. Any problem raises
:class:`PackageError` naming the member and position, and the project is left unchanged: the merge
is one transaction (rule in :mod:`aldesk.store.packages`). The checksum detects damage and edits made
without recomputing it; it is not a signature.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import stat
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from aldesk import __version__
from aldesk.errors import InputFileError
from aldesk.store import Project
from aldesk.store.annotations import ROLES
from aldesk.store.packages import MergeConflictError, MergeCounts, time_key
from aldesk.store.project import SPECIAL_LABELS, utc_now

PACKAGE_FORMAT = "aldesk-annotation-package"
PACKAGE_VERSION = 1
PACKAGE_SUFFIX = ".aldpkg"
MEMBERS = ("package.json", "labels.json", "reviews.json")
REQUIRED_MEMBERS = ("package.json", "labels.json")

#: Limits checked before decompressing: a real package of a million labels is ~400 MB of JSON.
MAX_PACKAGE_BYTES = 1 << 30          # uncompressed, all members together
MAX_RATIO = 200                      # uncompressed / compressed, for members over RATIO_FLOOR
RATIO_FLOOR = 1 << 20


class PackageError(InputFileError):
    """A package cannot be read or merged; the project was not changed."""


# --------------------------------------------------------------------------- writing
@dataclass
class PackageSummary:
    path: Path
    labels: int
    current: int
    scans: int
    annotators: list[str]
    reviews: int

    def to_json(self) -> dict:
        return {"path": str(self.path), "labels": self.labels, "current": self.current, "scans": self.scans,
                "annotators": self.annotators, "reviews": self.reviews}


def parse_since(text: str | None) -> datetime | None:
    """"2026-01-31" or "2026-01-31T14:00[:00][+01:00]" -> aware datetime (UTC if no zone)."""
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputFileError(f"--since {text!r}: give a date like 2026-01-31 or a time like 2026-01-31T14:00") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _dumps(obj) -> bytes:
    return (json.dumps(obj, indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def export_package(project: Project, out: str | os.PathLike, *, annotator: str | None = None,
                   since: str | datetime | None = None) -> PackageSummary:
    """Write the labels (history included), notes, times and reviews of ``project`` to ``out``.

    annotator : only this reader's labels; since : only labels created at or after this time
    (a label's later changes are always newer, so history stays whole). No pixels are written.
    """
    out = Path(out)
    since_t = parse_since(since) if isinstance(since, str) or since is None else since
    if annotator is not None:
        known = [name for name, _ in project.labels.annotators()]
        if annotator not in known:
            raise InputFileError(f"no annotator named {annotator!r} in this project (readers: {', '.join(known) or 'none'})")
    rows = project.packages.label_rows(annotator)
    if since_t is not None:
        rows = [r for r in rows if time_key(r["created_at"]) >= since_t]
    scans: dict[str, dict] = {}
    roles: dict[str, str] = {}
    labels = []
    for r in rows:
        scans.setdefault(r["scan_uid"], {"uid": r["scan_uid"], "pixel_hash": r["pixel_hash"], "path": r["relpath"]})
        roles[r["annotator"]] = r["role"]
        labels.append({"id": r["id"], "scan_uid": r["scan_uid"], "annotator": r["annotator"], "value": r["value"],
                       "note": r["note"], "created_at": r["created_at"], "duration_ms": r["duration_ms"],
                       "workstation": r["workstation"], "source": r["source"], "replaced_by": r["replaced_by"]})
    reviews = project.packages.review_rows()
    if annotator is not None or since_t is not None:
        reviews = {}  # reviews are not per reader or per time: only a full package carries them
    known_roles = dict(project.labels.annotators())
    for rows_ in reviews.values():
        for r in rows_:
            if r.get("reviewer_name"):
                roles.setdefault(r["reviewer_name"], known_roles.get(r["reviewer_name"], "reviewer"))
    review_scans = {r["scan_uid"] for rows_ in reviews.values() for r in rows_ if r.get("scan_uid")}
    for uid, ref in project.packages.scan_refs(review_scans - set(scans)).items():
        scans[uid] = ref
    members = {"labels.json": _dumps({
        "annotators": [{"name": n, "role": roles[n]} for n in sorted(roles)],
        "scans": list(scans.values()),
        "labels": labels,
    })}
    n_reviews = sum(len(v) for v in reviews.values())
    if n_reviews:
        members["reviews.json"] = _dumps({"tables": reviews})
    head = {
        "format": PACKAGE_FORMAT,
        "version": PACKAGE_VERSION,
        "project_id": project.project_id,
        "project_name": project.name,
        "created": utc_now(),
        "aldesk_version": __version__,
        "workstation": socket.gethostname(),
        "filters": {"annotator": annotator, "since": since_t.isoformat() if since_t else None},
        "classes": project.classes,
        "counts": {"labels": len(labels), "current": sum(l["replaced_by"] is None for l in labels),
                   "scans": len(scans), "annotators": len(roles), "reviews": n_reviews},
        "checksum": {"algorithm": "sha256",
                     "members": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".writing")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("package.json", _dumps(head))
        for name, data in members.items():
            zf.writestr(name, data)
    os.replace(tmp, out)
    return PackageSummary(out, len(labels), head["counts"]["current"], len(scans), sorted(roles), n_reviews)


# --------------------------------------------------------------------------- reading
@dataclass
class Package:
    head: dict
    annotators: dict[str, str]          # name -> role
    scans: dict[str, dict]              # uid -> {uid, pixel_hash, path}
    labels: list[dict]
    reviews: dict[str, list[dict]] = field(default_factory=dict)


def _member_problem(name: str) -> str | None:
    """Why a member name is unsafe (path traversal), or None."""
    p = PurePosixPath(name)
    if (name.startswith(("/", "\\")) or "\\" in name or ":" in name or ".." in p.parts or "\x00" in name
            or len(p.parts) != 1):
        return "would be written outside the package folder (path traversal)"
    return None


def _open_zip(path: Path) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]:
    if not path.is_file():
        raise PackageError(f"{path}: no such package file; check the path")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise PackageError(f"{path}: not an aldesk package (not a zip file); "
                           "write one with `aldesk package export PROJECT OUT.aldpkg`") from None
    except OSError as exc:
        raise PackageError(f"{path}: cannot be read ({exc.strerror})") from exc
    infos: dict[str, zipfile.ZipInfo] = {}
    total = 0
    try:
        for info in zf.infolist():
            name = info.filename
            why = _member_problem(name)
            if why:
                raise PackageError(f"{path}: member {name!r} {why}; the package was not made by aldesk "
                                   "and is refused. Nothing was changed")
            if name not in MEMBERS:
                raise PackageError(f"{path}: unexpected member {name!r} (a package holds only "
                                   f"{', '.join(MEMBERS)}); it is refused. Nothing was changed")
            if name in infos:
                raise PackageError(f"{path}: member {name!r} appears twice; the package is damaged or forged")
            if info.flag_bits & 0x1:
                raise PackageError(f"{path}: member {name!r} is encrypted; aldesk packages are not")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise PackageError(f"{path}: member {name!r} uses an unsupported compression method "
                                   f"({info.compress_type}); aldesk packages use deflate")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise PackageError(f"{path}: member {name!r} is a symbolic link; it is refused")
            total += info.file_size
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > RATIO_FLOOR and ratio > MAX_RATIO:
                raise PackageError(f"{path}: member {name!r} would expand {ratio:,.0f} times "
                                   f"({info.file_size:,} bytes): a zip bomb, refused before decompressing")
            infos[name] = info
        if total > MAX_PACKAGE_BYTES:
            raise PackageError(f"{path}: the members would expand to {total:,} bytes, over the limit of "
                               f"{MAX_PACKAGE_BYTES:,}: a zip bomb or not an aldesk package, refused before decompressing")
    except BaseException:
        zf.close()
        raise
    return zf, infos


def _read_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Decompress at most the declared size (+1 byte to catch a lie)."""
    buf = io.BytesIO()
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(min(1 << 20, info.file_size + 1 - buf.tell())):
                buf.write(chunk)
                if buf.tell() > info.file_size:
                    raise PackageError(f"{path}: member {info.filename!r} holds more data than it declares: "
                                       "a zip bomb or a damaged package, refused")
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, PackageError):
            raise
        raise PackageError(f"{path}: member {info.filename!r} cannot be decompressed ({exc}); "
                           "the package is damaged — write it again") from exc
    return buf.getvalue()


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(path: Path, member: str, data: bytes):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PackageError(f"{path}: {member} is not UTF-8 text (byte {exc.start}); the package is damaged") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise PackageError(f"{path}: {member}: malformed JSON at line {exc.lineno} column {exc.colno} "
                           f"(character {exc.pos}): {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise PackageError(f"{path}: {member}: malformed JSON ({exc})") from None


class _Shape:
    """Field checks with messages that name the member and the item: ``labels.json: labels[3].value``."""

    def __init__(self, path: Path, member: str):
        self.path, self.member = path, member

    def fail(self, where: str, what: str):
        raise PackageError(f"{self.path}: {self.member}: {where} {what}; the package is damaged or was edited")

    def obj(self, value, where: str) -> dict:
        if not isinstance(value, dict):
            self.fail(where, "must be a JSON object")
        return value

    def items(self, value, where: str) -> list:
        if not isinstance(value, list):
            self.fail(where, "must be a JSON list")
        return value

    def text(self, d: dict, key: str, where: str, *, optional: bool = False, empty: bool = True) -> str | None:
        value = d.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str) or (not empty and not value.strip()):
            self.fail(f"{where}.{key}", "must be a text" + ("" if empty else " (not empty)"))
        return value

    def integer(self, d: dict, key: str, where: str) -> int | None:
        value = d.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            self.fail(f"{where}.{key}", "must be a whole number or null")
        return value


def read_package(path: str | os.PathLike) -> Package:
    """Open and validate a package without touching any project. Raises PackageError."""
    path = Path(path)
    zf, infos = _open_zip(path)
    with zf:
        missing = [m for m in REQUIRED_MEMBERS if m not in infos]
        if missing:
            raise PackageError(f"{path}: not an aldesk package (no {missing[0]}); write one with "
                               "`aldesk package export PROJECT OUT.aldpkg`")
        head = _parse_json(path, "package.json", _read_member(path, zf, infos["package.json"]))
        shape = _Shape(path, "package.json")
        shape.obj(head, "the document")
        if head.get("format") != PACKAGE_FORMAT:
            raise PackageError(f"{path}: not an aldesk annotation package (format {head.get('format')!r}, "
                               f"expected {PACKAGE_FORMAT!r})")
        version = head.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            shape.fail("version", "must be a whole number >= 1")
        if version > PACKAGE_VERSION:
            raise PackageError(f"{path}: written by a newer aldesk (package format version {version}; this program "
                               f"reads up to {PACKAGE_VERSION}); update aldesk to import it. Nothing was changed")
        shape.text(head, "project_id", "the document", empty=False)
        checksum = shape.obj(head.get("checksum"), "checksum")
        if checksum.get("algorithm") != "sha256":
            shape.fail("checksum.algorithm", "must be 'sha256'")
        sums = shape.obj(checksum.get("members"), "checksum.members")
        for name in infos:
            if name == "package.json":
                continue
            if name not in sums:
                raise PackageError(f"{path}: {name} has no checksum in package.json; the package was altered")
        datas = {}
        for name in sums:
            if name not in infos or name == "package.json":
                raise PackageError(f"{path}: package.json lists a checksum for {name!r}, which the package lacks; "
                                   "the package was altered or is incomplete")
            data = _read_member(path, zf, infos[name])
            if hashlib.sha256(data).hexdigest() != sums[name]:
                raise PackageError(f"{path}: checksum mismatch for {name}: its content changed after the package "
                                   "was written (tampered or damaged); get a fresh copy. Nothing was changed")
            datas[name] = data
    body = _parse_json(path, "labels.json", datas["labels.json"])
    package = _validate_labels(path, head, body)
    if "reviews.json" in datas:
        reviews = _parse_json(path, "reviews.json", datas["reviews.json"])
        rshape = _Shape(path, "reviews.json")
        tables = rshape.obj(rshape.obj(reviews, "the document").get("tables"), "tables")
        for table, rows in tables.items():
            for i, row in enumerate(rshape.items(rows, f"tables.{table}")):
                rshape.obj(row, f"tables.{table}[{i}]")
                for k, v in row.items():
                    if not isinstance(v, (str, int, float, type(None))) or isinstance(v, bool):
                        rshape.fail(f"tables.{table}[{i}].{k}", "must be a text, a number or null")
                if row.get("scan_uid") is not None and row["scan_uid"] not in package.scans:
                    rshape.fail(f"tables.{table}[{i}].scan_uid", "names a scan missing from labels.json's scan list")
                name = row.get("reviewer_name")
                if name is not None and name not in package.annotators:
                    rshape.fail(f"tables.{table}[{i}].reviewer_name", "names a reader missing from labels.json")
        package.reviews = tables
    return package


def _validate_labels(path: Path, head: dict, body) -> Package:
    s = _Shape(path, "labels.json")
    s.obj(body, "the document")
    annotators: dict[str, str] = {}
    for i, a in enumerate(s.items(body.get("annotators"), "annotators")):
        s.obj(a, f"annotators[{i}]")
        role = s.text(a, "role", f"annotators[{i}]")
        if role not in ROLES:
            s.fail(f"annotators[{i}].role", f"({role!r}) must be one of {', '.join(ROLES)}")
        annotators[s.text(a, "name", f"annotators[{i}]", empty=False)] = role
    scans: dict[str, dict] = {}
    for i, sc in enumerate(s.items(body.get("scans"), "scans")):
        s.obj(sc, f"scans[{i}]")
        uid = s.text(sc, "uid", f"scans[{i}]", empty=False)
        scans[uid] = {"uid": uid, "pixel_hash": s.text(sc, "pixel_hash", f"scans[{i}]", empty=False),
                      "path": s.text(sc, "path", f"scans[{i}]", optional=True) or ""}
    labels = []
    seen: set[str] = set()
    for i, l in enumerate(s.items(body.get("labels"), "labels")):
        where = f"labels[{i}]"
        s.obj(l, where)
        row = {
            "id": s.text(l, "id", where, empty=False),
            "scan_uid": s.text(l, "scan_uid", where, empty=False),
            "annotator": s.text(l, "annotator", where, empty=False),
            "value": s.text(l, "value", where, empty=False),
            "note": s.text(l, "note", where, optional=True) or "",
            "created_at": s.text(l, "created_at", where, empty=False),
            "duration_ms": s.integer(l, "duration_ms", where),
            "workstation": s.text(l, "workstation", where, optional=True) or "",
            "source": s.text(l, "source", where, optional=True) or "",
            "replaced_by": s.text(l, "replaced_by", where, optional=True, empty=False),
        }
        try:
            datetime.fromisoformat(row["created_at"].replace("Z", "+00:00"))
        except ValueError:
            s.fail(f"{where}.created_at", f"({row['created_at']!r}) must be an ISO 8601 time")
        if row["id"] in seen:
            s.fail(f"{where}.id", f"({row['id']}) appears twice")
        seen.add(row["id"])
        if row["scan_uid"] not in scans:
            s.fail(f"{where}.scan_uid", "names a scan missing from the package's scan list")
        if row["annotator"] not in annotators:
            s.fail(f"{where}.annotator", "names a reader missing from the package's annotator list")
        labels.append(row)
    return Package(head, annotators, scans, labels)


# --------------------------------------------------------------------------- merging
@dataclass
class ImportResult:
    path: Path
    package_project_id: str
    counts: MergeCounts
    labels_in_package: int

    def to_json(self) -> dict:
        return {"path": str(self.path), "package_project_id": self.package_project_id,
                "labels_in_package": self.labels_in_package, **self.counts.to_json()}


def import_package(project: Project, path: str | os.PathLike, *, allow_other_project: bool = False) -> ImportResult:
    """Merge a package into ``project``: all or nothing, idempotent, symmetric (see the module docstring).

    Scans are matched by SOP Instance UID (the scan uid), else by pixel hash. A package from another
    project (different project id) is refused unless ``allow_other_project`` (e.g. two sites that
    imported the same images into separate projects).
    """
    path = Path(path)
    package = read_package(path)
    theirs = package.head["project_id"]
    if theirs != project.project_id and not allow_other_project:
        raise PackageError(
            f"{path}: made from another project ({package.head.get('project_name')!r}, id {theirs}); this project "
            f"is {project.name!r} (id {project.project_id}). If both hold the same scans and you mean to combine "
            "them, pass --allow-other-project. Nothing was changed")
    allowed = set(project.classes) | set(SPECIAL_LABELS)
    bad = sorted({l["value"] for l in package.labels} - allowed)
    if bad:
        raise PackageError(f"{path}: labels {', '.join(map(repr, bad[:5]))} are not classes of this project "
                           f"({', '.join(project.classes)}); nothing was changed")
    by_uid, by_hash = project.packages.scan_index()
    scan_ids: dict[str, int] = {}
    unknown = []
    for uid, sc in package.scans.items():
        sid = by_uid.get(uid)
        if sid is None:
            sid = by_hash.get(sc["pixel_hash"])
        if sid is None:
            unknown.append(sc["path"] or uid)
        else:
            scan_ids[uid] = sid
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise PackageError(f"{path}: {len(unknown)} scans of the package are not in this project "
                           f"({', '.join(unknown[:5])}{more}); import those files first "
                           "(`aldesk import PROJECT FOLDER`), then import the package again. Nothing was changed")
    rows = [dict(l, scan_id=scan_ids[l["scan_uid"]]) for l in package.labels]
    try:
        counts = project.packages.merge_labels(rows, package.annotators, package.reviews, scan_ids)
    except MergeConflictError as exc:
        raise PackageError(f"{path}: {exc}") from exc
    return ImportResult(path, theirs, counts, len(package.labels))
