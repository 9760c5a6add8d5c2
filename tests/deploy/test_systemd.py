"""deploy/'s systemd units: `systemd-analyze verify` finds nothing to say, the hardening scores OK offline, the
timer fires at 02:30 Beijing time, and the command lines are ones gridctl accepts.

`systemd-analyze verify` works without systemd running (this runs in containers whose PID 1 is not systemd):
it loads the given unit files into a test manager and checks every setting, that ExecStart's program exists and
is executable, and the timer's calendar. The units name the installed paths (/opt/nanhai-grid,
/etc/nanhai-grid/nanhai-grid.env); here they point into this checkout (its gridctl, the example environment file),
nothing else changed. What it cannot check here: that the nanhai-grid user exists (it does not look), and how
the hardening options behave at run time, which needs systemd as PID 1.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gridctl import main

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = ("nanhai-grid.service", "nanhai-grid-backup.service", "nanhai-grid-backup.timer")


def _analyze() -> str:
    found = shutil.which("systemd-analyze")
    assert found, "systemd-analyze 未安装：make system 安装 systemd / not installed: `make system` installs systemd"
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """The units as installed, their paths pointing into this checkout."""
    folder = tmp_path_factory.mktemp("units")
    gridctl = Path(sys.executable).parent / "gridctl"
    assert os.access(gridctl, os.X_OK), gridctl
    units = {}
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        text = text.replace("/opt/nanhai-grid/.venv/bin/gridctl", str(gridctl))
        text = text.replace("/etc/nanhai-grid/nanhai-grid.env", str(DEPLOY / "nanhai-grid.env.example"))
        text = text.replace("/opt/nanhai-grid", str(DEPLOY.parent))
        units[name] = folder / name
        units[name].write_text(text)
    return units


def test_the_units_verify_without_a_word(installed):
    result = subprocess.run([_analyze(), "verify", "--man=no", *map(str, installed.values())],
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_verify_would_catch_a_mistake(installed, tmp_path):
    """The check has teeth: a misspelt option and a program that is not there are both reported."""
    broken = tmp_path / "nanhai-grid.service"
    broken.write_text(installed["nanhai-grid.service"].read_text()
                      .replace("ProtectSystem=strict", "ProtectSystem=strictly")
                      .replace(str(Path(sys.executable).parent / "gridctl"), "/nonexistent/gridctl"))
    result = subprocess.run([_analyze(), "verify", "--man=no", str(broken)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "strictly" in result.stderr and "/nonexistent/gridctl" in result.stderr


@pytest.mark.parametrize("unit", ["nanhai-grid.service", "nanhai-grid-backup.service"])
def test_the_services_are_hardened(installed, unit):
    """systemd's own review of the sandboxing, offline: an exposure of at most 2.0 of 10 ("OK")."""
    result = subprocess.run([_analyze(), "security", "--offline=yes", "--threshold=20", "--no-pager",
                             str(installed[unit])], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"Overall exposure level for .*: [01]\.\d", result.stdout), result.stdout


def _setting(unit: Path, name: str) -> str:
    return re.search(rf"^{name}=(.*)$", unit.read_text(), re.M).group(1)


def test_the_server_restarts_always_as_its_own_user_with_the_environment_file():
    unit = DEPLOY / "nanhai-grid.service"
    assert _setting(unit, "Restart") == "always" and _setting(unit, "User") == "nanhai-grid"
    assert _setting(unit, "EnvironmentFile") == "/etc/nanhai-grid/nanhai-grid.env"
    assert _setting(unit, "KillMode") == "mixed"  # SIGTERM to the server, which stops its workers itself


def test_the_backup_runs_nightly_at_half_past_two_beijing_time():
    spec = _setting(DEPLOY / "nanhai-grid-backup.timer", "OnCalendar")
    result = subprocess.run([_analyze(), "calendar", "--iterations=2", spec], capture_output=True, text=True,
                            env={**os.environ, "TZ": "UTC"})
    assert result.returncode == 0, result.stderr
    assert len(re.findall(r"\d{4}-\d\d-\d\d 18:30:00 UTC", result.stdout)) == 2, result.stdout


@pytest.mark.parametrize("unit", ["nanhai-grid.service", "nanhai-grid-backup.service"])
def test_the_command_lines_are_ones_gridctl_accepts(unit):
    program, command, *options = shlex.split(_setting(DEPLOY / unit, "ExecStart"))
    assert program == "/opt/nanhai-grid/.venv/bin/gridctl"
    main.commands[command].make_context(command, options)  # raises on an unknown option or a bad value


def test_the_example_environment_file_names_what_the_server_reads():
    names = {line.split("=", 1)[0] for line in (DEPLOY / "nanhai-grid.env.example").read_text().splitlines()
             if line and not line.startswith("#")}
    assert names == {"DATABASE_URL", "NANHAI_PERSON_KEY_SECRET", "NANHAI_FERNET_KEY", "NANHAI_PRODUCTION",
                     "NANHAI_TRUSTED_PROXY", "NANHAI_BASEMAP"}
