"""A replica without the data directory serves the worklist and the plan from the shared store (`PM_SCORES_URL`), on a
real S3 API (moto's server on loopback), and follows a new snapshot there."""

import time

import boto3
import polars as pl
import pytest
from litestar.testing import TestClient
from moto.server import ThreadedMotoServer

from pm_assets.drivers.cli import main
from pm_assets.storage import paths, shared_snapshots
from pm_serving.app import create_app
from pm_serving.settings import Settings

BUCKET = "fleet"


@pytest.fixture
def s3(monkeypatch):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {"PM_S3_ENDPOINT": f"{host}:{port}", "PM_S3_USE_SSL": "false", "AWS_ACCESS_KEY_ID": "test",
                        "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=f"http://{host}:{port}")
    client.create_bucket(Bucket=BUCKET)
    yield client
    server.stop()


def test_a_replica_reads_the_snapshots_from_the_shared_store(served_data_dir, s3, monkeypatch, tmp_path):
    url = f"s3://{BUCKET}/scores"  # the trailing slash is added
    monkeypatch.setenv("PM_SCORES_URL", url)
    scores_file = paths.fleet_scores_snapshot_path()
    replica = Settings(poll_seconds=0.1, scores_url=url, scores_path=tmp_path / "none" / scores_file.name,
                       plan_path=tmp_path / "none" / "maintenance_plan.parquet")
    with TestClient(app=create_app(replica)) as client:
        missing = client.get("/machines")
        assert missing.status_code == 503 and f"s3://{BUCKET}/scores/fleet_scores.parquet" in missing.json()["error"]

        # what `fleet_scores` does after writing its file
        assert shared_snapshots.publish(scores_file) == f"s3://{BUCKET}/scores/fleet_scores.parquet"
        scores = pl.read_parquet(scores_file)
        machine = scores["machine_id"][2]
        deadline = time.monotonic() + 10
        while client.get(f"/machines/{machine}").status_code != 200:
            assert time.monotonic() < deadline, "the replica did not read the shared snapshot"
            time.sleep(0.1)
        row = scores.filter(pl.col("machine_id") == machine).row(0, named=True)
        assert client.get(f"/machines/{machine}").json()["rul_hours"] == pytest.approx(row["rul_hours"])
        assert client.get("/machines", params={"limit": 100}).json()["total"] == scores.height

        # a new snapshot in the store replaces the served one
        changed = tmp_path / scores_file.name
        scores.with_columns(pl.lit(2.5).alias("rul_hours")).write_parquet(changed)
        shared_snapshots.publish(changed)
        deadline = time.monotonic() + 10
        while client.get(f"/machines/{machine}").json()["rul_hours"] != 2.5:
            assert time.monotonic() < deadline, "the replica did not follow the new snapshot"
            time.sleep(0.1)
    assert not (tmp_path / "none").exists()  # nothing was written to the replica's disk


def test_a_wrong_scores_url_is_refused_naming_the_setting():
    with pytest.raises(ValueError, match="PM_SCORES_URL is 'https://x/y': it must be s3://bucket/prefix/"):
        shared_snapshots.SharedSnapshots("https://x/y")


@pytest.mark.parametrize("setting", ["PM_SCORES_URL", "PM_INFERENCE_LOG_URL"])
def test_pm_serve_refuses_a_wrong_shared_store_url_before_any_worker_starts(setting, served_data_dir, monkeypatch):
    monkeypatch.setenv(setting, "bucket/prefix")
    with pytest.raises(SystemExit) as stopped:
        main(["serve", "--port", "1", "--workers", "1"])
    assert str(stopped.value.code) == f"pm: error: {setting} is 'bucket/prefix': it must be s3://bucket/prefix/"
