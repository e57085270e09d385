"""One writer at a time, said plainly: a writing command waits for the holder and names it; dbt's failures keep their cause."""

import re
import subprocess
import sys

import duckdb
import pytest

from pm_assets.drivers.cli import _one_line, main
from pm_assets.drivers.runner import materialize
from pm_assets.storage import paths

HOLD = ("import sys, time; from pm_assets.storage.writer_lock import writer_lock\n"
        "with writer_lock('pm daily'):\n    print('held', flush=True); time.sleep(float(sys.argv[1]))")


def _holder(seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_writing_command_waits_for_the_writer_and_names_it(data_dir, monkeypatch):
    monkeypatch.setenv("PM_LOCK_WAIT_SECONDS", "1")
    holder = _holder(60)
    try:
        with pytest.raises(SystemExit) as stopped:
            main(["simulate", "--machines", "4", "--days", "3"])
        message = str(stopped.value)
        assert message.startswith("pm: error: another writer holds") and "\n" not in message
        assert f"pm daily (pid {holder.pid}, since" in message and "PM_LOCK_WAIT_SECONDS" in message
        assert not paths.landing_dir().exists()  # nothing written
        main(["sql", "select 1"]) if paths.warehouse_path().exists() else None  # readers do not take it
    finally:
        holder.kill()
        holder.wait()
    monkeypatch.setenv("PM_LOCK_WAIT_SECONDS", "30")
    holder = _holder(2)  # a short hold is waited for, then the command runs
    try:
        main(["simulate", "--machines", "4", "--days", "3"])
        assert paths.landing_dir().exists()
    finally:
        holder.wait()


def test_a_failed_dbt_build_says_dbts_own_error_not_its_wrappers(data_dir, instance):
    paths.data_dir().mkdir(parents=True)
    duckdb.connect(str(paths.warehouse_path())).close()  # a warehouse without the raw tables dbt reads
    with pytest.raises(Exception) as failed:
        materialize("dbt_models", instance_=instance)
    line = _one_line(failed.value)
    assert line.startswith("dbt build failed:") and "The dbt CLI process" not in line, line
    assert re.search(r'Catalog Error: Table with name "raw\.\w+" does not exist', line), line
