"""The code location loads as a user starts it: `dg check defs` and `dagster definitions validate -w workspace.yaml`,
run from the virtualenv's bin folder without activating it (so `dbt` is not on PATH)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command", [["dg", "check", "defs"], ["dagster", "definitions", "validate", "-w", "workspace.yaml"]])
def test_the_code_location_loads_without_an_activated_virtualenv(command, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env |= {"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(tmp_path), "PM_DATA_DIR": str(tmp_path / "data")}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    result = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "dbt executable" not in result.stderr
