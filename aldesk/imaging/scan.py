"""What the importer learns from one file: plain data, cheap to send between processes.

Never holds a patient's name or birth date; ``patient_id`` is the raw Patient ID only so the caller
can hash it with the project's private salt straight away (it is never stored or logged).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class WindowPreset:
    """A window (VOI) setting in modality units (e.g. Hounsfield for CT)."""

    center: float
    width: float
    name: str = ""


@dataclass
class ScanInfo:
    """Metadata and a display-ready preview of one scan file.

    preview : (h, w) or (h, w, 3) uint8, longest side <= the requested preview size, already through
        the display pipeline (modality LUT, VOI/window, MONOCHROME1 inverted, colour to RGB).
    pixel_hash : hex digest of the decoded stored pixels (all frames, plus shape and dtype), so the
        same image in two encodings or two files is recognised as a duplicate.
    """

    format: str  # "dicom" | "png" | "jpeg" | "tiff"
    sop_instance_uid: str | None
    study_uid: str | None
    series_uid: str | None
    patient_id: str | None
    modality: str | None
    body_part: str | None
    view: str | None
    rows: int
    columns: int
    frames: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    pixel_spacing: tuple[float, float] | None
    transfer_syntax: str | None
    windows: list[WindowPreset] = field(default_factory=list)
    pixel_hash: str = ""
    preview: np.ndarray | None = None
    # Where the image sits in its series (DICOM only; None when absent): see aldesk.imaging.series.
    image_position: tuple[float, float, float] | None = None
    image_orientation: tuple[float, ...] | None = None
    instance_number: int | None = None
    echo_number: int | None = None
    temporal_position: int | None = None
    acquisition_number: int | None = None
    image_type: str | None = None          # the value that tells magnitude from phase ("M", "P", ...)
    series_number: int | None = None
    series_description: str | None = None
