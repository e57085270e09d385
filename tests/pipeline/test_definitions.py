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


def test_every_asset_sits_in_a_named_group_and_the_jobs_are_built_from_the_assets():
    """The catalog a newcomer opens groups every asset by what it is for (dbt models by folder), none in "default"."""
    from pm_assets.definitions import defs
    from pm_assets.defs.jobs import DAY_ASSETS, RAW_ASSETS, RETRAIN_ASSETS

    graph = defs.resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys() if graph.get(key).is_materializable}
    assert "default" not in groups.values(), sorted(k for k, g in groups.items() if g == "default")
    assert groups["stg_telemetry"] == "staging" and groups["machine_timeseries"] == "marts"
    selected = {name: {k.to_user_string() for k in defs.resolve_job_def(name).asset_layer.selected_asset_keys} for name in ("daily", "retrain")}
    assert selected["retrain"] == set(RETRAIN_ASSETS)
    assert selected["daily"] == {*RAW_ASSETS, *DAY_ASSETS, "machine_timeseries", "machine_daily_health"}
