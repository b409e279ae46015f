"""De-identify scans for export: DICOM PS3.15 Annex E basic profile, and metadata-free rasters.

Pure: pydicom and Pillow on files the caller names; no store, no project layout. UIDs are remapped
with a keyed hash (HMAC-SHA256 of the UID under a secret the caller keeps, e.g. one derived from
the project's private salt) into ``2.25.<int>`` UIDs, so the same source UID gets the same new UID
in every file of an export (studies and series still group) and nobody without the secret can map
them back. Never modifies a source file; never writes a name, ID or date of the source to a copy
made without identifiers.

What :func:`deidentify_dataset` does, in this order, at every level of the dataset (sequences too):

* private tags, curves (50xx) and overlays (60xx: may hold burned-in text) are removed;
* each attribute of the basic profile table (PS3.15 Table E.1-1, "Basic Prof." column) gets its
  action: X remove, Z empty, D dummy value, U remapped UID. Where the table allows several (X/Z/D),
  the strictest that keeps the object readable is used;
* beyond the table, conservatively: any other UID (not a DICOM-defined ``1.2.840.10008.`` one) is
  remapped, any other person name emptied, any other date, time or datetime removed, and elements of
  unknown meaning (VR UN) removed;
* Patient Identity Removed = YES, De-identification Method (+ code 113100), and Longitudinal
  Temporal Information Modified = REMOVED are written; Patient ID / Name become the pseudonym the
  caller gives (the project's patient key), or empty.

Burned-in annotation cannot be removed from pixels here: it is reported (``burned_in``: "YES",
"NO" or "unknown") for the caller to flag.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from aldesk.errors import InvalidScanError

PROFILE_NAME = "DICOM PS3.15 E.1 Basic Application Level Confidentiality Profile"
PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
DICOM_UID_ROOT = "1.2.840.10008."
METHOD_TEXT = "PS3.15 Basic Profile (aldesk); UIDs remapped by keyed hash"  # LO: <= 64 chars
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

# PS3.15 Table E.1-1, basic profile column. Where the table allows X/Z/D or Z/D, Z (empty) is used
# for attributes a reader commonly requires (type 2) and X otherwise. U* sequences are kept and
# the UIDs inside them remapped.
_TABLE = """
AccessionNumber Z
AcquisitionComments X
AcquisitionContextSequence X
AcquisitionDate Z
AcquisitionDateTime X
AcquisitionDeviceProcessingDescription X
AcquisitionProtocolDescription X
AcquisitionTime Z
ActualHumanPerformersSequence X
AdditionalPatientHistory X
AddressTrial X
AdmissionID X
AdmittingDate X
AdmittingDiagnosesCodeSequence X
AdmittingDiagnosesDescription X
AdmittingTime X
AffectedSOPInstanceUID X
Allergies X
AuthorObserverSequence X
BranchOfService X
CassetteID X
ConcatenationUID U
ConfidentialityConstraintOnPatientDataDescription X
ConsultingPhysicianName X
ContentCreatorName Z
ContentCreatorIdentificationCodeSequence X
ContentDate Z
ContentSequence X
ContentTime Z
ContrastBolusAgent Z
ContributionDescription X
CountryOfResidence X
CurrentPatientLocation X
CustodialOrganizationSequence X
DataSetTrailingPadding X
DateOfLastCalibration X
DerivationDescription X
DetectorID X
DeviceSerialNumber X
DeviceUID U
DigitalSignatureUID X
DigitalSignaturesSequence X
DimensionOrganizationUID U
DischargeDiagnosisDescription X
DistributionAddress X
DistributionName X
DoseReferenceUID U
EndAcquisitionDateTime X
EthnicGroup X
FailedSOPInstanceUIDList U
FiducialUID U
FillerOrderNumberImagingServiceRequest Z
FrameComments X
FrameOfReferenceUID U
GantryID X
GeneratorID X
GraphicAnnotationSequence X
HumanPerformerName X
HumanPerformerOrganization X
IconImageSequence X
IdentifyingComments X
ImageComments X
ImagePresentationComments X
ImagingServiceRequestComments X
Impressions X
InstanceCoercionDateTime X
InstanceCreationDate X
InstanceCreationTime X
InstanceCreatorUID U
InstitutionAddress X
InstitutionCodeSequence X
InstitutionName X
InstitutionalDepartmentName X
InsurancePlanIdentification X
IntendedRecipientsOfResultsIdentificationSequence X
InterpretationApproverSequence X
InterpretationAuthor X
InterpretationDiagnosisDescription X
InterpretationIDIssuer X
InterpretationRecorder X
InterpretationText X
InterpretationTranscriber X
IrradiationEventUID U
IssuerOfAccessionNumberSequence X
IssuerOfAdmissionID X
IssuerOfPatientID X
IssuerOfServiceEpisodeID X
LargePaletteColorLookupTableUID U
LastMenstrualDate X
MAC X
MediaStorageSOPInstanceUID U
MedicalAlerts X
MedicalRecordLocator X
MilitaryRank X
ModifiedAttributesSequence X
ModifiedImageDescription X
ModifyingDeviceID X
NameOfPhysiciansReadingStudy X
NamesOfIntendedRecipientsOfResults X
Occupation X
OperatorIdentificationSequence X
OperatorsName X
OrderCallbackPhoneNumber X
OrderEnteredBy X
OrderEntererLocation X
OriginalAttributesSequence X
OtherPatientIDs X
OtherPatientIDsSequence X
OtherPatientNames X
ParticipantSequence X
PatientAddress X
PatientAge X
PatientBirthDate Z
PatientBirthName X
PatientBirthTime X
PatientComments X
PatientID Z
PatientInstitutionResidence X
PatientInsurancePlanCodeSequence X
PatientMotherBirthName X
PatientName Z
PatientPrimaryLanguageCodeSequence X
PatientPrimaryLanguageModifierCodeSequence X
PatientReligiousPreference X
PatientSex Z
PatientSexNeutered X
PatientSize X
PatientState X
PatientTelephoneNumbers X
PatientTransportArrangements X
PatientWeight X
PerformedLocation X
PerformedProcedureStepDescription X
PerformedProcedureStepEndDate X
PerformedProcedureStepEndTime X
PerformedProcedureStepID X
PerformedProcedureStepStartDate X
PerformedProcedureStepStartTime X
PerformingPhysicianIdentificationSequence X
PerformingPhysicianName X
PersonAddress X
PersonIdentificationCodeSequence X
PersonName Z
PersonTelephoneNumbers X
PhysicianApprovingInterpretation X
PhysiciansOfRecord X
PhysiciansOfRecordIdentificationSequence X
PhysiciansReadingStudyIdentificationSequence X
PlacerOrderNumberImagingServiceRequest Z
PlateID X
PreMedication X
PregnancyStatus X
ProtocolName X
ReasonForStudy X
ReasonForTheImagingServiceRequest X
ReferencedDigitalSignatureSequence X
ReferencedFrameOfReferenceUID U
ReferencedPatientAliasSequence X
ReferencedPatientSequence X
ReferencedSOPInstanceMACSequence X
ReferencedSOPInstanceUID U
ReferencedStudySequence X
ReferringPhysicianAddress X
ReferringPhysicianIdentificationSequence X
ReferringPhysicianName Z
ReferringPhysicianTelephoneNumbers X
RegionOfResidence X
RelatedFrameOfReferenceUID U
RequestAttributesSequence X
RequestedContrastAgent X
RequestedProcedureComments X
RequestedProcedureDescription X
RequestedProcedureID X
RequestedProcedureLocation X
RequestedSOPInstanceUID U
RequestingPhysician X
RequestingService X
ResponsibleOrganization X
ResponsiblePerson X
ResultsComments X
ResultsDistributionListSequence X
ResultsIDIssuer X
ReviewerName X
ScheduledHumanPerformersSequence X
ScheduledPatientInstitutionResidence X
ScheduledPerformingPhysicianIdentificationSequence X
ScheduledPerformingPhysicianName X
ScheduledProcedureStepDescription X
ScheduledProcedureStepEndDate X
ScheduledProcedureStepEndTime X
ScheduledProcedureStepLocation X
ScheduledProcedureStepStartDate X
ScheduledProcedureStepStartTime X
SeriesDate X
SeriesDescription X
SeriesInstanceUID U
SeriesTime X
ServiceEpisodeDescription X
ServiceEpisodeID X
SmokingStatus X
SOPInstanceUID U
SpecialNeeds X
StartAcquisitionDateTime X
StationName X
StorageMediaFileSetUID U
StudyComments X
StudyDate Z
StudyDescription X
StudyID Z
StudyIDIssuer X
StudyInstanceUID U
StudyTime Z
SynchronizationFrameOfReferenceUID U
TargetUID U
TemplateExtensionCreatorUID U
TemplateExtensionOrganizationUID U
TextComments X
TextString X
TimeOfLastCalibration X
TimezoneOffsetFromUTC X
TopicAuthor X
TopicKeywords X
TopicSubject X
TopicTitle X
TransactionUID U
UID U
VerifyingObserverIdentificationCodeSequence Z
VerifyingObserverName Z
VerifyingObserverSequence X
VerifyingOrganization X
VisitComments X
"""

#: keyword -> action ("X" remove, "Z" empty, "D" dummy, "U" remap UID)
BASIC_PROFILE: dict[str, str] = dict(line.split() for line in _TABLE.strip().splitlines())

#: What a copy "with identifiers" carries and a de-identified one must never carry.
IDENTIFYING_KEYWORDS = ("PatientID", "PatientName", "PatientBirthDate", "AccessionNumber",
                        "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")

# Elements the de-identification adds; never touched by the walk.
_WRITTEN = ("PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
            "LongitudinalTemporalInformationModified")


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


@dataclass
class DeidReport:
    """What was done to one dataset. burned_in: "YES", "NO" or "unknown" (the Burned In Annotation tag)."""

    burned_in: str = "unknown"
    removed: int = 0
    emptied: int = 0
    uids_remapped: int = 0
    removed_keywords: set[str] = field(default_factory=set)


def _remap_value(value, secret: bytes):
    def one(v):
        text = str(v).strip().rstrip("\x00")
        return text if not text or text.startswith(DICOM_UID_ROOT) else remap_uid(text, secret)

    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return [one(v) for v in value]
    return one(value)


def _clean(ds: Dataset, secret: bytes, report: DeidReport) -> None:
    for tag in list(ds.keys()):
        if tag.is_private or 0x5000 <= tag.group <= 0x50FF or 0x6000 <= tag.group <= 0x60FF:
            del ds[tag]
            report.removed += 1
            continue
        try:
            elem = ds[tag]
        except Exception:  # noqa: BLE001 - a value pydicom cannot parse is not kept unseen
            del ds[tag]
            report.removed += 1
            continue
        keyword = elem.keyword
        if keyword in _WRITTEN or tag == 0x7FE00010:
            continue
        action = BASIC_PROFILE.get(keyword)
        if action is None:
            if elem.VR == "SQ":
                for item in elem.value:
                    _clean(item, secret, report)
                continue
            action = {"UI": "U", "PN": "Z", "DA": "X", "DT": "X", "TM": "X", "UN": "X"}.get(elem.VR)
            if action is None:
                continue
        if action == "U" and elem.VR != "UI":
            action = "X" if elem.VR != "SQ" else action
        if action == "X":
            del ds[tag]
            report.removed += 1
            report.removed_keywords.add(keyword or str(tag))
        elif action == "Z":
            elem.value = Sequence() if elem.VR == "SQ" else ""
            report.emptied += 1
        elif action == "U":
            if elem.VR == "SQ":
                for item in elem.value:
                    _clean(item, secret, report)
            elif elem.value not in (None, ""):
                elem.value = _remap_value(elem.value, secret)
                report.uids_remapped += 1


def deidentify_dataset(ds: Dataset, *, uid_secret: bytes, patient_pseudonym: str | None = None) -> DeidReport:
    """De-identify ``ds`` in place (see the module docstring). Returns what was done.

    uid_secret : key of the UID remapping; keep it constant across an export (and across exports of
        the same project, so re-exports agree) and never write it anywhere.
    patient_pseudonym : written as Patient ID and Patient Name (e.g. the project's salted patient
        key), or None for empty values.
    """
    report = DeidReport()
    burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    report.burned_in = burned if burned in ("YES", "NO") else "unknown"
    _clean(ds, uid_secret, report)
    ds.PatientID = patient_pseudonym or ""
    ds.PatientName = patient_pseudonym or ""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD_TEXT
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = PROFILE_CODE
    ds.DeidentificationMethodCodeSequence = Sequence([code])
    ds.LongitudinalTemporalInformationModified = "REMOVED"
    if report.burned_in == "YES":
        ds.BurnedInAnnotation = "YES"  # kept: whoever uses the copy must know
    return report


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
                    patient_pseudonym: str | None = None) -> DeidReport:
    """Write a de-identified copy of the DICOM file ``src`` to ``dst`` (Part 10, same transfer
    syntax, pixel data untouched). Raises InvalidScanError if ``src`` cannot be read."""
    src, dst = os.fspath(src), Path(dst)
    ds = _read(src)
    ts = _transfer_syntax(ds)
    sop_class = ds.get("SOPClassUID") or (getattr(ds, "file_meta", None) or {}).get("MediaStorageSOPClassUID")
    report = deidentify_dataset(ds, uid_secret=uid_secret, patient_pseudonym=patient_pseudonym)
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
