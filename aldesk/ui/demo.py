"""The demo project: real sample scans shipped in resources/demo, imported on first use.

The scans are copied next to the project (in the user data folder, or ``$ALDESK_DATA_DIR``) so the
project does not depend on where aldesk is installed, then imported with the normal importer. Plain
functions, no Qt: the GUI runs ``ensure_demo_project`` in a worker.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from aldesk.app.callbacks import Progress, ShouldStop, never_stop, no_progress
from aldesk.app.importer import ImportSummary, import_paths
from aldesk.store import PROJECT_DB_NAME, Project
from aldesk.ui.settings import data_dir, resources_dir

DEMO_CLASSES = ["normal", "pneumonia"]
DEMO_DIR_NAME = "demo-project"


def demo_sources() -> Path:
    return resources_dir() / "demo" / "scans"


def demo_project_path() -> Path:
    return data_dir() / DEMO_DIR_NAME


def ensure_demo_project(progress: Progress = no_progress, should_stop: ShouldStop = never_stop,
                        *, jobs: int = 1) -> tuple[Path, ImportSummary | None]:
    """The demo project's folder, created and imported if it does not exist yet.

    Returns (project folder, import summary or None when it already existed). An interrupted first
    import is simply resumed: the importer is incremental.
    """
    path = demo_project_path()
    src = demo_sources()
    if not src.is_dir():
        raise FileNotFoundError(f"demo scans not found at {src}; reinstall aldesk")
    if (path / PROJECT_DB_NAME).is_file():
        with Project.open(path) as project:
            if project.meta("demo_imported") == "yes":
                return path, None
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        Project.create(path, DEMO_CLASSES, name="aldesk demo").close()
    scans = path / "scans"
    shutil.copytree(src, scans, dirs_exist_ok=True)
    with Project.open(path) as project:
        summary = import_paths(project, [scans], jobs=jobs, progress=progress, should_stop=should_stop)
        if summary.status == "done":
            project.set_meta("demo_imported", "yes")
    return path, summary
