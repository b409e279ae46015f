"""Reading scans and turning their pixels into something a human can look at.

Pure: numpy, pydicom (+ pylibjpeg plugins), Pillow, scikit-image. Never imports Qt, sqlite or the
store, and never knows how a project lays out its files. Never modifies a source file.
"""

from aldesk.imaging.display import (
    CT_PRESETS,
    DisplayParams,
    apply_rescale,
    read_frames,
    robust_window,
    to_display,
    window_to_uint8,
)
from aldesk.imaging.reader import pixel_hash, read_scan_info
from aldesk.imaging.scan import ScanInfo, WindowPreset

__all__ = [
    "CT_PRESETS",
    "DisplayParams",
    "ScanInfo",
    "WindowPreset",
    "apply_rescale",
    "pixel_hash",
    "read_frames",
    "read_scan_info",
    "robust_window",
    "to_display",
    "window_to_uint8",
]
