"""Help ▸ About / diagnostics: versions and paths, one click to copy them into a bug report.

What an IT team needs to answer "which build is this, where are its files": aldesk, Python, Qt and the
scientific stack, the JPEG decoders pylibjpeg actually found (plugins are found through entry points,
so a bundle missing their metadata shows up here as "none"), the network aldesk ships for its default
feature extractor with its licence (and whether the file is intact), and the config, data, log and
project folders. Never shows project contents or patient data.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from PySide6.QtCore import qVersion
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from aldesk import __version__
from aldesk.app.logs import log_path
from aldesk.ui.settings import config_dir, data_dir, resources_dir

DISTRIBUTIONS = ("numpy", "scipy", "scikit-learn", "scikit-image", "pydicom", "pylibjpeg", "pylibjpeg-libjpeg",
                 "pylibjpeg-openjpeg", "pylibjpeg-rle", "pillow", "PySide6-Essentials", "platformdirs", "onnxruntime")
DECODER_GROUPS = ("pylibjpeg.pixel_data_decoders", "pylibjpeg.jpeg_2000_decoders", "pylibjpeg.jpeg_decoders")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def decoder_plugins() -> list[str]:
    """``group: name`` of every pylibjpeg decoder entry point this installation can see."""
    eps = metadata.entry_points()
    return sorted(f"{group.rsplit('.', 1)[-1]}: {ep.name} ({ep.value.split(':')[0]})"
                  for group in DECODER_GROUPS for ep in eps.select(group=group))


def shipped_models() -> dict[str, str]:
    """The default extractor's network: what it is, its licence, its file and whether the file is intact."""
    from aldesk.errors import FeatureError
    from aldesk.features import shipped_model as m

    try:
        m.check_model_file(m.MODEL_FILE)
        state = f"ok (sha256 {m.MODEL_SHA256[:16]}...)"
    except FeatureError as exc:
        state = str(exc)
    return {"imagenet (default extractor)": m.DESCRIPTION, "model file": str(m.MODEL_FILE), "model check": state,
            "licence": f"Apache-2.0: {m.LICENCE_FILE} (provenance: {m.MODEL_DIR / 'SOURCE.md'})"}


def diagnostics(project_path: str | None = None) -> dict[str, dict[str, str]]:
    """{"versions": {...}, "models": {...}, "paths": {...}, "decoders": {...}} as plain strings."""
    versions = {"aldesk": __version__, "Python": f"{sys.version.split()[0]} ({sys.executable})",
                "Qt": qVersion(), "Qt platform": QGuiApplication.platformName() or "(no application)",
                "OS": platform.platform(), "bundled": "yes" if getattr(sys, "frozen", False) else "no"}
    versions.update({d: _version(d) for d in DISTRIBUTIONS})
    paths = {"config": str(config_dir()), "data": str(data_dir()), "log file": str(log_path()),
             "resources": str(resources_dir()), "project": project_path or "(none open)"}
    plugins = decoder_plugins()
    decoders = {str(i + 1): p for i, p in enumerate(plugins)} or {"-": "none found: compressed DICOM will not decode"}
    return {"versions": versions, "models": shipped_models(), "paths": paths, "decoders": decoders}


def diagnostics_text(project_path: str | None = None) -> str:
    lines = []
    for section, values in diagnostics(project_path).items():
        lines.append(f"[{section}]")
        width = max(map(len, values))
        lines += [f"{k.ljust(width)}  {v}" for k, v in values.items()]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


class AboutDialog(QDialog):
    """Read-only diagnostics text with a "Copy to clipboard" button."""

    def __init__(self, project_path: str | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("About aldesk / diagnostics")
        self.resize(760, 560)
        self.text = QPlainTextEdit(diagnostics_text(project_path))
        self.text.setReadOnly(True)
        self.copy_button = QPushButton("Copy to clipboard")
        self.copy_button.clicked.connect(self._on_copy_button_clicked)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)

    def _on_copy_button_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.text.toPlainText())
        self.copy_button.setText("Copied")
