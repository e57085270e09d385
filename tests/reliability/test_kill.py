"""`kill -9` at several moments of `pm ingest` and of a day's run: the stores stay consistent, the killed run is
marked failed when `pm` next starts, and running the command again ends exactly where a clean run ends."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import mlflow
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pm_assets.drivers.cli import landed_range, main
from pm_assets.drivers.runner import HOST_TAG, PID_TAG, fail_abandoned_runs, run_stages, train_stages
from pm_assets.storage import registry
from tests.pipeline.conftest import model_config

PM = str(Path(sys.executable).with_name("pm"))
#: Table contents compared between a clean run and a killed-then-repeated one (columns of when a row was written left out).
TABLES = {
    "raw.telemetry": "* exclude (_loaded_at)",
    "raw.events": "* exclude (_loaded_at)",
    "raw.quarantine": "* exclude (quarantined_at)",
    "machine_timeseries": "*",
    "machine_daily_health": "*",
}
DAILY_TABLES = {**TABLES, "features.machine_features": "*", "scores.fleet_scores": "* exclude (scored_at)"}


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "PM_DATA_DIR": str(data_dir), "PM_LOCK_WAIT_SECONDS": "30"}


def _pm(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([PM, *args], env=_env(data_dir), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


def _killed(data_dir: Path, when: float | Callable[[], bool], *args: str) -> bool:
    """Start `pm args`, `kill -9` it after `when` seconds or once `when()` is true; True if it was still running then."""
    process = subprocess.Popen([PM, *args], env=_env(data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if callable(when):
        deadline = time.monotonic() + 600
        while process.poll() is None and time.monotonic() < deadline and not when():
            time.sleep(0.2)
    else:
        time.sleep(when)
    running = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    return running


def _contents(data_dir: Path, tables: dict[str, str]) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return {t: con.sql(f"select {columns} from {t} order by all").pl() for t, columns in tables.items()}


def _assert_same(clean: dict[str, pl.DataFrame], repeated: dict[str, pl.DataFrame]) -> None:
    for table in clean:
        assert clean[table].height > 0 or table == "raw.quarantine", table
        try:
            assert_frame_equal(clean[table], repeated[table], check_exact=False, rel_tol=1e-12)
        except AssertionError as error:
            raise AssertionError(f"{table}: {error}") from None


def _unfinished_runs(data_dir: Path) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(data_dir / "dagster_home")) as instance:
        return [r for r in instance.get_runs() if not r.is_finished]


def _in_process(monkeypatch: pytest.MonkeyPatch, data_dir: Path, *argv: str) -> None:
    """`pm argv` in this process: the same command, without a process start-up per step of the set-up."""
    monkeypatch.setenv("PM_DATA_DIR", str(data_dir))
    main(list(argv))


@pytest.fixture
def landed(tmp_path, monkeypatch) -> Path:
    """A small simulated fleet's landing files (34 of its 40 days)."""
    root = tmp_path / "landed"
    _in_process(monkeypatch, root, "simulate", "--machines", "8", "--days", "40", "--through", "33", "--seed", "11")
    return root


@pytest.mark.slow
def test_ingest_killed_at_several_moments_then_repeated_equals_a_clean_ingest(landed, tmp_path, monkeypatch):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    for target in (clean, killed):
        shutil.copytree(landed, target)
    _in_process(monkeypatch, clean, "ingest")
    kills = [_killed(killed, seconds, "ingest") for seconds in (12, 20)]
    assert any(kills), "ingest finished before every kill: kill earlier"
    _pm(killed, "ingest")
    assert not _unfinished_runs(killed)
    _assert_same(_contents(clean, TABLES), _contents(killed, TABLES))


def _features_of_day_written(data_dir: Path, day: str) -> bool:
    """Whether a run has materialized `machine_features` for `day` (the day's run is then half done)."""
    with dg.DagsterInstance.from_config(str(data_dir / "dagster_home")) as instance:
        records = instance.fetch_materializations(dg.AssetKey("machine_features"), limit=5).records
        return any(r.partition_key == day for r in records)


@pytest.mark.slow
def test_a_day_killed_mid_run_then_repeated_equals_a_clean_day(landed, tmp_path, monkeypatch):
    _in_process(monkeypatch, landed, "ingest")
    # `pm train`'s stages, with the tests' quick candidates
    run_stages(train_stages(landed_range()), log=lambda line: None, ops_config=model_config()["ops"])
    _in_process(monkeypatch, landed, "simulate", "--advance", "1", "--land-only")
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    for target in (clean, killed):  # copies of a trained directory: each rewrites its MLflow store to itself
        shutil.copytree(landed, target)
    _in_process(monkeypatch, clean, "daily")
    # killed once the day's features are stored, before its scores: the repeated command must still do the day
    assert _killed(killed, lambda: _features_of_day_written(killed, "2025-02-04"), "daily"), "the day finished before the kill"
    assert _unfinished_runs(killed), "the killed run should still look unfinished before pm starts again"
    repeated = _pm(killed, "daily")
    assert "marked 1 run(s) failed" in repeated.stdout
    assert not _unfinished_runs(killed)
    _assert_same(_contents(clean, DAILY_TABLES), _contents(killed, DAILY_TABLES))
    champion = [json.loads((d / "models" / "champion.json").read_text()) for d in (clean, killed)]
    assert champion[0]["version"] == champion[1]["version"] and champion[1]["tracking_uri"].endswith(f"{killed}/mlflow.db")


def test_a_run_whose_process_died_is_failed_with_its_mlflow_runs(data_dir):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    with dg.instance_for_test() as instance:
        run = instance.add_run(dg.DagsterRun(job_name="retrain", status=dg.DagsterRunStatus.STARTED,
                                             tags={PID_TAG: str(dead.pid), HOST_TAG: socket.gethostname()}))
        alive = instance.add_run(dg.DagsterRun(job_name="daily", status=dg.DagsterRunStatus.STARTED,
                                               tags={PID_TAG: str(os.getppid()), HOST_TAG: socket.gethostname()}))
        mlflow.set_tracking_uri(registry.tracking_uri())
        with mlflow.start_run(experiment_id=registry.ensure_experiment(), tags={"dagster_run_id": run.run_id}) as opened:
            pass
        mlflow.MlflowClient().update_run(opened.info.run_id, status="RUNNING")  # as a killed process leaves it

        assert fail_abandoned_runs(instance) == [run.run_id]
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED  # its process still runs
        assert mlflow.MlflowClient().get_run(opened.info.run_id).info.status == "KILLED"


def test_sigterm_stops_pm_in_one_line_and_leaves_no_run_unfinished(landed):
    """A SIGTERM (a service manager stopping `pm`, a `kill`) is handled like Ctrl-C: one line, no traceback, and the
    run it interrupted is not left looking alive."""
    # started with SIGINT ignored, as `pm ingest &` from a script (or a pytest-xdist worker) starts it: Dagster copies
    # SIGINT's handler to SIGTERM after each run, which then ignored SIGTERM too
    process = subprocess.Popen([PM, "ingest"], env=_env(landed), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline and not (landed / "warehouse.duckdb").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    assert process.poll() is None, "pm ingest ended before it could be stopped"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert stderr.strip().splitlines()[-1] == "pm: interrupted" and "Traceback" not in stderr, stderr[-3000:]
    assert not _unfinished_runs(landed)


def test_sigterm_during_a_query_stops_pm_in_one_line(tmp_path):
    """DuckDB turns an interrupt in the middle of a query into an error of its own ("Query interrupted"): `pm` still
    says it was interrupted, not that the query failed."""
    duckdb.connect(str(tmp_path / "warehouse.duckdb")).close()
    process = subprocess.Popen([PM, "sql", "select count(*) from range(100000000000) t(x) where x % 7 = 3"],
                               env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)  # well into the query: ~10^11 rows take minutes
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert stderr.strip().splitlines()[-1] == "pm: interrupted" and "Traceback" not in stderr, stderr[-2000:]
