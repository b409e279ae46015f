"""Build the one-folder app bundle: ``python packaging/build_bundle.py [--selftest]``.

Runs PyInstaller on packaging/aldesk.spec (output: dist/aldesk/, work files: build/pyinstaller/),
then, with ``--selftest``, runs the bundle's own ``aldesk selftest`` offscreen. Prints the build time
and bundle size. Needs ``pip install -e .[bundle]`` (PyInstaller) in the environment whose packages
are to be bundled. Exit code: 0 built (and selftest passed), 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "packaging" / "aldesk.spec"


def executable(dist: Path) -> Path:
    return dist / "aldesk" / ("aldesk.exe" if sys.platform == "win32" else "aldesk")


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def build(dist: Path, work: Path) -> Path:
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
           "--distpath", str(dist), "--workpath", str(work), str(SPEC)]
    subprocess.run(cmd, check=True, cwd=REPO)
    return executable(dist)


def selftest(exe: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    return subprocess.run([str(exe), "selftest"], capture_output=True, text=True, env=env, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=REPO / "dist", help="output folder (default: dist/)")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "pyinstaller", help="PyInstaller's work folder")
    parser.add_argument("--selftest", action="store_true", help="run the built bundle's `aldesk selftest`")
    args = parser.parse_args(argv)
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        print("PyInstaller is not installed: pip install -e '.[bundle]'", file=sys.stderr)
        return 1
    started = time.monotonic()
    try:
        exe = build(args.dist, args.work)
    except subprocess.CalledProcessError as exc:
        print(f"PyInstaller failed (exit {exc.returncode})", file=sys.stderr)
        return 1
    seconds = time.monotonic() - started
    size = folder_size(exe.parent)
    print(f"built {exe} in {seconds:.0f} s; bundle {size / 1e6:.0f} MB in {exe.parent}")
    if args.selftest:
        proc = selftest(exe)
        print(proc.stdout, end="")
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr, end="")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
