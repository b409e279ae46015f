"""`aldesk selftest` from the source install, in a subprocess as an IT team would run it."""

from __future__ import annotations

import os
import subprocess
import sys

from aldesk.cli import build_parser


def test_selftest_runs_every_step_and_prints_ok(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", ALDESK_LOG_DIR=str(tmp_path / "logs"))
    proc = subprocess.run([sys.executable, "-m", "aldesk", "selftest"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "OK"
    for step in ("build the demo project", "decode a JPEG 2000 DICOM", "extract the default features and rank a batch",
                 "open the main window offscreen"):
        assert any(step in line and " ok (" in line for line in lines), proc.stdout
    assert "imagenet features, 1129 per scan; 10 scans ranked" in proc.stdout  # the default extractor
    assert (tmp_path / "logs" / "aldesk.log").is_file()


def test_selftest_reports_the_failing_step_and_exits_1(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", ALDESK_LOG_DIR=str(tmp_path / "logs"),
               ALDESK_RESOURCES_DIR=str(tmp_path / "nowhere"))
    proc = subprocess.run([sys.executable, "-m", "aldesk", "selftest"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 1
    assert "selftest failed at step 1 (build the demo project)" in proc.stdout
    assert "demo scans not found" in proc.stdout
    assert "OK" not in proc.stdout.splitlines()


def test_selftest_is_a_cli_command():
    args = build_parser().parse_args(["selftest"])
    assert args.command == "selftest"
