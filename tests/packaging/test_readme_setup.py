"""README's two set-up commands work on a stock Debian/Ubuntu, and CI runs exactly the test command.

Issue 13 point 4: a fresh machine has no ``python`` command and pip refuses to install outside a
virtual environment ("externally-managed-environment"), so both commands make and use ``.venv``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def setup_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def test_readme_has_the_two_commands_and_ci_runs_the_second_verbatim():
    install, tests = setup_commands()
    assert install.endswith("&& aldesk") and "pytest" in tests
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#")]
    assert ci[-1] == tests


@pytest.mark.parametrize("which", [0, 1])
def test_each_command_uses_python3_and_installs_only_inside_a_venv(which):
    steps = [s.strip() for s in setup_commands()[which].split("&&")]
    assert steps[0] == "sh packaging/install-system-deps.sh"
    activate = steps.index(". .venv/bin/activate")
    assert steps[activate - 1] == "python3 -m venv .venv"
    for step in steps[:activate]:            # before the venv: no bare `python`, no pip
        assert not re.match(r"(python|pip3?)\b", step), step
    assert any(s.startswith("python -m pip install -e ") for s in steps[activate + 1:])


def test_system_deps_script_brings_venv_on_debian():
    script = (REPO / "packaging" / "install-system-deps.sh").read_text()
    assert "python3-venv" in script.split('PKGS="', 1)[1].split('"', 1)[0]


def test_the_venv_steps_work_in_posix_sh(tmp_path):
    """The commands' venv part, run by /bin/sh as written: `python` afterwards is the venv's."""
    steps = [s.strip() for s in setup_commands()[1].split("&&")]
    venv_part = " && ".join(steps[1:steps.index(". .venv/bin/activate") + 1])
    python3 = Path(sys.executable).resolve()
    out = subprocess.run(["sh", "-c", venv_part.replace("python3 -m venv", f"{python3} -m venv --without-pip")
                          + ' && python -c "import sys; print(sys.prefix)"'],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True)
    assert Path(out.stdout.strip()) == tmp_path / ".venv"
