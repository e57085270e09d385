"""The scale profile end to end on real services on loopback: Dagster's instance in PostgreSQL, the warehouse a
DuckLake (catalog in PostgreSQL, Parquet in moto's S3), MLflow a tracking server (PostgreSQL store, S3 artifacts).

The same simulated fleet runs once on the single-machine default and once on the scale profile, raw ingestion of
its days as two concurrent runs in two processes; tables, features and scores must come out the same, and a
scoring service on the scale profile must follow the registry alias, with no shared file, when it moves.
"""

import datetime as dt
import os
import subprocess
import sys
import time

import boto3
import dagster as dg
import httpx
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pm_assets.core.constants import PARTITION_START
from pm_assets.drivers import local_stack
from pm_assets.drivers.runner import ingest_stages, instance, materialize, run_stages, train_stages
from pm_assets.sources.simulator import FleetConfig, simulate_fleet
from pm_assets.storage import landing, paths, registry, warehouse
from pm_serving.app import create_app
from pm_serving.settings import Settings
from tests.pipeline.conftest import model_config
from tests.serving.server import running

FLEET = FleetConfig(n_machines=12, n_days=60, readings_per_day=24, seed=9)
DAYS = (PARTITION_START, PARTITION_START + dt.timedelta(days=FLEET.n_days - 1))
#: Tables compared between the two profiles, with the columns that identify a row.
TABLES = {
    "raw.telemetry": ["machine_id", "ts"],
    "raw.events": ["machine_id", "ts", "event_type"],
    "main.machine_timeseries": ["machine_id", "ts"],
    "main.machine_daily_health": ["machine_id", "reading_date"],
    "features.machine_features": ["machine_id", "ts"],
}
LOADED_AT = ("_loaded_at",)
CONCURRENT_TAG = "pm/concurrent_ingest"


@pytest.fixture(scope="module")
def stack():
    try:
        local_stack.postgres_bin_dir()
    except local_stack.StackUnavailable as error:
        pytest.skip(f"the scale profile's integration test needs PostgreSQL's server binaries here: {error}")
    with local_stack.running_stack() as services:
        yield services


def _pipeline() -> None:
    """What `pm demo` does before its stream: ingest every day, fit features, train and promote, score the fleet."""
    landing.land_dataset(simulate_fleet(FLEET), paths.landing_dir())
    run_stages(ingest_stages(DAYS), log=lambda line: None)
    run_stages(train_stages(DAYS), log=lambda line: None, ops_config=model_config(iterations=30)["ops"])


def _tables() -> dict[str, pl.DataFrame]:
    with warehouse.connect(paths.warehouse_path(), read_only=True) as con:
        frames = {table: con.sql(f"select * from {table}").pl() for table in [*TABLES, "scores.fleet_scores"]}
    return {table: frame.drop([c for c in frame.columns if c in LOADED_AT]) for table, frame in frames.items()}


def _sorted(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return frame.sort(keys).select(sorted(frame.columns))


@pytest.fixture(scope="module")
def single_machine(tmp_path_factory):
    """The default profile's tables for the fleet."""
    with pytest.MonkeyPatch.context() as patch:
        for name in local_stack.Stack(0, 0, 0).environment():
            patch.delenv(name, raising=False)
        patch.setenv("PM_DATA_DIR", str(tmp_path_factory.mktemp("single") / "data"))
        _pipeline()
        yield _tables()


def _ingest_concurrently(halves: list[tuple[dt.date, dt.date]]) -> None:
    """Raw ingestion of each day range in its own process at once, on the profile's shared instance and warehouse."""
    code = ("import datetime as dt, sys; from pm_assets.drivers.runner import materialize; "
            "materialize('raw_telemetry raw_events', (dt.date.fromisoformat(sys.argv[1]), dt.date.fromisoformat(sys.argv[2])), "
            f"tags={{'{CONCURRENT_TAG}': 'yes'}})")
    workers = [subprocess.Popen([sys.executable, "-c", code, first.isoformat(), last.isoformat()], env=os.environ.copy(),
                                stderr=subprocess.PIPE, text=True) for first, last in halves]
    for worker in workers:
        _, errors = worker.communicate(timeout=600)
        assert worker.returncode == 0, errors[-3000:]


@pytest.fixture(scope="module")
def scale_profile(stack, tmp_path_factory):
    """The scale profile's tables for the same fleet; raw ingestion as two concurrent runs."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in stack.environment().items():
            patch.setenv(name, value)
        patch.setenv("PM_DATA_DIR", str(tmp_path_factory.mktemp("scale") / "data"))
        landing.land_dataset(simulate_fleet(FLEET), paths.landing_dir())
        materialize("machines")
        middle = DAYS[0] + dt.timedelta(days=FLEET.n_days // 2)
        _ingest_concurrently([(DAYS[0], middle - dt.timedelta(days=1)), (middle, DAYS[1])])
        _pipeline()
        yield _tables()


def test_the_scale_profile_runs_on_postgres_ducklake_and_an_mlflow_server(stack, scale_profile):
    current = instance()
    assert type(current.run_storage).__name__ == "PostgresRunStorage"
    assert type(current.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert not paths.warehouse_path().exists()  # no DuckDB file: the warehouse is the lake
    ingestion = current.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS], tags={CONCURRENT_TAG: "yes"}))
    assert len(ingestion) == 2
    first, second = sorted(ingestion, key=lambda r: r.start_time)
    assert second.start_time < first.end_time, "the two ingestion runs did not overlap"

    s3 = boto3.client("s3", endpoint_url=f"http://{stack.s3_endpoint}", aws_access_key_id=local_stack.S3_KEY,
                      aws_secret_access_key=local_stack.S3_KEY, region_name="us-east-1")
    files = [o["Key"] for o in s3.list_objects_v2(Bucket=local_stack.LAKE_BUCKET, Prefix="lake/raw/telemetry/")["Contents"]]
    days_with_files = {k.split("_partition_date=")[1].split("/")[0] for k in files if "_partition_date=" in k}
    assert len(days_with_files) == FLEET.n_days  # one folder per day: runs of different days never share a file

    champion = registry.alias_version(registry.CHAMPION)
    assert champion is not None and registry.tracking_uri().startswith("http://")
    artifacts = s3.list_objects_v2(Bucket=local_stack.ARTIFACTS_BUCKET)["Contents"]
    assert any(o["Key"].endswith("MLmodel") for o in artifacts)


def test_the_scale_profile_computes_what_the_single_machine_computes(single_machine, scale_profile):
    for table, keys in TABLES.items():
        single, scale = _sorted(single_machine[table], keys), _sorted(scale_profile[table], keys)
        assert single.height > 0 and single.height == scale.height, table
        # DuckDB's parallel aggregates sum in no fixed order: a mean may differ in its last bits between two runs
        assert_frame_equal(single, scale, rel_tol=1e-9, abs_tol=1e-9)
    scores = [_sorted(tables["scores.fleet_scores"].drop("scored_at", strict=False), ["machine_id"]) for tables in
              (single_machine, scale_profile)]
    assert scores[0].height == FLEET.n_machines
    # models trained on features equal to 1e-9 may still place a split elsewhere: scores agree to a fraction of an hour
    single, scale = (frame.select("machine_id", "rul_hours", "failure_probability") for frame in scores)
    assert single["machine_id"].equals(scale["machine_id"])
    assert (single["rul_hours"] - scale["rul_hours"]).abs().max() < 0.5  # hours, of a 125 h cap (seen: 0.025)
    assert (single["failure_probability"] - scale["failure_probability"]).abs().max() < 0.01


def test_a_replica_follows_the_registry_alias_without_a_shared_file(stack, scale_profile, monkeypatch):
    for name, value in stack.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PM_DATA_DIR", str(paths.data_dir().parent / "replica"))  # a machine of its own: no pointer file
    assert Settings.from_env().follow_alias  # the default with a tracking server
    champion = registry.alias_version(registry.CHAMPION)
    other = "1" if champion != "1" else "2"  # both candidates were registered
    settings = Settings(follow_alias=True, poll_seconds=0.2, inference_log_dir=paths.data_dir() / "inference")
    with running(create_app(settings)) as url:
        assert httpx.get(f"{url}/ready", timeout=30).json()["model_version"] == champion
        registry.set_alias(other, registry.CHAMPION)
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/model", timeout=30).json()["version"] != other:
            assert time.monotonic() < deadline, "the replica did not follow the alias within 60 s"
            time.sleep(0.2)
    registry.set_alias(champion, registry.CHAMPION)
