"""Dark (default) and light themes: a Fusion palette plus the QSS in resources/themes/."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from aldesk.ui.settings import THEMES, resources_dir

_PALETTES = {
    "dark": {"window": "#1c1e22", "text": "#d4d7dc", "base": "#15171a", "alt": "#1d2024", "button": "#2b2f35",
             "highlight": "#2f5f8f", "highlighted_text": "#ffffff", "disabled": "#5f646b", "link": "#7fb0e0"},
    "light": {"window": "#f3f4f6", "text": "#1f2328", "base": "#ffffff", "alt": "#f4f5f7", "button": "#e2e5e9",
              "highlight": "#2f6db3", "highlighted_text": "#ffffff", "disabled": "#a4aab2", "link": "#1f5fa8"},
}


def stylesheet(name: str) -> str:
    if name not in THEMES:
        raise ValueError(f"theme == {name!r}, must be one of {', '.join(THEMES)}")
    path = resources_dir() / "themes" / f"{name}.qss"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def apply_theme(app: QApplication, name: str) -> None:
    """Fusion style (same look on every OS), the theme's palette (for native parts) and its QSS."""
    qss = stylesheet(name)
    app.setStyle("Fusion")
    c = {k: QColor(v) for k, v in _PALETTES[name].items()}
    pal = QPalette()
    role = QPalette.ColorRole
    for r, key in ((role.Window, "window"), (role.WindowText, "text"), (role.Base, "base"),
                   (role.AlternateBase, "alt"), (role.Text, "text"), (role.Button, "button"),
                   (role.ButtonText, "text"), (role.Highlight, "highlight"), (role.ToolTipBase, "button"),
                   (role.ToolTipText, "text"), (role.HighlightedText, "highlighted_text"), (role.Link, "link")):
        pal.setColor(r, c[key])
    for r in (role.Text, role.ButtonText, role.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, r, c["disabled"])
    app.setPalette(pal)
    app.setStyleSheet(qss)
    app.setProperty("aldesk_theme", name)
