"""The PyInstaller bundle builds and passes its own selftest (slow: about a minute to build).

Skips when PyInstaller is not installed (CI's ``.[test]`` environment); install ``.[bundle]`` to run it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "packaging"))
import build_bundle  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        pytest.skip("PyInstaller not installed (pip install -e '.[bundle]'); bundle not built")
    out = tmp_path_factory.mktemp("bundle")
    exe = build_bundle.build(out / "dist", out / "work")
    assert exe.is_file()
    return exe


def test_bundle_passes_its_selftest(bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("ALDESK_LOG_DIR", str(tmp_path / "logs"))
    proc = build_bundle.selftest(bundle)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "OK"
    assert "decode a JPEG 2000 DICOM ... ok" in proc.stdout
    assert "open the main window offscreen ... ok" in proc.stdout
    # the default extractor: the shipped ImageNet model, run by the bundled onnxruntime
    assert "imagenet features, 1129 per scan" in proc.stdout


def test_bundle_carries_resources_and_decoder_metadata(bundle):
    internal = bundle.parent / "_internal"
    for sub in ("themes/dark.qss", "icons/aldesk.svg", "label_sets/birads.json", "demo/SOURCE.md"):
        assert (internal / "resources" / sub).is_file(), sub
    # pylibjpeg finds its decoders through these distributions' entry points
    names = {p.name.split("-")[0].lower() for p in internal.glob("*.dist-info")}
    assert {"pylibjpeg", "pylibjpeg_openjpeg", "pylibjpeg_libjpeg", "pylibjpeg_rle", "pydicom"} <= names, names
    assert len(list(bundle.parent.rglob("libqoffscreen*"))) == 1  # Qt platform plugins are there
    models = internal / "aldesk" / "features" / "models"
    for name in ("efficientnet-lite0-stages-112px.onnx", "LICENSE", "SOURCE.md"):  # the model travels with its licence
        assert (models / name).is_file(), name
