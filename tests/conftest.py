"""Fixtures shared by every test: offscreen Qt, the shared real data, a fresh project per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
DICOM_SAMPLES = SHARED_DATA / "dicom-samples"
PNEUMONIAMNIST = SHARED_DATA / "pneumoniamnist" / "pneumoniamnist.npz"


def pytest_addoption(parser):
    parser.addoption("--soak", action="store_true", default=False,
                     help="also run the long fault runs (marked soak); the default run has a bounded sample of each")


def pytest_collection_modifyitems(config, items):
    """The whole default suite stays under 10 minutes on 2 cores: long fault runs only with --soak."""
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="long fault run: `python -m pytest --soak` runs it (a bounded sample ran)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


def kill_rounds(sample: int, soak: int) -> list:
    """Parameters for a SIGKILL fault test: ``sample`` rounds in the default run, ``soak`` with --soak."""
    return [pytest.param(sample, id=f"{sample}-kills"), pytest.param(soak, id=f"{soak}-kills", marks=pytest.mark.soak)]


@pytest.fixture
def dicom_samples() -> Path:
    if not (DICOM_SAMPLES / "manifest.csv").is_file():
        pytest.skip(f"real DICOM samples not found at {DICOM_SAMPLES}")
    return DICOM_SAMPLES


@pytest.fixture
def project(tmp_path):
    from aldesk.store import Project

    p = Project.create(tmp_path / "project", ["normal", "pneumonia"])
    yield p
    p.close()


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    """Each test gets its own settings and log folders, never the user's."""
    monkeypatch.setenv("ALDESK_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("ALDESK_LOG_DIR", str(tmp_path / "logs"))
    # no detached backup process outliving a test (tests/store/test_backups.py turns it back on)
    monkeypatch.setenv("ALDESK_NO_BACKGROUND_BACKUP", "1")


@pytest.fixture(scope="session")
def read_campaign(tmp_path_factory):
    """A generated project read through its queue, audit scans included (tests/app/progress_project.py):
    100 labels, 9 models. Shared by the "when can I stop?" tests: copy it before changing it."""
    from tests.app.progress_project import read_through_queue

    path = tmp_path_factory.mktemp("campaign") / "p"
    read_through_queue(path, rounds=8)
    return path
