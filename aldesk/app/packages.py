"""Annotation packages: a workstation's labels (with history, notes, times) as one plain-data file,
merged into another copy of the project without losing, doubling or forging a label.

A package (format version 2) is a zip holding only JSON, never pixels nor paths:

``package.json``   {"format": "aldesk-annotation-package", "version": 2, "project_id", "project_name",
                    "created", "aldesk_version", "workstation", "filters": {"annotator", "since"},
                    "classes", "annotators": [{"name", "role"}], "counts": {"labels", "current", "scans",
                    "annotators", "reviews"}, "signer": {"kind": "project"} | {"kind": "handout",
                    "handout_id", "reader"}, "members": {name: {"sha256", "bytes", "lines"}},
                    "auth": {"scheme": "hmac-sha256", "macs": [{"key_id", "mac"}]}}
``scans.jsonl``    one {"ref", "pixel_hash"} per line: ``ref`` is a hash of the scan's uid (never a path)
``labels.jsonl``   one {"id", "scan" (a ref), "annotator", "value", "note", "created_at", "duration_ms",
                    "workstation", "source", "replaced_by"} per line
``reviews.jsonl``  (in packages of every reader and time) one {"table": "adjudications" | "read_requests", "id", "scan",
                    "reviewer", "value", "reason", "created_at", "workstation"} per line

**Who may send what.** Each MAC is HMAC-SHA256 over the canonical JSON of package.json without
"auth"; package.json holds the SHA-256 of every member, so one MAC covers the whole package. A package
is accepted only under a key the receiving project holds:

* its own ``package_secret`` (the lead's own copies and backups): any reader, any known scan;
* a key another project gave it (``aldesk package trust PROJECT --add-key FILE``): the same;
* the secret of a hand-out it issued: only that hand-out's reader and the scans it was issued for;
  adjudications and read requests only if it was issued to a reviewer or lead; never a new reader
  or a role (the reader's role is the one recorded when the hand-out was issued).

Rows outside what the sender may say (another reader, a scan not issued, a time outside the issue
window: before the hand-out was issued (new rows only) or in the future of the merge, an adjudication
to a non-class or by a mere annotator) are rejected one by one and each is
named in the result; the rest is merged in one transaction (rule in :mod:`aldesk.store.packages`).
Version 1 packages carried no key and are refused.

Reading trusts nothing: member names, sizes and compression ratios are checked before anything is
decompressed, sizes again while reading; members are read as a stream, line by line (JSON only: never
unpickled or evaluated), staged in temporary SQLite tables, so memory stays flat whatever the size.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import stat
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath

from aldesk import __version__
from aldesk.app.callbacks import Progress, ShouldStop, check_stop, never_stop, no_progress
from aldesk.errors import InputFileError
from aldesk.store import Project
from aldesk.store.annotations import ROLES
from aldesk.store.packages import (
    DuplicateRowError,
    Handout,
    MergeConflictError,
    MergeCounts,
    REVIEW_TABLES,
    scan_ref,
    sort_time,
    time_key,
)
from aldesk.store.project import SPECIAL_LABELS, utc_now

PACKAGE_FORMAT = "aldesk-annotation-package"
PACKAGE_VERSION = 2
PACKAGE_SUFFIX = ".aldpkg"
MEMBERS = ("package.json", "scans.jsonl", "labels.jsonl", "reviews.jsonl")
REQUIRED_MEMBERS = ("package.json", "scans.jsonl", "labels.jsonl")
MAC_CONTEXT = b"aldesk-package-v2\n"

#: Limits checked before decompressing: a package of a million labels is ~300 MB of JSON lines.
MAX_PACKAGE_BYTES = 1 << 30          # uncompressed, all members together
MAX_RATIO = 200                      # uncompressed / compressed, for members over RATIO_FLOOR
RATIO_FLOOR = 1 << 20
MAX_HEAD_BYTES = 1 << 20             # package.json
MAX_LINE_BYTES = 1 << 16             # one row of a .jsonl member
MAX_REJECTED = 10_000                # more rejected rows than this: the package is refused whole
FUTURE_SKEW = timedelta(minutes=5)   # clocks of two workstations may differ this much
_BATCH = 5000


class PackageError(InputFileError):
    """A package cannot be read or merged; the project was not changed."""


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def package_mac(secret: bytes, head: dict) -> str:
    """HMAC-SHA256 of package.json without its "auth" part (which holds the MACs)."""
    body = {k: v for k, v in head.items() if k != "auth"}
    return hmac.new(secret, MAC_CONTEXT + _canonical(body), hashlib.sha256).hexdigest()


def own_key_id(project_id: str) -> str:
    return f"project:{project_id}"


def handout_info(project: Project) -> dict | None:
    """The hand-out record of a hand-out copy (who it was issued to, when, its id), else None."""
    raw = project.meta("handout")
    if not raw:
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def _signing(project: Project) -> tuple[dict, list[tuple[str, bytes]]]:
    """(signer, [(key id, secret)]) a package written from ``project`` is signed with."""
    info = handout_info(project)
    secret = project.meta("handout_secret")
    if info is not None and secret and info.get("id"):
        return ({"kind": "handout", "handout_id": info["id"], "reader": info.get("annotator")},
                [(info["id"], bytes.fromhex(secret))])
    # a lead's project, or a hand-out copy made before hand-outs had keys: the latter is accepted only
    # where its key was explicitly trusted (aldesk package trust)
    own = project.packages.package_secret()
    keys = [(own_key_id(project.project_id), own)] if own else []
    keys += [(k.id, k.secret) for k in project.packages.keys("sign")]
    return {"kind": "project"}, keys


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


class _MemberWriter:
    """One JSON-lines member written as a stream, with its SHA-256, size and line count."""

    def __init__(self, zf: zipfile.ZipFile, name: str):
        self.name, self.sha, self.bytes, self.lines = name, hashlib.sha256(), 0, 0
        self._fh = zf.open(name, "w", force_zip64=True)

    def write(self, obj: dict) -> None:
        data = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8") + b"\n"
        self._fh.write(data)
        self.sha.update(data)
        self.bytes += len(data)
        self.lines += 1

    def close(self) -> dict:
        self._fh.close()
        return {"sha256": self.sha.hexdigest(), "bytes": self.bytes, "lines": self.lines}


def export_package(project: Project, out: str | os.PathLike, *, annotator: str | None = None,
                   since: str | datetime | None = None, progress: Progress = no_progress,
                   should_stop: ShouldStop = never_stop) -> PackageSummary:
    """Write the labels (history included), notes, times and reviews of ``project`` to ``out``, signed.

    annotator : only this reader's labels; since : only labels created at or after this time
    (a label's later changes are always newer, so history stays whole). A hand-out copy writes only
    its own reader's labels and reviews. No pixels, paths or UIDs are written; scans are named by
    ``scan_ref``. Streams: memory does not grow with the number of labels.
    """
    out = Path(out)
    since_t = parse_since(since) if isinstance(since, str) or since is None else since
    signer, keys = _signing(project)
    if signer["kind"] == "handout" and annotator not in (None, signer["reader"]):
        raise InputFileError(f"this hand-out copy was issued to {signer['reader']!r}: it sends only their labels, "
                             f"not {annotator!r}'s")
    known = [name for name, _ in project.labels.annotators()]
    if annotator is not None and annotator not in known:
        raise InputFileError(f"no annotator named {annotator!r} in this project (readers: {', '.join(known) or 'none'})")
    if not keys:
        raise PackageError(f"{project.path}: this project holds no key to sign packages with; open it with this "
                           "version of aldesk once (it adds one), then export again")
    reviews_too = annotator is None and since_t is None
    if signer["kind"] == "handout":
        annotator = signer["reader"]
    roles = dict(project.labels.annotators())
    senders: set[str] = set()
    scan_ids: set[int] = set()
    counts = {"labels": 0, "current": 0, "reviews": 0}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".writing")
    members: dict[str, dict] = {}
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            w = _MemberWriter(zf, "labels.jsonl")
            for n, r in enumerate(project.packages.iter_label_rows(annotator)):
                if n % 10_000 == 0:
                    check_stop(should_stop, "package export")
                if since_t is not None and time_key(r["created_at"]) < since_t:
                    continue
                scan_ids.add(r["scan_id"])
                senders.add(r["annotator"])
                w.write({"id": r["id"], "scan": scan_ref(r["scan_uid"]), "annotator": r["annotator"],
                         "value": r["value"], "note": r["note"], "created_at": r["created_at"],
                         "duration_ms": r["duration_ms"], "workstation": r["workstation"], "source": r["source"],
                         "replaced_by": r["replaced_by"]})
                counts["labels"] += 1
                counts["current"] += r["replaced_by"] is None
            members["labels.jsonl"] = w.close()
            if reviews_too:
                w = _MemberWriter(zf, "reviews.jsonl")
                for r in project.packages.iter_review_rows():
                    if signer["kind"] == "handout" and r["reviewer"] != annotator:
                        continue
                    scan_ids.add(r["scan_id"])
                    senders.add(r["reviewer"])
                    w.write({"table": r["table"], "id": r["id"], "scan": r["scan_ref"],
                             "reviewer": r["reviewer"], "value": r.get("value"), "reason": r["reason"],
                             "created_at": r["created_at"], "workstation": r["workstation"]})
                    counts["reviews"] += 1
                members["reviews.jsonl"] = w.close()
            w = _MemberWriter(zf, "scans.jsonl")
            for _sid, ref, ph in project.packages.scan_refs(sorted(scan_ids)):
                w.write({"ref": ref, "pixel_hash": ph})
            members["scans.jsonl"] = w.close()
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
                "annotators": [{"name": n, "role": roles.get(n, "annotator")} for n in sorted(senders)],
                "counts": {"labels": counts["labels"], "current": counts["current"], "scans": len(scan_ids),
                           "annotators": len(senders), "reviews": counts["reviews"]},
                "signer": signer,
                "members": members,
            }
            head["auth"] = {"scheme": "hmac-sha256",
                            "macs": [{"key_id": kid, "mac": package_mac(secret, head)} for kid, secret in keys]}
            # package.json last: a reader finds members by name, and the head can name their digests
            zf.writestr("package.json", json.dumps(head, indent=1, ensure_ascii=False, allow_nan=False) + "\n")
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return PackageSummary(out, counts["labels"], counts["current"], len(scan_ids), sorted(senders), counts["reviews"])


# --------------------------------------------------------------------------- reading
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



def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class UntrustedPackageError(PackageError):
    """The package is signed, but under no key this project holds (another project, an old copy)."""

    def __init__(self, message: str, head: dict):
        super().__init__(message)
        self.project_name = str(head.get("project_name") or "")
        self.project_id = str(head.get("project_id") or "")


class _Shape:
    """Field checks with messages that name the member and the line: ``labels.jsonl line 3: value``."""

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

    def text(self, d: dict, key: str, where: str, *, optional: bool = False, empty: bool = True,
             limit: int = 256) -> str | None:
        value = d.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str) or (not empty and not value.strip()):
            self.fail(f"{where}.{key}", "must be a text" + ("" if empty else " (not empty)"))
        if len(value) > limit:
            self.fail(f"{where}.{key}", f"is longer than {limit:,} characters")
        return value

    def integer(self, d: dict, key: str, where: str) -> int | None:
        value = d.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or abs(value) > 1 << 53):
            self.fail(f"{where}.{key}", "must be a whole number or null")
        return value

    def time(self, d: dict, key: str, where: str) -> str:
        value = self.text(d, key, where, empty=False, limit=64)
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{where}.{key}", f"({value!r}) must be an ISO 8601 time")
        return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _parse_json(path: Path, member: str, data: bytes, where: str = ""):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PackageError(f"{path}: {member}{where} is not UTF-8 text (byte {exc.start}); the package is damaged") from None
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise PackageError(f"{path}: {member}{where}: malformed JSON at line {exc.lineno} column {exc.colno} "
                           f"(character {exc.pos}): {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise PackageError(f"{path}: {member}{where}: malformed JSON ({exc})") from None


def _read_small(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    if info.file_size > limit:
        raise PackageError(f"{path}: {info.filename} is {info.file_size:,} bytes, over the limit of {limit:,}; "
                           "not an aldesk package")
    try:
        with zf.open(info) as fh:
            data = fh.read(limit + 1)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise PackageError(f"{path}: member {info.filename!r} cannot be decompressed ({exc}); "
                           "the package is damaged — write it again") from exc
    if len(data) > info.file_size:
        raise PackageError(f"{path}: member {info.filename!r} holds more data than it declares: "
                           "a zip bomb or a damaged package, refused")
    return data


def _member_lines(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, expect: dict):
    """Yield (line number, bytes) of a JSON-lines member as a stream; at the end the size and SHA-256
    are checked against package.json (``expect``): a mismatch raises PackageError."""
    sha, size, line_no, buf = hashlib.sha256(), 0, 0, b""
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(1 << 20):
                size += len(chunk)
                if size > info.file_size:
                    raise PackageError(f"{path}: member {info.filename!r} holds more data than it declares: "
                                       "a zip bomb or a damaged package, refused")
                sha.update(chunk)
                parts = (buf + chunk).split(b"\n")
                buf = parts.pop()
                for k, part in enumerate(parts + [buf]):
                    if len(part) > MAX_LINE_BYTES:
                        raise PackageError(f"{path}: {info.filename} line {line_no + k + 1} is longer than "
                                           f"{MAX_LINE_BYTES:,} bytes; not an aldesk package")
                for part in parts:
                    line_no += 1
                    if part.strip():
                        yield line_no, part
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise PackageError(f"{path}: member {info.filename!r} cannot be decompressed ({exc}); "
                           "the package is damaged — write it again") from exc
    if buf.strip():
        line_no += 1
        yield line_no, buf
    _check_digest(path, info.filename, sha.hexdigest(), size, expect)


def _check_digest(path: Path, name: str, digest: str, size: int, expect: dict) -> None:
    if digest != expect.get("sha256") or size != expect.get("bytes"):
        raise PackageError(f"{path}: checksum mismatch for {name}: its content changed after the package was "
                           "written (tampered or damaged); get a fresh copy. Nothing was changed")


def _digest(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, int]:
    sha, size = hashlib.sha256(), 0
    with zf.open(info) as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
            if size > info.file_size:
                break
    return sha.hexdigest(), size


def read_head(path: str | os.PathLike) -> dict:
    """package.json of a package, checked for shape (not yet authenticated). Raises PackageError."""
    path = Path(path)
    zf, infos = _open_zip(path)
    with zf:
        return _head(path, zf, infos)


def _head(path: Path, zf: zipfile.ZipFile, infos: dict) -> dict:
    if "package.json" not in infos:
        raise PackageError(f"{path}: not an aldesk package (no package.json); write one with "
                           "`aldesk package export PROJECT OUT.aldpkg`")
    head = _parse_json(path, "package.json", _read_small(path, zf, infos["package.json"], MAX_HEAD_BYTES))
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
    if version < PACKAGE_VERSION:
        raise PackageError(
            f"{path}: an unauthenticated package (format version {version}, from an aldesk older than package "
            "keys): anyone could have written it, so it is refused. Export it again from the same copy with this "
            "version of aldesk (a hand-out copy made by the older version needs a new hand-out, or the lead's "
            "explicit trust: `aldesk package trust`). Nothing was changed")
    missing = [m for m in REQUIRED_MEMBERS if m not in infos]
    if missing:
        raise PackageError(f"{path}: not an aldesk package (no {missing[0]}); write one with "
                           "`aldesk package export PROJECT OUT.aldpkg`")
    shape.text(head, "project_id", "the document", empty=False)
    members = shape.obj(head.get("members"), "members")
    for name in infos:
        if name != "package.json" and name not in members:
            raise PackageError(f"{path}: {name} has no checksum in package.json; the package was altered")
    for name, m in members.items():
        if name not in infos or name == "package.json":
            raise PackageError(f"{path}: package.json lists a checksum for {name!r}, which the package lacks; "
                               "the package was altered or is incomplete")
        shape.obj(m, f"members.{name}")
        shape.text(m, "sha256", f"members.{name}", empty=False, limit=64)
        for k in ("bytes", "lines"):
            if shape.integer(m, k, f"members.{name}") is None:
                shape.fail(f"members.{name}.{k}", "must be a whole number")
    signer = shape.obj(head.get("signer"), "signer")
    if signer.get("kind") not in ("project", "handout"):
        shape.fail("signer.kind", "must be 'project' or 'handout'")
    if signer["kind"] == "handout":
        shape.text(signer, "handout_id", "signer", empty=False, limit=64)
    auth = shape.obj(head.get("auth"), "auth")
    if auth.get("scheme") != "hmac-sha256":
        shape.fail("auth.scheme", "must be 'hmac-sha256'")
    for i, m in enumerate(shape.items(auth.get("macs"), "auth.macs")[:64]):
        shape.obj(m, f"auth.macs[{i}]")
        shape.text(m, "key_id", f"auth.macs[{i}]", empty=False, limit=128)
        shape.text(m, "mac", f"auth.macs[{i}]", empty=False, limit=64)
    for i, a in enumerate(shape.items(head.get("annotators", []), "annotators")):
        shape.obj(a, f"annotators[{i}]")
        shape.text(a, "name", f"annotators[{i}]", empty=False)
        if shape.text(a, "role", f"annotators[{i}]") not in ROLES:
            shape.fail(f"annotators[{i}].role", f"({a['role']!r}) must be one of {', '.join(ROLES)}")
    return head


# --------------------------------------------------------------------------- who sent it
@dataclass
class Sender:
    """Who a package comes from, as its key proves: this project's own copy, a trusted project, or a
    hand-out this project issued (``handout`` set)."""

    kind: str                   # "own" | "trusted" | "handout"
    key_id: str
    name: str
    handout: Handout | None = None

    def to_json(self) -> dict:
        out = {"kind": self.kind, "key_id": self.key_id, "name": self.name}
        if self.handout is not None:
            out |= {"reader": self.handout.annotator, "role": self.handout.role, "issued_at": self.handout.issued_at}
        return out


def authenticate(project: Project, path: Path, head: dict) -> Sender:
    """The sender whose key makes a valid MAC of ``head``; PackageError when there is none."""
    if handout_info(project) is not None and project.meta("handout_secret"):
        raise PackageError(f"{project.path}: is a hand-out copy: it sends its reader's work to the lead and takes "
                           "no package in. Merge packages into the lead's project. Nothing was changed")
    macs = {m["key_id"]: m["mac"] for m in head["auth"]["macs"][:64]}
    signer = head["signer"]
    forged = (f"{path}: the package's MAC does not match its content: it was altered after it was written, or "
              "forged. Nothing was changed")
    if signer["kind"] == "handout":
        h = project.packages.handout(signer["handout_id"])
        if h is None:
            raise PackageError(
                f"{path}: comes from a hand-out this project did not issue (hand-out {signer['handout_id']}, project "
                f"{head.get('project_name')!r}); only packages from this project's own hand-outs, copies or trusted "
                "projects are merged. Nothing was changed")
        mac = macs.get(h.id)
        if mac is None or not hmac.compare_digest(mac, package_mac(h.secret, head)):
            raise PackageError(forged)
        return Sender("handout", h.id, f"hand-out of {h.annotator}", h)
    own = project.packages.package_secret()
    own_id = own_key_id(project.project_id)
    if own is not None and own_id in macs:
        if not hmac.compare_digest(macs[own_id], package_mac(own, head)):
            raise PackageError(forged)
        return Sender("own", own_id, f"a copy of this project ({project.name})")
    for key in project.packages.keys("verify"):
        if key.id in macs:
            if not hmac.compare_digest(macs[key.id], package_mac(key.secret, head)):
                raise PackageError(forged)
            return Sender("trusted", key.id, f"trusted project {key.project_name!r}")
    if head.get("project_id") == project.project_id:
        why = ("made from a copy of this project that does not hold its key (a copy made by an older aldesk, or "
               "a forgery)")
    else:
        why = f"made from another project ({head.get('project_name')!r}, id {head.get('project_id')}) that this project does not trust"
    raise UntrustedPackageError(
        f"{path}: {why}. To merge a whole project, its lead runs `aldesk package trust THEIR_PROJECT --export-key "
        f"KEY.json` and you run `aldesk package trust {project.path} --add-key KEY.json` (once); then import "
        "again. Nothing was changed", head)


# --------------------------------------------------------------------------- merging
@dataclass
class ImportResult:
    path: Path
    package_project_id: str
    sender: Sender
    counts: MergeCounts
    labels_in_package: int
    rejected: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"path": str(self.path), "package_project_id": self.package_project_id,
                "sender": self.sender.to_json(), "labels_in_package": self.labels_in_package,
                **self.counts.to_json(), "rejected_count": len(self.rejected), "rejected": self.rejected}


@dataclass
class _Rules:
    """What the sender may say (see the module docstring)."""

    reader: str | None          # only this reader's rows (a hand-out), None: any
    may_review: bool
    why_no_review: str
    classes: set[str]
    latest: datetime

    @property
    def latest_t(self) -> str:
        return sort_time(self.latest.isoformat())

    def label(self, annotator: str, created_at: str, t: str) -> str | None:
        """``t``: ``sort_time(created_at)``."""
        if self.reader is not None and annotator != self.reader:
            return f"reader {annotator!r} is not the reader this hand-out was issued to ({self.reader!r})"
        if t > self.latest_t:
            return f"dated {created_at}, in the future of this merge"
        return None

    def review(self, table: str, reviewer: str, value: str | None, created_at: str) -> str | None:
        if not self.may_review:
            return self.why_no_review
        if self.reader is not None and reviewer != self.reader:
            return f"reviewer {reviewer!r} is not the reader this hand-out was issued to ({self.reader!r})"
        if table == "adjudications" and value not in self.classes:
            return f"adjudication to {value!r}, which is not a class of this project"
        if sort_time(created_at) > self.latest_t:
            return f"dated {created_at}, in the future of this merge"
        return None


def _rules(project: Project, sender: Sender) -> _Rules:
    latest = datetime.now(timezone.utc) + FUTURE_SKEW
    classes = set(project.classes)
    h = sender.handout
    if h is None:
        return _Rules(None, True, "", classes, latest)
    may = h.role in ("reviewer", "lead")
    return _Rules(h.annotator, may, f"the hand-out was issued to {h.annotator!r} as {h.role}: adjudications and "
                  "read requests need a hand-out issued to a reviewer or lead", classes, latest)


class _Rejects:
    def __init__(self, path: Path, staging):
        self.path, self.staging, self.rows = path, staging, []

    def add(self, *row) -> None:
        self.rows.append(row)
        if len(self.rows) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.staging.reject(self.rows)
            self.rows = []
        if self.staging.rejected_count() > MAX_REJECTED:
            raise PackageError(f"{self.path}: more than {MAX_REJECTED:,} rows of the package are outside what its "
                               "sender may change; the package is refused whole. Nothing was changed")


def import_package(project: Project, path: str | os.PathLike, *, progress: Progress = no_progress,
                   should_stop: ShouldStop = never_stop) -> ImportResult:
    """Merge a package into ``project``: authenticated, all or nothing, idempotent, symmetric.

    Rows the sender may not send are rejected and named in ``ImportResult.rejected``; everything else
    is merged in one transaction. Scans are matched through the hand-out's issued scans, else by
    reference (a hash of the SOP Instance UID), else by pixel hash.
    """
    path = Path(path)
    zf, infos = _open_zip(path)
    with zf:
        head = _head(path, zf, infos)
        sender = authenticate(project, path, head)
        rules = _rules(project, sender)
        with project.packages.staging() as staging:
            rejects = _Rejects(path, staging)
            members = head["members"]
            _stage_scans(path, zf, infos, members["scans.jsonl"], staging, should_stop)
            n_labels = _stage_labels(path, zf, infos, members["labels.jsonl"], staging, rules, rejects, progress,
                                     should_stop)
            if "reviews.jsonl" in infos:
                _stage_reviews(path, zf, infos, members["reviews.jsonl"], staging, rules, rejects, should_stop)
            rejects.flush()
            return _merge(project, path, head, sender, staging, rejects, n_labels, progress)


def _guarded(path: Path, zf, info, expect, rows):
    """Run the staging loop ``rows``; a shape error in a member whose checksum does not match is
    reported as the checksum mismatch (the real cause)."""
    try:
        return rows()
    except PackageError as exc:
        if "checksum mismatch" not in str(exc) and _digest(zf, info) != (expect.get("sha256"), expect.get("bytes")):
            _check_digest(path, info.filename, "", -1, expect)
        raise exc


def _stage_scans(path, zf, infos, expect, staging, should_stop) -> None:
    s = _Shape(path, "scans.jsonl")
    info = infos["scans.jsonl"]

    def rows():
        batch = []
        for line, raw in _member_lines(path, zf, info, expect):
            d = s.obj(_parse_json(path, "scans.jsonl", raw, f" line {line}"), f"line {line}")
            batch.append((s.text(d, "ref", f"line {line}", empty=False, limit=64),
                          s.text(d, "pixel_hash", f"line {line}", empty=False, limit=128), line))
            if len(batch) >= _BATCH:
                check_stop(should_stop, "package import")
                staging.add_scans(batch)
                batch = []
        staging.add_scans(batch)

    _guarded(path, zf, info, expect, rows)


_OPTIONAL_TEXT = (str, type(None))


def _label_row(d, line: int) -> tuple | None:
    """labels.jsonl row -> (id, line, scan, annotator, value, note, created_at, duration_ms, workstation,
    source, replaced_by) when every field is well formed (the common case, checked quickly), else None."""
    if type(d) is not dict:
        return None
    g = d.get
    i, scan, ann, value, note, created = g("id"), g("scan"), g("annotator"), g("value"), g("note"), g("created_at")
    dur, ws, src, rep = g("duration_ms"), g("workstation"), g("source"), g("replaced_by")
    if not (type(i) is str and type(scan) is str and type(ann) is str and type(value) is str
            and type(created) is str and isinstance(note, _OPTIONAL_TEXT) and isinstance(ws, _OPTIONAL_TEXT)
            and isinstance(src, _OPTIONAL_TEXT) and isinstance(rep, _OPTIONAL_TEXT)
            and (dur is None or (type(dur) is int and abs(dur) <= 1 << 53))):
        return None
    if not (0 < len(i) <= 64 and 0 < len(scan) <= 64 and 0 < len(ann) <= 256 and 0 < len(value) <= 256
            and len(created) <= 64 and len(note or "") <= 20_000 and len(ws or "") <= 256 and len(src or "") <= 256
            and (rep is None or 0 < len(rep) <= 64) and i.strip() and scan.strip() and ann.strip() and value.strip()):
        return None
    try:
        datetime.fromisoformat(created)
    except ValueError:
        return None
    return (i, line, scan, ann, value, note or "", created, dur, ws or "", src or "", rep)


def _label_row_checked(s: "_Shape", d, line: int) -> tuple:
    """The same row, field by field, raising PackageError naming the first bad field."""
    where = f"line {line}"
    s.obj(d, where)
    return (s.text(d, "id", where, empty=False, limit=64), line, s.text(d, "scan", where, empty=False, limit=64),
            s.text(d, "annotator", where, empty=False), s.text(d, "value", where, empty=False),
            s.text(d, "note", where, optional=True, limit=20_000) or "", s.time(d, "created_at", where),
            s.integer(d, "duration_ms", where), s.text(d, "workstation", where, optional=True) or "",
            s.text(d, "source", where, optional=True) or "",
            s.text(d, "replaced_by", where, optional=True, empty=False, limit=64))


def _stage_labels(path, zf, infos, expect, staging, rules: _Rules, rejects: _Rejects, progress, should_stop) -> int:
    s = _Shape(path, "labels.jsonl")
    info = infos["labels.jsonl"]
    total = int(expect.get("lines") or 0)

    def rows() -> int:
        batch, n = [], 0
        latest_t = rules.latest_t
        for line, raw in _member_lines(path, zf, info, expect):
            n += 1
            d = _parse_json(path, "labels.jsonl", raw, f" line {line}")
            row = _label_row(d, line) or _label_row_checked(s, d, line)
            t = sort_time(row[6])
            why = rules.label(row[3], row[6], t) if rules.reader is not None or t > latest_t else None
            if why:
                rejects.add("labels.jsonl", line, row[0], row[3], row[2], why)
                continue
            batch.append(row[:7] + (t,) + row[7:])
            if len(batch) >= _BATCH:
                check_stop(should_stop, "package import")
                _add(path, staging.add_labels, batch, "labels.jsonl")
                batch = []
                progress(n, total, "labels read")
        _add(path, staging.add_labels, batch, "labels.jsonl")
        return n

    return _guarded(path, zf, info, expect, rows)


def _stage_reviews(path, zf, infos, expect, staging, rules: _Rules, rejects: _Rejects, should_stop) -> None:
    s = _Shape(path, "reviews.jsonl")
    info = infos["reviews.jsonl"]

    def rows():
        batch = []
        for line, raw in _member_lines(path, zf, info, expect):
            where = f"line {line}"
            d = s.obj(_parse_json(path, "reviews.jsonl", raw, f" {where}"), where)
            table = s.text(d, "table", where, empty=False)
            if table not in REVIEW_TABLES:
                s.fail(f"{where}.table", f"({table!r}) must be one of {', '.join(REVIEW_TABLES)}")
            value = s.text(d, "value", where, empty=False) if table == "adjudications" else None
            row = (table, s.text(d, "id", where, empty=False, limit=64), line, s.text(d, "scan", where, empty=False, limit=64),
                   s.text(d, "reviewer", where, empty=False), value,
                   s.text(d, "reason", where, optional=True, limit=20_000) or "", s.time(d, "created_at", where),
                   s.text(d, "workstation", where, optional=True) or "")
            why = rules.review(table, row[4], value, row[7])
            if why:
                rejects.add("reviews.jsonl", line, row[1], row[4], row[3], why)
                continue
            batch.append(row)
            if len(batch) >= _BATCH:
                check_stop(should_stop, "package import")
                _add(path, staging.add_reviews, batch, "reviews.jsonl")
                batch = []
        _add(path, staging.add_reviews, batch, "reviews.jsonl")

    _guarded(path, zf, info, expect, rows)


def _add(path: Path, add, batch: list, member: str) -> None:
    try:
        add(batch)
    except DuplicateRowError as exc:
        raise PackageError(f"{path}: {member}: line {exc.second}: {exc}; the package is damaged or was edited") from None


def _merge(project: Project, path: Path, head: dict, sender: Sender, staging, rejects: _Rejects, n_labels: int,
           progress: Progress) -> ImportResult:
    dangling = staging.dangling()
    if dangling:
        raise PackageError(f"{path}: {dangling[0]}: line {dangling[1]}: names a scan missing from scans.jsonl; "
                           "the package is damaged or was edited")
    allowed = set(project.classes) | set(SPECIAL_LABELS)
    bad = sorted(staging.label_values() - allowed)
    if bad:
        raise PackageError(f"{path}: labels {', '.join(map(repr, bad[:5]))} are not classes of this project "
                           f"({', '.join(project.classes)}); nothing was changed")
    unknown = staging.resolve_scans(sender.handout.id if sender.handout else None)
    if sender.handout is not None:
        staging.reject_unresolved("the scan was not issued to this hand-out")
        issued = time_key(sender.handout.issued_at) - FUTURE_SKEW
        staging.reject_new_before(sort_time(issued.isoformat()), f"dated before the hand-out was issued "
                                  f"({sender.handout.issued_at}): not a read made in it")
    elif unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise PackageError(f"{path}: {len(unknown)} scans of the package are not in this project "
                           f"(scans.jsonl refs {', '.join(u[:12] for u in unknown[:5])}{more}); import those files "
                           "first (`aldesk import PROJECT FOLDER`), then import the package again. Nothing was changed")
    staging.cascade_rejections()
    rejects.flush()
    if sender.handout is not None:
        roles, default = {}, sender.handout.role   # a hand-out never names a new reader or a role
    else:
        roles = {a["name"]: a["role"] for a in head.get("annotators", [])}
        default = "annotator"
    try:
        counts = staging.merge(roles, default, progress=progress)
    except MergeConflictError as exc:
        raise PackageError(f"{path}: {exc}") from exc
    return ImportResult(path, head["project_id"], sender, counts, n_labels, staging.rejected())


# --------------------------------------------------------------------------- trust between projects
KEY_FORMAT = "aldesk-package-key"


def export_trust_key(project: Project, file: str | os.PathLike) -> dict:
    """Write a new key of ``project`` to ``file`` for another project's lead to trust (``add_trust_key``).
    From then on every package of ``project`` also carries a MAC under it. The file is a secret: whoever
    holds it can write packages the other project accepts; hand it over in person and delete it after."""
    file = Path(file)
    if file.exists():
        raise InputFileError(f"{file}: already exists; choose a new file for the key")
    if project.meta("handout_secret"):
        raise InputFileError(f"{project.path}: is a hand-out copy; its packages are already signed with the key its "
                             "lead issued it, and the lead merges them as they are")
    key = project.packages.new_sign_key()
    doc = {"format": KEY_FORMAT, "version": 1, "key_id": key.id, "secret": key.secret.hex(),
           "project_id": key.project_id, "project_name": key.project_name, "created": key.created_at}
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
    return {k: v for k, v in doc.items() if k != "secret"} | {"file": str(file)}


def add_trust_key(project: Project, file: str | os.PathLike) -> dict:
    """Trust packages signed with the key in ``file`` (written by ``export_trust_key`` in another project)."""
    file = Path(file)
    try:
        with open(file, "rb") as fh:
            data = fh.read(1 << 16)
    except OSError as exc:
        raise InputFileError(f"{file}: cannot be read ({exc.strerror}); check the path") from None
    doc = _parse_json(file, "key file", data)
    s = _Shape(file, "key file")
    s.obj(doc, "the document")
    if doc.get("format") != KEY_FORMAT or doc.get("version") != 1:
        raise InputFileError(f"{file}: not an aldesk package key; write one with "
                             "`aldesk package trust OTHER_PROJECT --export-key FILE`")
    key_id = s.text(doc, "key_id", "the document", empty=False, limit=64)
    secret = s.text(doc, "secret", "the document", empty=False, limit=128)
    other = s.text(doc, "project_id", "the document", empty=False, limit=64)
    name = s.text(doc, "project_name", "the document", optional=True) or other
    try:
        raw = bytes.fromhex(secret)
    except ValueError:
        raw = b""
    if len(raw) < 32:
        s.fail("secret", "must be 32 bytes or more as hex")
    if other == project.project_id:
        raise InputFileError(f"{file}: is a key of this very project; trust is for another project's key")
    if any(k.id == key_id for k in project.packages.keys("sign")):
        raise InputFileError(f"{file}: is a key this project gave away; add it in the other project")
    key = project.packages.add_key(key_id, "verify", raw, other, name)
    return {"key_id": key.id, "project_id": key.project_id, "project_name": key.project_name}


def trust_list(project: Project) -> dict:
    """Every key this project holds (never the secrets): hand-outs issued, keys given and trusted."""
    return {
        "handouts": [{"id": h.id, "reader": h.annotator, "role": h.role, "issued_at": h.issued_at,
                      "deidentified": h.deidentified} for h in project.packages.handouts()],
        "given": [{"key_id": k.id, "created": k.created_at} for k in project.packages.keys("sign")],
        "trusted": [{"key_id": k.id, "project_id": k.project_id, "project_name": k.project_name,
                     "added": k.created_at} for k in project.packages.keys("verify")],
    }
