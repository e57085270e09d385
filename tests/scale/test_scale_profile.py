"""The scale profile end to end on real services on loopback: Dagster's instance in PostgreSQL, the warehouse a
DuckLake (catalog in PostgreSQL, Parquet in moto's S3), MLflow a tracking server (PostgreSQL store, S3 artifacts).

The same simulated fleet runs once on the single-machine default and once on the scale profile with two machine
shards, raw ingestion of its days as one run per shard, at once in two processes; tables, features and scores must
come out the same, and a scoring service on the scale profile must follow the registry alias, with no shared file,
when it moves. The scale profile runs in processes of its own: the shard count shapes the code location's partitions.
"""

import datetime as dt
import json
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
from pm_assets.core.shards import SHARD_TAG
from pm_assets.drivers import local_stack
from pm_assets.drivers.runner import ingest_stages, instance, run_stages, train_stages
from pm_assets.sources.simulator import FleetConfig, simulate_fleet
from pm_assets.storage import landing, paths, registry, warehouse
from pm_serving.app import create_app
from pm_serving.log_shipping import LogShipper
from pm_serving.settings import Settings
from tests.pipeline.conftest import model_config
from tests.serving.conftest import machine_payload
from tests.serving.server import running

pytestmark = pytest.mark.slow  # the slow end-to-end tier: `make test-slow`

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
#: Lineage columns, not compared: when a row was loaded, and the shard that loaded it.
LINEAGE = ("_loaded_at", "_shard")
CONCURRENT_TAG = "pm/concurrent_ingest"
SHARDS = 2


@pytest.fixture(scope="module")
def stack():
    try:
        local_stack.postgres_bin_dir()
    except local_stack.StackUnavailable as error:
        pytest.skip(f"the scale profile's integration test needs PostgreSQL's server binaries here: {error}")
    with local_stack.running_stack() as services:
        yield services


def _pipeline(raw_loaded: bool = False) -> None:
    """What `pm demo` does before its stream: ingest every day (but the raw tables, when `raw_loaded`), fit features,
    train and promote, score the fleet."""
    if not raw_loaded:
        landing.land_dataset(simulate_fleet(FLEET), paths.landing_dir())
    stages = [stage for stage in ingest_stages(DAYS) if not (raw_loaded and stage[0].startswith(("machines", "raw_")))]
    run_stages(stages, log=lambda line: None)
    run_stages(train_stages(DAYS), log=lambda line: None, ops_config=model_config(iterations=30)["ops"])


def _tables() -> dict[str, pl.DataFrame]:
    with warehouse.connect(paths.warehouse_path(), read_only=True) as con:
        frames = {table: con.sql(f"select * from {table}").pl() for table in [*TABLES, "scores.fleet_scores"]}
    return {table: frame.drop([c for c in frame.columns if c in LINEAGE]) for table, frame in frames.items()}


def _sorted(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Rows in key order, ties (a reading sent twice) by their other columns; columns by name."""
    return frame.sort([*keys, *sorted(set(frame.columns) - set(keys))]).select(sorted(frame.columns))


@pytest.fixture(scope="module")
def single_machine(tmp_path_factory):
    """The default profile's tables for the fleet."""
    with pytest.MonkeyPatch.context() as patch:
        for name in local_stack.Stack(0, 0, 0).environment():
            patch.delenv(name, raising=False)
        patch.setenv("PM_DATA_DIR", str(tmp_path_factory.mktemp("single") / "data"))
        _pipeline()
        yield _tables()


def _in_new_process(code: str, *args: str) -> str:
    """Run `code` in a new Python process with this environment; return what it printed."""
    done = subprocess.run([sys.executable, "-c", code, *args], env=os.environ.copy(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _ingest_shards_concurrently() -> None:
    """Raw ingestion of every day, one run per machine shard, each in its own process at once."""
    code = ("import datetime as dt, sys; from pm_assets.drivers.runner import materialize; "
            "materialize('raw_telemetry raw_events', (dt.date.fromisoformat(sys.argv[1]), dt.date.fromisoformat(sys.argv[2])), "
            f"tags={{'{CONCURRENT_TAG}': 'yes'}}, shard=int(sys.argv[3]))")
    workers = [subprocess.Popen([sys.executable, "-c", code, DAYS[0].isoformat(), DAYS[1].isoformat(), str(shard)], env=os.environ.copy(),
                                stderr=subprocess.PIPE, text=True) for shard in range(SHARDS)]
    for worker in workers:
        _, errors = worker.communicate(timeout=600)
        assert worker.returncode == 0, errors[-3000:]


#: What the `daily_after_shards` sensor and the shards' schedule (at 01:00 of the day after the last) request, as
#: JSON: [partition key, run key, shard tag] of each run.
REQUESTS = ("import datetime as dt, json; import dagster as dg; "
            "from pm_assets.defs.schedules import daily_after_shards, ingest_shards_schedule; "
            "from pm_assets.drivers.runner import instance; "
            "sensor = daily_after_shards(dg.build_sensor_context(instance=instance())); "
            "at = dt.datetime.combine(dt.date.fromisoformat(__import__('sys').argv[1]), dt.time(1), dt.UTC); "
            "schedule = ingest_shards_schedule(dg.build_schedule_context(scheduled_execution_time=at)); "
            "print(json.dumps({name: [[str(r.partition_key), r.run_key, r.tags.get('pm/shard')] for r in requests] "
            "for name, requests in (('sensor', sensor), ('schedule', schedule))}))")


@pytest.fixture(scope="module")
def scale_profile(stack, tmp_path_factory):
    """The scale profile's tables for the same fleet, and what the shard sensor requested; raw ingestion as one
    concurrent run per shard."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**stack.environment(), "PM_SHARDS": str(SHARDS)}.items():
            patch.setenv(name, value)
        patch.setenv("PM_DATA_DIR", str(tmp_path_factory.mktemp("scale") / "data"))
        _in_new_process("from tests.scale.test_scale_profile import FLEET; from pm_assets.sources.simulator import simulate_fleet; "
                    "from pm_assets.storage import landing, paths; from pm_assets.drivers.runner import materialize; "
                    "landing.land_dataset(simulate_fleet(FLEET), paths.landing_dir()); materialize('machines')")
        _ingest_shards_concurrently()
        requested = json.loads(_in_new_process(REQUESTS, (DAYS[1] + dt.timedelta(days=1)).isoformat()).splitlines()[-1])
        _in_new_process("from tests.scale.test_scale_profile import _pipeline; _pipeline(raw_loaded=True)")
        yield _tables() | {"requests": requested}


def test_the_scale_profile_runs_on_postgres_ducklake_and_an_mlflow_server(stack, scale_profile):
    current = instance()
    assert type(current.run_storage).__name__ == "PostgresRunStorage"
    assert type(current.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert not paths.warehouse_path().exists()  # no DuckDB file: the warehouse is the lake
    ingestion = current.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS], tags={CONCURRENT_TAG: "yes"}))
    assert sorted(r.dagster_run.tags[SHARD_TAG] for r in ingestion) == [str(s) for s in range(SHARDS)]
    first, second = sorted(ingestion, key=lambda r: r.start_time)
    assert second.start_time < first.end_time, "the two shards' ingestion runs did not overlap"

    s3 = boto3.client("s3", endpoint_url=f"http://{stack.s3_endpoint}", aws_access_key_id=local_stack.S3_KEY,
                      aws_secret_access_key=local_stack.S3_KEY, region_name="us-east-1")
    files = [o["Key"] for o in s3.list_objects_v2(Bucket=local_stack.LAKE_BUCKET, Prefix="lake/raw/telemetry/")["Contents"]]
    folders = {tuple(part.split("=")[1] for part in k.split("/") if part.startswith(("_partition_date=", "_shard="))) for k in files}
    # a folder per day and shard: runs of different shards or days never write, nor delete from, the same file
    assert folders == {(day.isoformat(), str(shard)) for day in pl.date_range(*DAYS, eager=True) for shard in range(SHARDS)}
    # the sensor asks for the `daily` run of each of the last days once every shard has loaded it; the schedule for
    # one run per shard of the day before
    last_days = [day.isoformat() for day in pl.date_range(DAYS[1] - dt.timedelta(days=6), DAYS[1], eager=True)]
    assert scale_profile["requests"]["sensor"] == [[day, f"daily-{day}", None] for day in last_days]
    last = DAYS[1].isoformat()
    assert scale_profile["requests"]["schedule"] == [[f"{last}|{shard}", f"{last}-{shard}", str(shard)] for shard in range(SHARDS)]

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
    # models trained on features equal to 1e-9 may still place a split elsewhere (boosting threads sum in no fixed
    # order either): scores agree to within an hour or two
    single, scale = (frame.select("machine_id", "rul_hours", "failure_probability") for frame in scores)
    assert single["machine_id"].equals(scale["machine_id"])
    assert (single["rul_hours"] - scale["rul_hours"]).abs().max() < 2.0  # hours, of a 125 h cap (seen: 0.025 to 0.55)
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


def test_a_replica_without_the_data_directory_serves_the_worklist_from_the_shared_store(stack, scale_profile, monkeypatch):
    for name, value in stack.environment().items():
        monkeypatch.setenv(name, value)
    replica = paths.data_dir().parent / "empty-replica"  # a machine of its own: no scores, no plan, no pointer file
    monkeypatch.setenv("PM_DATA_DIR", str(replica))
    settings = Settings.from_env()
    assert settings.scores_url and not settings.scores_path.exists()
    scores = scale_profile["scores.fleet_scores"].sort("machine_id")
    with running(create_app(settings)) as url:
        assert httpx.get(f"{url}/ready", timeout=30).status_code == 200
        for row in scores.head(3).iter_rows(named=True):
            body = httpx.get(f"{url}/machines/{row['machine_id']}", timeout=30).json()
            assert body["rul_hours"] == pytest.approx(row["rul_hours"]) and body["risk_level"] == row["risk_level"]
        assert httpx.get(f"{url}/machines", params={"limit": 1000}, timeout=30).json()["total"] == scores.height
        assert httpx.get(f"{url}/plan", timeout=30).json()["plan_date"] is not None  # the plan came along
    assert not list(replica.rglob("*.parquet"))  # read from the store, never copied to the replica's disk


def test_a_replica_ships_its_inference_log_to_the_shared_store(stack, scale_profile, monkeypatch):
    for name, value in stack.environment().items():
        monkeypatch.setenv(name, value)
    replica = paths.data_dir().parent / "shipping-replica"
    monkeypatch.setenv("PM_DATA_DIR", str(replica))
    url = f"s3://{local_stack.LAKE_BUCKET}/inference/"
    settings = Settings(follow_alias=True, inference_log_dir=replica / "inference", inference_log_url=url)
    with running(create_app(settings)) as served:
        for machine in ("M0001", "M0002"):
            assert httpx.post(f"{served}/predict", json=machine_payload(machine), timeout=30).status_code == 200
    # stopping the service wrote the log and copied it to the store: nothing is left only on the replica's disk
    s3 = boto3.client("s3", endpoint_url=f"http://{stack.s3_endpoint}", aws_access_key_id=local_stack.S3_KEY,
                      aws_secret_access_key=local_stack.S3_KEY, region_name="us-east-1")
    [stored] = s3.list_objects_v2(Bucket=local_stack.LAKE_BUCKET, Prefix="inference/")["Contents"]
    lines = s3.get_object(Bucket=local_stack.LAKE_BUCKET, Key=stored["Key"])["Body"].read().decode().splitlines()
    assert [json.loads(line)["machine_id"] for line in lines] == ["M0001", "M0002"]
    assert stored["Key"].endswith(f".{os.getpid()}.jsonl") and not list((replica / "inference").glob("*.jsonl"))

    # a store that refuses the upload keeps the file, says so, and the next pass ships it
    (replica / "inference" / f"2025-01-01.{os.getpid()}.jsonl").write_text(lines[0] + "\n")
    broken = LogShipper(replica / "inference", "s3://no-such-bucket/inference/", every_seconds=3600)
    assert broken.ship() == 0 and "no-such-bucket" in broken.problem()
    assert list((replica / "inference").glob("*.jsonl"))
    working = LogShipper(replica / "inference", url, every_seconds=3600)
    assert working.ship() == 1 and working.problem() is None
    assert not list((replica / "inference").glob("*.jsonl"))
