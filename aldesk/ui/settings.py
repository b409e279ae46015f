"""Per-workstation settings of the desktop app (recent projects, annotator, theme, key bindings) as one JSON file.

Lives in the user config folder (platformdirs), or in ``$ALDESK_CONFIG_DIR`` when set (the test
suite sets it per test). Writes are atomic (temp file + rename), so a crash never leaves half a
file. Plain Python: no Qt, no project data; project settings (``retrain_every``) live in the project.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

APP_NAME = "aldesk"
SETTINGS_FILE = "settings.json"
MAX_RECENT = 10
THEMES = ("dark", "light")

log = logging.getLogger(__name__)

#: action -> key sequence (Qt portable text). label_N labels with the N-th class.
DEFAULT_KEY_BINDINGS = {**{f"label_{n}": str(n) for n in range(1, 10)},
                        "unsure": "U", "skip": "S", "prediction": "P", "undo": "Ctrl+Z"}


def valid_key_bindings(raw) -> dict[str, str]:
    """The defaults, overridden by every known action of ``raw`` bound to a non-empty string."""
    bindings = dict(DEFAULT_KEY_BINDINGS)
    if isinstance(raw, dict):
        bindings.update({k: v.strip() for k, v in raw.items()
                         if k in DEFAULT_KEY_BINDINGS and isinstance(v, str) and v.strip()})
    return bindings


def config_dir() -> Path:
    env = os.environ.get("ALDESK_CONFIG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    env = os.environ.get("ALDESK_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def log_dir() -> Path:
    env = os.environ.get("ALDESK_LOG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def resources_dir() -> Path:
    """The repository's resources/ folder (themes, demo scans, screenshots)."""
    env = os.environ.get("ALDESK_RESOURCES_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "resources"


@dataclass
class Settings:
    recent_projects: list[str] = field(default_factory=list)
    annotator: str = ""
    theme: str = "dark"
    last_import_dir: str = ""
    strategy: str = "hybrid"
    geometry: str = ""  # base64 of QMainWindow.saveGeometry()
    window_state: str = ""
    key_bindings: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_KEY_BINDINGS))
    tour_seen: bool = False  # the first-run tour of the keys was shown (and dismissed)
    smooth_magnified: bool = False  # View ▸ Smooth when magnified (off: pixels beyond 1:1, as diagnostic viewers)

    @classmethod
    def load(cls, path: Path | None = None) -> "Settings":
        """The saved settings; defaults when there is no file. A damaged file is kept aside, not lost."""
        path = path or config_dir() / SETTINGS_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            aside = path.with_suffix(".damaged.json")
            log.warning("settings file %s unreadable (%s); starting from defaults, old file kept as %s", path, exc, aside)
            try:
                os.replace(path, aside)
            except OSError:
                pass
            return cls()
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        settings = cls(**known)
        if settings.theme not in THEMES:
            settings.theme = "dark"
        settings.key_bindings = valid_key_bindings(settings.key_bindings)
        settings.tour_seen = settings.tour_seen is True
        settings.smooth_magnified = settings.smooth_magnified is True
        settings.recent_projects = [str(p) for p in settings.recent_projects if isinstance(p, str)][:MAX_RECENT]
        return settings

    def save(self, path: Path | None = None) -> Path:
        path = path or config_dir() / SETTINGS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        os.replace(tmp, path)
        return path

    def remember_project(self, project_path: str | os.PathLike) -> None:
        """Put a project first in the recent list (no duplicates, at most MAX_RECENT)."""
        p = str(Path(project_path).resolve())
        self.recent_projects = [p] + [r for r in self.recent_projects if r != p]
        del self.recent_projects[MAX_RECENT:]

    def forget_project(self, project_path: str | os.PathLike) -> None:
        p = str(Path(project_path).resolve())
        self.recent_projects = [r for r in self.recent_projects if r != p]
