"""Reading scans and turning their pixels into something a human can look at.

Pure: numpy, pydicom (+ pylibjpeg plugins), Pillow, scikit-image. Never imports Qt, sqlite or the
store, and never knows how a project lays out its files. Never modifies a source file.
"""

import importlib

# Loaded on first use (PEP 562): ``import aldesk.imaging.display`` must not pull in pydicom (~0.8 s),
# so the GUI's first window appears before the DICOM reader is needed.
_WHERE = {
    "CT_PRESETS": "display", "DisplayParams": "display", "apply_rescale": "display", "read_frames": "display",
    "robust_window": "display", "to_display": "display", "window_to_uint8": "display",
    "pixel_hash": "reader", "read_scan_info": "reader", "ScanInfo": "scan", "WindowPreset": "scan",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"aldesk.imaging.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'aldesk.imaging' has no attribute {name!r}")


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
