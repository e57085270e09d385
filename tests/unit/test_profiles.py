"""The profile the environment chooses: Dagster's `dagster.yaml`, validated by Dagster itself, and the lake's settings."""

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster._core.instance.config import dagster_instance_config

from pm_assets.core.shards import SHARD_TAG
from pm_assets.drivers.instance_config import write_instance_config
from pm_assets.storage import lake, warehouse


def test_the_default_profile_is_one_run_at_a_time_on_sqlite(tmp_path, monkeypatch):
    monkeypatch.delenv("PM_DAGSTER_POSTGRES_URL", raising=False)
    config, _ = dagster_instance_config(str(write_instance_config(tmp_path).parent))
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 1
    assert "storage" not in config and config["telemetry"]["enabled"] is False


def test_the_scale_profile_queues_runs_on_postgres_one_per_shard(tmp_path, monkeypatch):
    monkeypatch.setenv("PM_DAGSTER_POSTGRES_URL", "postgresql+psycopg2://pm@db.invalid:5432/dagster")
    monkeypatch.setenv("PM_MAX_CONCURRENT_RUNS", "8")
    config, _ = dagster_instance_config(str(write_instance_config(tmp_path).parent))  # Dagster's own schema check
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "PM_DAGSTER_POSTGRES_URL"}  # no password in the file
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    runs = config["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] == 8
    assert runs["tag_concurrency_limits"] == [{"key": SHARD_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]


def test_a_changed_profile_rewrites_the_generated_file_but_not_an_edited_one(tmp_path, monkeypatch):
    monkeypatch.delenv("PM_DAGSTER_POSTGRES_URL", raising=False)
    path = write_instance_config(tmp_path)
    monkeypatch.setenv("PM_DAGSTER_POSTGRES_URL", "postgresql+psycopg2://pm@db.invalid/dagster")
    assert "postgres" in write_instance_config(tmp_path).read_text()
    edited = "telemetry:\n  enabled: false\n"
    path.write_text(edited)
    monkeypatch.delenv("PM_DAGSTER_POSTGRES_URL")
    assert write_instance_config(tmp_path).read_text() == edited


def test_a_lake_without_a_data_path_says_what_is_missing(monkeypatch):
    monkeypatch.setenv("PM_LAKE_CATALOG", "postgres:dbname=lake host=db.invalid")
    monkeypatch.delenv("PM_LAKE_DATA_PATH", raising=False)
    with pytest.raises(lake.LakeSettingsError, match="PM_LAKE_DATA_PATH"):
        lake.connect(read_only=True, memory_limit="1GB")


def test_the_extensions_install_offline_beside_the_data(data_dir):
    lake.install_extensions()
    con = duckdb.connect(":memory:", config=lake.connection_config())
    try:
        con.execute("LOAD ducklake")
        con.execute("LOAD httpfs")
        installed = {name for name, in con.execute("select extension_name from duckdb_extensions() where installed").fetchall()}
    finally:
        con.close()
    assert set(lake.EXTENSIONS) <= installed
    assert next((data_dir / "duckdb_extensions").rglob("ducklake.duckdb_extension"))


def test_a_local_lake_keeps_the_day_tables_in_day_folders(data_dir, monkeypatch, tmp_path):
    """DuckLake with its catalog in a DuckDB file: the same code, no services; a day's rows in a folder of its own."""
    monkeypatch.setenv("PM_LAKE_CATALOG", str(tmp_path / "catalog.ducklake"))
    monkeypatch.setenv("PM_LAKE_DATA_PATH", str(tmp_path / "lake") + "/")
    hours = [dt.datetime(2025, 1, 1) + dt.timedelta(hours=h) for h in range(48)]  # more rows than DuckLake inlines in its catalog
    rows = pl.DataFrame({"machine_id": "M1", "ts": hours, "sensor_01": [float(h) for h in range(48)]})
    empty = pl.DataFrame({"reason": [], "record": []}, schema={"reason": pl.String, "record": pl.String})
    with warehouse.connect(Path("unused"), read_only=False) as con:
        days = {dt.date(2025, 1, 1): (rows[:24], empty), dt.date(2025, 1, 2): (rows[24:], empty)}
        warehouse.replace_partitions(con, "raw.telemetry", days)
        warehouse.replace_partitions(con, "raw.telemetry", {dt.date(2025, 1, 2): (rows[24:], empty)})  # a re-run of one day
        assert con.execute("select count(*) from raw.telemetry").fetchall() == [(48,)]
    folders = {p.parent.name for p in (tmp_path / "lake").rglob("*.parquet") if "telemetry" in str(p)}
    assert folders == {"_partition_date=2025-01-01", "_partition_date=2025-01-02"}
