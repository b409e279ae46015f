"""De-identify scans for export: DICOM PS3.15 Annex E basic profile, and metadata-free rasters.

Pure: pydicom and Pillow on files the caller names; no store, no project layout. Never modifies a
source file; never writes a name, ID or date of the source to a copy made without identifiers.

The table is not written by hand: it is PS3.15 Table E.1-1 (basic profile column) as published in
the newest edition that the ``dicom-anonymizer`` package (Kitware, BSD-3) ships as data
(``dicomanonymizer.dicom_anonymization_databases.dicomfields_<edition>``; :data:`PROFILE_EDITION`
records which, and every copy says it in De-identification Method). Upgrading that package brings a
newer edition. Only its data is used: its own engine works on the top level only, draws random UIDs
and applies the laxest of the combined actions, so the actions are applied here.

What :func:`deidentify_dataset` does, at every level of the dataset (sequence items too):

* private tags are removed, except those an explicit safe-private list names (``DeidOptions``);
  curves (50xx) and overlays (60xx, which may hold burned-in text) are removed whole;
* every attribute of the table gets its action: X remove, Z empty, D dummy value, U remapped UID.
  Combined actions take the strictest one that keeps the object readable: Z/D, X/Z and X/Z/D -> Z,
  X/D -> X, X/Z/U* -> U for a UID, and for a sequence (Referenced / Source Image) its items reduced
  to references: UIDs remapped, frame numbers kept, anything else removed. D on a sequence leaves
  one empty item; a sequence the table does not name has its items cleaned by these same rules;
* beyond the table, conservatively: any other UID (not a DICOM-defined ``1.2.840.10008.`` one) is
  remapped, any other person name emptied, any other date, time or datetime removed, elements of
  unknown meaning (VR UN) removed, and Issuer of Accession Number Sequence removed;
* UIDs are remapped with a keyed hash (HMAC-SHA256 under a secret the caller keeps) into
  ``2.25.<int>``, so the same source UID gets the same new UID in every file of an export (studies
  and series still group) and nobody without the secret can map them back;
* Patient Identity Removed = YES, De-identification Method (+ codes: 113100 basic, 113107 modified
  dates, 113105 clean descriptors, 113111 safe private) and Longitudinal Temporal Information
  Modified (REMOVED, or MODIFIED with shifted dates) are written; Patient ID / Name become the
  pseudonym the caller gives (the project's patient key), or empty.

Retention options (``DeidOptions``), off by default: ``date_shift_days`` shifts every date and
datetime the profile would remove or blank by the same number of days (give one per patient for
longitudinal studies; the birth date is still emptied; times of day are kept); ``clean_descriptors``
keeps study / series / protocol descriptions after removing every identifying value the header
holds (names, IDs, dates) and every run of 5+ digits from them; ``safe_private`` keeps the listed
private attributes (creator, group, element offset) as they are.

Burned-in annotation cannot be removed from pixels here: :func:`burned_in_reason` says when a scan
must be left out of a de-identified export (Burned In Annotation = YES, or a modality that usually
burns text in, US / SC / XA / ES / XC, without an explicit NO).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import importlib
import os
import pkgutil
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from aldesk.errors import InvalidScanError

PROFILE_NAME = "DICOM PS3.15 E.1 Basic Application Level Confidentiality Profile"
PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
MODIFIED_DATES_CODE = ("113107", "DCM", "Retain Longitudinal Temporal Information Modified Dates Option")
CLEAN_DESCRIPTORS_CODE = ("113105", "DCM", "Clean Descriptors Option")
SAFE_PRIVATE_CODE = ("113111", "DCM", "Retain Safe Private Option")
DICOM_UID_ROOT = "1.2.840.10008."
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_TABLE_PACKAGE = "dicomanonymizer.dicom_anonymization_databases"
#: the table's action lists in dicom-anonymizer -> the action as PS3.15 writes it
_CATEGORIES = {"D_TAGS": "D", "Z_TAGS": "Z", "X_TAGS": "X", "U_TAGS": "U", "Z_D_TAGS": "Z/D", "X_Z_TAGS": "X/Z",
               "X_D_TAGS": "X/D", "X_Z_D_TAGS": "X/Z/D", "X_Z_U_STAR_TAGS": "X/Z/U*"}
#: a combined action -> the one applied (see the module docstring)
APPLIED = {"D": "D", "Z": "Z", "X": "X", "U": "U", "Z/D": "Z", "X/Z": "Z", "X/D": "X", "X/Z/D": "Z",
           "X/Z/U*": "U*"}
#: beyond the table (the table of the edition in use lacks it; earlier hand-made profiles had it)
_EXTRA = {0x00080051: "X"}  # Issuer of Accession Number Sequence
#: modalities whose images usually carry burned-in text (patient name, dates) unless they say NO
BURNED_IN_MODALITIES = ("US", "SC", "XA", "ES", "XC")
#: descriptions the Clean Descriptors option keeps (cleaned)
DESCRIPTORS = ("StudyDescription", "SeriesDescription", "ProtocolName", "PerformedProcedureStepDescription",
               "RequestedProcedureDescription", "ScheduledProcedureStepDescription",
               "AcquisitionProtocolDescription", "DerivationDescription")
_NO_SHIFT = ("PatientBirthDate", "PatientBirthTime", "PatientBirthDateInAlternativeCalendar")


@lru_cache(maxsize=1)
def _table() -> tuple[str, dict[int, str], tuple[tuple[int, int, int, int, str], ...]]:
    """(edition, {tag: action}, ((group, element, group mask, element mask, action), ...))."""
    try:
        package = importlib.import_module(_TABLE_PACKAGE)
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError("de-identification needs the dicom-anonymizer package (its PS3.15 table): "
                          "pip install dicom-anonymizer") from exc
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.name.startswith("dicomfields_"))
    module = importlib.import_module(f"{_TABLE_PACKAGE}.{names[-1]}")
    exact: dict[int, str] = {}
    ranges = []
    for category, action in _CATEGORIES.items():
        for entry in getattr(module, category):
            if len(entry) == 2:
                exact[int(Tag(*entry))] = action
            else:
                ranges.append((*entry, action))
    for tag, action in _EXTRA.items():
        exact.setdefault(tag, action)
    return names[-1].removeprefix("dicomfields_"), exact, tuple(ranges)


def profile_edition() -> str:
    """The edition of PS3.15 whose Table E.1-1 is applied, e.g. ``"2026c"``."""
    return _table()[0]


def profile_table() -> dict[int, str]:
    """{tag (int): action as the table writes it: D, Z, X, U, Z/D, X/Z, X/D, X/Z/D or X/Z/U*}."""
    return dict(_table()[1])


def profile_ranges() -> tuple[tuple[int, int, int, int, str], ...]:
    """The table's repeating groups: (group, element, group mask, element mask, action) (curves, overlays)."""
    return _table()[2]


def __getattr__(name: str):
    if name == "BASIC_PROFILE":  # {keyword: action} of the attributes pydicom names (the others by tag)
        return {kw: a for t, a in profile_table().items() if (kw := keyword_for_tag(t))}
    if name == "PROFILE_EDITION":
        return profile_edition()
    raise AttributeError(name)


#: What a copy "with identifiers" carries and a de-identified one must never carry.
IDENTIFYING_KEYWORDS = ("PatientID", "PatientName", "PatientBirthDate", "AccessionNumber",
                        "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")

# Elements the de-identification adds; never touched by the walk.
_WRITTEN = ("PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
            "LongitudinalTemporalInformationModified")
_TEXT_VRS = ("AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT")
_DUMMY = {"DA": "19000101", "DT": "19000101000000", "TM": "000000", "AS": "000Y", "DS": "0", "IS": "0",
          "UR": "http://anonymized.invalid"}


def remap_uid(uid: str, secret: bytes) -> str:
    """A new UID for ``uid``: ``2.25.`` + the first 128 bits of HMAC-SHA256(secret, uid) as an integer.

    At most 44 characters (the limit is 64); the same (uid, secret) always gives the same result.
    """
    digest = hmac.new(secret, uid.strip().rstrip("\x00").encode("ascii", "replace"), hashlib.sha256).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def scan_key(scan_uid: str, secret: bytes) -> str:
    """The pseudonymous key of a scan that exports and packages carry instead of its path.

    ``scan_uid`` is the project's identity of the scan (its SOP Instance UID, else ``"sha:"`` + pixel
    hash); the key is that value remapped like every UID, so for a DICOM scan it equals the SOP
    Instance UID of its de-identified copy. Stable for a given secret; not reversible without it.
    """
    return remap_uid(scan_uid, secret)


def date_shift_days(patient_key: str, secret: bytes, max_days: int = 3650) -> int:
    """A patient's date shift for the modified-dates option: -1..-max_days days, the same for every
    scan of that patient under one secret (so intervals between a patient's studies are kept)."""
    digest = hmac.new(secret, b"date-shift:" + patient_key.encode("utf-8"), hashlib.sha256).digest()
    return -(1 + int.from_bytes(digest[:8], "big") % max_days)


@dataclass(frozen=True)
class DeidOptions:
    """Retention options of PS3.15 E.3 (all off by default: the basic profile alone).

    date_shift_days : shift dates by this many days instead of removing them (one value per patient,
        e.g. :func:`date_shift_days`), or None.
    clean_descriptors : keep descriptions (:data:`DESCRIPTORS`) with identifying values removed.
    safe_private : private attributes kept as they are: (private creator, group, element offset),
        e.g. ("SIEMENS CSA HEADER", 0x0029, 0x08).
    """

    date_shift_days: int | None = None
    clean_descriptors: bool = False
    safe_private: frozenset = frozenset()


@dataclass
class DeidReport:
    """What was done to one dataset. burned_in: "YES", "NO" or "unknown" (the Burned In Annotation tag)."""

    burned_in: str = "unknown"
    removed: int = 0
    emptied: int = 0
    dummied: int = 0
    uids_remapped: int = 0
    dates_shifted: int = 0
    removed_keywords: set[str] = field(default_factory=set)
    edition: str = ""


def _empty(vr: str):
    """A zero-length value of the VR."""
    if vr == "SQ":
        return Sequence()
    if vr in _TEXT_VRS or vr in ("UI", "DA", "DT", "TM", "AS", "UR", "DS", "IS"):
        return ""
    if vr in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT"):
        return None
    return b""


def _profile_action(tag: int) -> str | None:
    _, exact, ranges = _table()
    action = exact.get(tag)
    if action is not None:
        return action
    group, element = tag >> 16, tag & 0xFFFF
    for g, e, gmask, emask, a in ranges:
        if group & gmask == g & gmask and element & emask == e & emask:
            return a
    return None


def _remap_value(value, secret: bytes):
    def one(v):
        text = str(v).strip().rstrip("\x00")
        return text if not text or text.startswith(DICOM_UID_ROOT) else remap_uid(text, secret)

    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return [one(v) for v in value]
    return one(value)


def _shift_one(text: str, vr: str, days: int) -> str | None:
    text = str(text).strip()
    if len(text) < 8 or not text[:8].isdigit():
        return None
    try:
        day = _dt.date(int(text[:4]), int(text[4:6]), int(text[6:8])) + _dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return day.strftime("%Y%m%d") + (text[8:] if vr == "DT" else "")


def _shifted(elem, days: int):
    """The element's dates shifted by ``days``, or None when a value is not a full date."""
    values = elem.value if isinstance(elem.value, (list, tuple, pydicom.multival.MultiValue)) else [elem.value]
    out = [_shift_one(v, elem.VR, days) for v in values if str(v).strip()]
    if not out or None in out:
        return None
    return out if len(out) > 1 else out[0]


class _Walk:
    """One de-identification pass: options, secret, report, and the identifying values seen."""

    def __init__(self, secret: bytes, options: DeidOptions, report: DeidReport, scrub: list[str]):
        self.secret, self.options, self.report, self.scrub = secret, options, report, scrub

    def private_kept(self, ds: Dataset) -> set[int]:
        if not self.options.safe_private:
            return set()
        kept = set()
        for tag in ds.keys():
            if not tag.is_private or tag.element < 0x1000:
                continue
            creator = ds.get(Tag(tag.group, tag.element >> 8))
            if creator is not None and (str(creator.value), tag.group, tag.element & 0xFF) in self.options.safe_private:
                kept |= {int(tag), int(Tag(tag.group, tag.element >> 8))}
        return kept

    def remove(self, ds: Dataset, tag, keyword: str = "") -> None:
        del ds[tag]
        self.report.removed += 1
        self.report.removed_keywords.add(keyword or str(Tag(tag)))

    def clean(self, ds: Dataset) -> None:
        keep_private = self.private_kept(ds)
        for tag in list(ds.keys()):
            if tag.is_private:
                if int(tag) not in keep_private:
                    self.remove(ds, tag)
                continue
            if 0x5000 <= tag.group <= 0x50FF or 0x6000 <= tag.group <= 0x60FF:
                self.remove(ds, tag)  # curves, overlays (the table's ranges, and the rest of the groups)
                continue
            try:
                elem = ds[tag]
            except Exception:  # noqa: BLE001 - a value pydicom cannot parse is not kept unseen
                self.remove(ds, tag)
                continue
            keyword = elem.keyword
            if keyword in _WRITTEN or tag == 0x7FE00010:
                continue
            table_action = _profile_action(int(tag))
            action = APPLIED[table_action] if table_action else self.beyond_table(elem)
            if action is None:
                continue
            if self.options.clean_descriptors and keyword in DESCRIPTORS:
                action = "C"
            elif self.options.date_shift_days is not None and action in ("X", "Z", "D") and keyword not in _NO_SHIFT:
                if elem.VR == "TM":
                    continue  # times of day kept beside shifted dates
                if elem.VR in ("DA", "DT") and self.shift(elem):
                    continue
            self.apply(ds, elem, action, keyword, table_action == "X/Z/U*")

    def shift(self, elem) -> bool:
        """Shift the element's dates in place; False (left for the profile) when they are not full dates."""
        value = _shifted(elem, self.options.date_shift_days) if elem.value not in (None, "") else None
        if value is None:
            return False
        elem.value = value
        self.report.dates_shifted += 1
        return True

    def beyond_table(self, elem) -> str | None:
        if elem.VR == "SQ":
            return "U*"  # clean the items
        return {"UI": "U", "PN": "Z", "DA": "X", "DT": "X", "TM": "X", "UN": "X"}.get(elem.VR)

    def references(self, ds: Dataset) -> None:
        """An item of an X/Z/U* sequence (Referenced / Source Image): references only. UIDs remapped,
        numbers (frame, segment) and nested references kept, anything else removed."""
        for tag in list(ds.keys()):
            try:
                elem = ds[tag]
            except Exception:  # noqa: BLE001 - a value pydicom cannot parse is not kept unseen
                self.remove(ds, tag)
                continue
            if tag.is_private:
                self.remove(ds, tag)
            elif elem.VR == "UI":
                self.apply(ds, elem, "U", elem.keyword)
            elif elem.VR == "SQ":
                for item in elem.value:
                    self.references(item)
            elif elem.VR not in ("IS", "DS", "US", "UL", "SS", "SL", "AT"):
                self.remove(ds, tag, elem.keyword)

    def apply(self, ds: Dataset, elem, action: str, keyword: str, table_u_star: bool = False) -> None:
        report = self.report
        if action == "U" and elem.VR == "SQ":
            action = "U*"
        if action == "U" and elem.VR != "UI":
            action = "X"
        if action == "X":
            self.remove(ds, elem.tag, keyword)
        elif action == "Z":
            elem.value = _empty(elem.VR)
            report.emptied += 1
        elif action == "D":
            self.dummy(elem)
        elif action == "C":
            elem.value = self.cleaned(elem.value)
        elif action == "U*":
            if elem.VR == "SQ":
                for item in elem.value:
                    if table_u_star:
                        self.references(item)
                    else:
                        self.clean(item)
            elif elem.VR == "UI":
                self.apply(ds, elem, "U", keyword)
            else:
                self.apply(ds, elem, "Z", keyword)
        elif action == "U":
            if elem.value not in (None, ""):
                elem.value = _remap_value(elem.value, self.secret)
                report.uids_remapped += 1

    def dummy(self, elem) -> None:
        vr = elem.VR
        if vr == "SQ":
            elem.value = Sequence([Dataset()])
        elif vr == "UI":
            elem.value = remap_uid(str(elem.value or "empty"), self.secret)
        elif vr in _DUMMY:
            elem.value = _DUMMY[vr]
        elif vr in _TEXT_VRS:
            elem.value = "ANONYMIZED"
        elif vr in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"):
            elem.value = 0
        else:  # OB, OW, UN and other binary
            elem.value = b"\x00\x00"
        self.report.dummied += 1

    def cleaned(self, value):
        def one(text: str) -> str:
            text = str(text)
            for secret in self.scrub:
                text = re.sub(re.escape(secret), "*", text, flags=re.IGNORECASE)
            return re.sub(r"\d{5,}", "*", text)

        if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
            return [one(v) for v in value]
        return one(value) if value is not None else value


_IDENTIFYING_WORDS = re.compile(r"ID|Number|Name|Address|Institution|Telephone|Location|Residence")


def _identifying_values(ds: Dataset) -> list[str]:
    """Values the Clean Descriptors option removes from descriptions: every person name, date and
    ID / name / address / institution attribute of the table, at any level, whole and by part."""
    found: set[str] = set()
    for elem in ds.iterall():
        keyword = elem.keyword or ""
        if not elem.value or keyword in DESCRIPTORS or not _profile_action(int(elem.tag)):
            continue
        if elem.VR in ("PN", "DA", "DT") or (elem.VR in ("LO", "SH", "ST", "LT") and _IDENTIFYING_WORDS.search(keyword)):
            values = elem.value if isinstance(elem.value, (list, tuple, pydicom.multival.MultiValue)) else [elem.value]
            for v in values:
                text = str(v).strip()
                found.add(text)
                found |= {p.strip() for p in re.split(r"[\^ ,]", text)}
    return sorted((v for v in found if len(v) >= 3), key=len, reverse=True)


def deidentify_dataset(ds: Dataset, *, uid_secret: bytes, patient_pseudonym: str | None = None,
                       options: DeidOptions | None = None) -> DeidReport:
    """De-identify ``ds`` in place (see the module docstring). Returns what was done.

    uid_secret : key of the UID remapping; keep it constant across an export (and across exports of
        the same project, so re-exports agree) and never write it anywhere.
    patient_pseudonym : written as Patient ID and Patient Name (e.g. the project's salted patient
        key), or None for empty values.
    options : retention options (:class:`DeidOptions`); None = the basic profile alone.
    """
    options = options or DeidOptions()
    report = DeidReport(edition=profile_edition())
    burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    report.burned_in = burned if burned in ("YES", "NO") else "unknown"
    scrub = _identifying_values(ds) if options.clean_descriptors else []
    _Walk(uid_secret, options, report, scrub).clean(ds)
    ds.PatientID = patient_pseudonym or ""
    ds.PatientName = patient_pseudonym or ""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = method_text(options)
    codes = [PROFILE_CODE]
    if options.date_shift_days is not None:
        codes.append(MODIFIED_DATES_CODE)
    if options.clean_descriptors:
        codes.append(CLEAN_DESCRIPTORS_CODE)
    if options.safe_private:
        codes.append(SAFE_PRIVATE_CODE)
    items = []
    for value, scheme, meaning in codes:
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, scheme, meaning
        items.append(code)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    ds.LongitudinalTemporalInformationModified = "MODIFIED" if options.date_shift_days is not None else "REMOVED"
    if report.burned_in == "YES":
        ds.BurnedInAnnotation = "YES"  # kept: whoever uses the copy must know
    return report


def method_text(options: DeidOptions | None = None) -> str:
    """De-identification Method (LO, at most 64 characters): the profile, its edition, the options."""
    options = options or DeidOptions()
    extra = "".join(flag for on, flag in ((options.date_shift_days is not None, " +dates shifted"),
                                          (options.clean_descriptors, " +clean desc"),
                                          (bool(options.safe_private), " +safe private")) if on)
    return f"PS3.15-{profile_edition()} E.1-1 basic (aldesk){extra}; keyed UIDs"[:64]


def burned_in_reason(ds: Dataset) -> str:
    """Why the pixels of ``ds`` may show text (a name, a date) that de-identification cannot remove,
    or "" when nothing says so: Burned In Annotation = YES, or a modality of
    :data:`BURNED_IN_MODALITIES` without an explicit Burned In Annotation = NO."""
    flag = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if flag == "YES":
        return "Burned In Annotation = YES"
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if flag != "NO" and modality in BURNED_IN_MODALITIES:
        return f"modality {modality} usually has text burned into the pixels, and Burned In Annotation is not NO"
    return ""


def _transfer_syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts:
        return str(ts)
    implicit, little = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little or little is None else ExplicitVRBigEndian


def _read(path: str) -> Dataset:
    from aldesk.imaging import dicom

    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(132)
    with dicom.quiet(), dicom.header_errors(path):
        ds = dicom.read_dataset(path, headless=head[128:132] != b"DICM", file_size=size)
        for _ in ds.iterall():  # read deferred values while the source is known to be intact
            pass
    return ds


def deidentify_file(src: str | os.PathLike, dst: str | os.PathLike, *, uid_secret: bytes,
                    patient_pseudonym: str | None = None, options: DeidOptions | None = None) -> DeidReport:
    """Write a de-identified copy of the DICOM file ``src`` to ``dst`` (Part 10, same transfer
    syntax, pixel data untouched). Raises InvalidScanError if ``src`` cannot be read."""
    src, dst = os.fspath(src), Path(dst)
    ds = _read(src)
    ts = _transfer_syntax(ds)
    sop_class = ds.get("SOPClassUID") or (getattr(ds, "file_meta", None) or {}).get("MediaStorageSOPClassUID")
    report = deidentify_dataset(ds, uid_secret=uid_secret, patient_pseudonym=patient_pseudonym, options=options)
    meta = FileMetaDataset()  # rebuilt: the source's meta may name the sending station
    meta.TransferSyntaxUID = ts
    meta.MediaStorageSOPClassUID = sop_class or _SECONDARY_CAPTURE
    if not ds.get("SOPInstanceUID"):
        ds.SOPInstanceUID = remap_uid(f"aldesk-no-sop:{src}", uid_secret)
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128  # a preamble may carry another format's header (TIFF/DICOM hybrids)
    dst.parent.mkdir(parents=True, exist_ok=True)
    from aldesk.imaging import dicom

    try:
        with dicom.quiet():
            ds.save_as(dst, enforce_file_format=True)
    except Exception as exc:  # noqa: BLE001 - pydicom's writer raises many types; name the file
        dst.unlink(missing_ok=True)
        raise InvalidScanError(src, f"a de-identified copy cannot be written ({type(exc).__name__}: {exc})",
                               code="deid-write-failed") from exc
    return report


def read_identifiers(path: str | os.PathLike) -> dict[str, str]:
    """The identifying values of a DICOM file (IDENTIFYING_KEYWORDS plus birth date), as text;
    {} for a raster image. For exports made with identifiers asked for, and for tests."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        head = fh.read(132)
    from aldesk.imaging import dicom

    if not dicom.looks_like_dicom(head):
        return {}
    with dicom.quiet():
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=head[128:132] != b"DICM")
    out = {}
    for keyword in IDENTIFYING_KEYWORDS:
        value = dicom.text_value(ds, keyword)
        if value:
            out[keyword] = value
    return out


def read_burned_in_reason(path: str | os.PathLike) -> str:
    """:func:`burned_in_reason` of a DICOM file's header ("" when nothing says its pixels show text)."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        head = fh.read(132)
    from aldesk.imaging import dicom

    with dicom.quiet(), dicom.header_errors(path):
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=head[128:132] != b"DICM")
    return burned_in_reason(ds)


def read_burned_in(path: str | os.PathLike) -> str:
    """The Burned In Annotation flag of a DICOM file: "YES", "NO" or "unknown"."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        head = fh.read(132)
    from aldesk.imaging import dicom

    with dicom.quiet():
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=head[128:132] != b"DICM")
    value = (dicom.text_value(ds, "BurnedInAnnotation") or "").upper()
    return value if value in ("YES", "NO") else "unknown"


def save_display_png(src: str | os.PathLike, dst_stem: str | os.PathLike) -> list[Path]:
    """Every frame of a scan as 8-bit PNG through the display pipeline (default window): pixels only,
    so the copy carries no metadata at all. One frame -> ``<stem>.png``; several ->
    ``<stem>_0000.png``, ... Returns the files written."""
    from PIL import Image

    from aldesk.imaging.display import read_frames, to_display

    frames, params = read_frames(src)
    stem = Path(dst_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + ".png")] if len(frames) == 1 else [
        stem.with_name(f"{stem.name}_{i:04d}.png") for i in range(len(frames))]
    for frame, path in zip(frames, paths):
        Image.fromarray(np.ascontiguousarray(to_display(frame, params))).save(path)
    return paths


def strip_raster(src: str | os.PathLike, dst_stem: str | os.PathLike) -> Path:
    """Re-write a PNG/JPEG/TIFF with its pixels only (no text chunks, EXIF, XMP, ICC or TIFF tags):
    lossless PNG when the mode allows, else TIFF. Returns the file written."""
    from PIL import Image

    stem = Path(dst_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as img:
        img.load()
        clean = img.copy()
    clean.info = {}
    if clean.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I"):
        dst = stem.with_name(stem.name + ".png")
        clean.save(dst, format="PNG")
    else:
        dst = stem.with_name(stem.name + ".tiff")
        clean.save(dst, format="TIFF")
    return dst
