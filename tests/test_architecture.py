"""The layers are a test, not a hope: import-linter checks the contracts in pyproject.toml."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_layer_contracts_hold():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    result = subprocess.run([exe, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_contracts_cover_every_layer():
    text = (REPO / "pyproject.toml").read_text()
    for layer in ("aldesk.ui", "aldesk.cli", "aldesk.app", "aldesk.store", "aldesk.imaging",
                  "aldesk.features", "aldesk.learning", "aldesk.review"):
        assert f'"{layer}' in text, f"{layer} is not covered by an import-linter contract"
