"""`make test` on a fresh machine: the Debian packages are installed, or the command is named."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "system-packages.sh"


def run_with(tmp_path: Path, *, installed: set[str], uid: int, mode: str):
    """Run the script with stand-ins for dpkg and id on PATH (no package is really touched)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    listed = " ".join(sorted(installed))
    (bin_dir / "dpkg").write_text(
        f'#!/bin/sh\nfor p in {listed}; do [ "$2" = "$p" ] && exit 0; done\nexit 1\n'
    )
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", str(SCRIPT), mode], env=env, capture_output=True, text=True, timeout=30
    )


def test_a_missing_browser_stops_make_test_naming_the_command(tmp_path):
    present = {"libpango-1.0-0", "libpangoft2-1.0-0", "libharfbuzz-subset0", "fonts-dejavu-core"}
    result = run_with(tmp_path, installed=present | {"gcc", "libssl-dev"}, uid=1000, mode="test")
    assert result.returncode == 1
    assert "These Debian packages are missing: chromium" in result.stderr
    assert "sudo apt-get install --no-install-recommends chromium" in result.stderr


def test_make_run_does_not_ask_for_the_browser(tmp_path):
    present = {"libpango-1.0-0", "libpangoft2-1.0-0", "libharfbuzz-subset0", "fonts-dejavu-core"}
    # make run builds the C HMAC too (a failed build stops make): it needs gcc and libssl-dev.
    result = run_with(tmp_path, installed=present | {"gcc", "libssl-dev"}, uid=1000, mode="run")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_make_run_names_the_compiler_and_openssl_headers_when_missing(tmp_path):
    present = {"libpango-1.0-0", "libpangoft2-1.0-0", "libharfbuzz-subset0", "fonts-dejavu-core"}
    result = run_with(tmp_path, installed=present, uid=1000, mode="run")
    assert result.returncode == 1
    assert "These Debian packages are missing: gcc libssl-dev" in result.stderr
    assert "chromium" not in result.stderr


def test_nothing_is_installed_when_everything_is_there(tmp_path):
    every = {
        "libpango-1.0-0",
        "libpangoft2-1.0-0",
        "libharfbuzz-subset0",
        "fonts-dejavu-core",
        "gcc",
        "libssl-dev",
        "chromium",
    }
    result = run_with(tmp_path, installed=every, uid=0, mode="test")
    assert result.returncode == 0
    assert "Installing" not in result.stdout
