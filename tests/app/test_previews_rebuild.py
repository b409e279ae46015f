"""Issue 14 point 1: a restore whose side store lacks previews makes them again from the scans' files
(same pixels only), says how many it could not, and ``aldesk relink`` makes the rest once files are found."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np

from aldesk.app.backups import restore
from aldesk.app.importer import import_paths
from aldesk.cli import main
from aldesk.store import Project
from aldesk.store.backups import BACKUP_DIR_NAME
from aldesk.store.preview_store import PREVIEW_STORE_NAME
from tests.app.conftest import write_png
from tests.dicom_series import write_series


def _previews(path) -> dict[int, tuple]:
    with Project.open(path) as p:
        return {sid: (img.shape, img.tobytes()) for sid, img in p.scans.iter_previews()}


def _without_side_store(path):
    with Project.open(path) as p:
        p.backup("manual")
    (path / BACKUP_DIR_NAME / PREVIEW_STORE_NAME).unlink()  # as when a backup file was copied alone


def test_previews_missing_from_the_side_store_are_made_again_from_the_files(tmp_path, scan_folder):
    path = tmp_path / "p"
    with Project.create(path, ["a", "b"]) as p:
        import_paths(p, [scan_folder], jobs=1)
        pngs = [r for r in p.scans.rows() if r.path.suffix == ".png"]
    before = _previews(path)
    pristine = tmp_path / "elsewhere" / scan_folder.name
    shutil.copytree(scan_folder, pristine)
    _without_side_store(path)
    gone, changed = pngs[0], pngs[1]
    gone.path.unlink()
    write_png(changed.path, seed=999)  # another image at the same path: not this scan's preview
    result = restore(path)
    assert (result.previews_restored, result.previews_missing, result.previews_rebuilt) == (0, 12, 10)
    assert result.to_json()["previews_rebuilt"] == 10
    text = result.describe_previews()
    assert "12 previews were not in backups/previews.sqlite; 10 were made again" in text
    assert "2 scans have no preview until their files are found again (`aldesk relink" in text
    after = _previews(path)
    assert set(after) == set(before) - {gone.id, changed.id}
    assert all(after[s] == before[s] for s in after)  # the same bytes import made

    shutil.rmtree(scan_folder)  # the data moved: relink finds it, and the two previews are made then
    assert main(["relink", str(path), str(pristine.parent)]) == 0
    assert _previews(path) == before


def test_a_series_project_gets_its_middle_slice_preview_back(tmp_path):
    vol = np.random.default_rng(0).integers(0, 1000, (9, 32, 32)).astype(np.int16)
    write_series(tmp_path / "d" / "se1", vol, series_number=1)
    path = tmp_path / "p"
    with Project.create(path, ["a", "b"], unit="series") as p:
        import_paths(p, [tmp_path / "d"], jobs=1)
    before = _previews(path)
    _without_side_store(path)
    result = restore(path)
    assert (result.previews_missing, result.previews_rebuilt) == (1, 1)
    assert _previews(path) == before


def test_cli_restore_prints_what_it_could_not_find(tmp_path, scan_folder, capsys):
    path = tmp_path / "p"
    with Project.create(path, ["a", "b"]) as p:
        import_paths(p, [scan_folder], jobs=1)
    _without_side_store(path)
    shutil.rmtree(scan_folder)
    assert main(["backup", str(path), "--restore", "latest"]) == 0
    out = capsys.readouterr().out
    assert "12 previews were not in backups/previews.sqlite; 12 scans have no preview" in out
    conn = sqlite3.connect(path / "project.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM previews").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0] == 12
    conn.close()
