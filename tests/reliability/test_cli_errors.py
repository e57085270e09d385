"""User mistakes and a busy warehouse stop `pm` with one line that says what and where; `--debug` shows the traceback."""

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pm_assets.drivers.cli import main
from pm_assets.storage import paths

HOLD = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(float(sys.argv[2]))"


def _error(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    message = str(stopped.value)
    assert message.startswith("pm: error: ") and "\n" not in message and "Traceback" not in message
    return message


@pytest.fixture
def warehouse(data_dir):
    paths.data_dir().mkdir(parents=True)
    with duckdb.connect(str(paths.warehouse_path())) as con:
        con.execute("create table t as select 1 as x")
    return paths.warehouse_path()


def _holder(path, seconds: float) -> subprocess.Popen:
    """Another process holding the warehouse (a DuckDB client left open)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_user_mistakes_are_one_line(data_dir):
    assert "no warehouse at" in _error(["sql", "select 1"])
    assert "no landing files under" in _error(["train"])
    assert "--port must be between 1 and 65535, got 99999" in _error(["serve", "--port", "99999"])
    assert "not found: /nowhere/train_FD001.txt" in _error(["load", "cmapss", "/nowhere/train_FD001.txt"])


def test_bad_sql_is_one_line_with_duckdbs_hint_and_debug_shows_the_traceback(warehouse):
    message = _error(["sql", "select nope from t"])
    assert 'Referenced column "nope" not found' in message and "Candidate bindings" in message
    with pytest.raises(duckdb.BinderException):
        main(["--debug", "sql", "select nope from t"])


def test_a_held_warehouse_is_waited_for_then_named_with_its_holder(warehouse, monkeypatch, capsys):
    monkeypatch.setenv("PM_LOCK_WAIT_SECONDS", "1")
    holder = _holder(warehouse, 30)
    try:
        message = _error(["sql", "select x from t"])
    finally:
        holder.kill()
        holder.wait()
    assert str(warehouse) in message and f"(PID {holder.pid})" in message and "for more than 1s" in message

    monkeypatch.setenv("PM_LOCK_WAIT_SECONDS", "30")
    holder = _holder(warehouse, 2)  # lets go after 2 s: the reader waits for it, then answers
    start = time.perf_counter()
    main(["sql", "select x from t"])
    holder.wait()
    shown = capsys.readouterr().out
    assert time.perf_counter() - start > 1 and [row.strip("│ ") for row in shown.splitlines()][1:5:3] == ["x", "1"]


def test_a_damaged_warehouse_says_so_and_gives_the_remedy(warehouse):
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table big as select range as i from range(200000)")
    data = warehouse.read_bytes()
    warehouse.write_bytes(data[: len(data) // 3])  # cut short, as a full disk or an interrupted copy leaves it
    message = _error(["sql", "select count(*) from big"])
    assert f"the warehouse {warehouse} is damaged" in message and "move it aside" in message and "pm ingest" in message


def test_a_write_that_runs_out_of_space_names_the_data_directory(data_dir):
    """A file-size limit makes every write fail as a full disk does (EFBIG instead of ENOSPC), in a real `pm`."""
    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    pm = str(Path(sys.executable).with_name("pm"))
    done = subprocess.run([pm, "simulate", "--machines", "30", "--days", "5"], preexec_fn=limited, capture_output=True, text=True,
                          env={**os.environ, "PM_DATA_DIR": str(data_dir)}, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("pm: error: ") and f"a write under {data_dir} failed: is its disk full" in line, line
