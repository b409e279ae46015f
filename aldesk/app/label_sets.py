"""Default label sets offered when creating a project (resources/label_sets/*.json).

A label set is a name, a title for menus, a description and the ordered list of classes (key 1 is
the first); ``ordered: true`` marks graded scales (diabetic retinopathy 0–4) and is recorded in the
project's meta so agreement statistics can weight near misses. Plain JSON reading, no Qt.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from aldesk.errors import ProjectError


def resources_dir() -> Path:
    """The installed resources/ folder (``$ALDESK_RESOURCES_DIR`` overrides; bundles ship it too)."""
    env = os.environ.get("ALDESK_RESOURCES_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "resources"


@dataclass(frozen=True)
class LabelSet:
    name: str
    title: str
    classes: list[str]
    ordered: bool = False
    description: str = ""


def _read(path: Path) -> LabelSet:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return LabelSet(name=raw.get("name", path.stem), title=raw.get("title", path.stem),
                        classes=[str(c) for c in raw["classes"]], ordered=bool(raw.get("ordered", False)),
                        description=raw.get("description", ""))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ProjectError(f"label set {path} is damaged ({exc}); reinstall aldesk or remove the file") from exc


def label_sets() -> dict[str, LabelSet]:
    """Every shipped label set by name, sorted by name."""
    folder = resources_dir() / "label_sets"
    return {s.name: s for s in sorted((_read(p) for p in folder.glob("*.json")), key=lambda s: s.name)}


def get_label_set(name: str) -> LabelSet:
    sets = label_sets()
    if name not in sets:
        known = ", ".join(sets) or "none installed"
        raise ProjectError(f"label set {name!r} not found; choose one of: {known}")
    return sets[name]
