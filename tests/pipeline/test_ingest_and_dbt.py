"""Ingestion and dbt, materialized in-process against a real DuckDB file and a real dbt run."""

import datetime as dt

import dagster as dg
import duckdb
import polars as pl
import pytest

from pm_assets.drivers.runner import materialize
from pm_assets.sources.simulator import FleetConfig, simulate_fleet
from pm_assets.storage import landing, paths
from pm_assets.storage.atomic import write_atomic

DAY = dt.date(2025, 1, 3)
FLEET = FleetConfig(n_machines=6, n_days=8, readings_per_day=24, seed=5)


def _sql(query: str):
    with duckdb.connect(str(paths.warehouse_path()), read_only=True) as con:
        return con.sql(query).fetchall()


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in event.materialization.metadata.items()}


@pytest.fixture
def landed(data_dir):
    fleet = simulate_fleet(FLEET)
    landing.land_dataset(fleet, paths.landing_dir())
    return fleet


def test_rematerializing_a_partition_replaces_it_exactly(landed, instance):
    materialize("machines", instance_=instance)
    first = materialize("raw_telemetry", (DAY, DAY), instance_=instance)
    count = _sql(f"select count(*) from raw.telemetry where _partition_date = '{DAY}'")[0][0]
    second = materialize("raw_telemetry", (DAY, DAY), instance_=instance)
    assert _sql("select count(*) from raw.telemetry")[0][0] == count
    assert count == _metadata(first, "raw_telemetry")["rows_loaded"] == _metadata(second, "raw_telemetry")["rows_loaded"]
    expected = landed.telemetry.filter(pl.col("ts").dt.date() == DAY).height
    assert _metadata(second, "raw_telemetry")["rows_read"] == expected


def test_broken_rows_are_quarantined_and_counted(landed, instance):
    day_file = landing.daily_files(paths.landing_dir(), "telemetry", DAY)[0]
    good = pl.read_parquet(day_file).head(3).with_columns(pl.col("^sensor_.*$").cast(pl.String), pl.col("cycle").cast(pl.String))
    broken = pl.concat([
        good[0:1].with_columns(pl.lit("not-a-number").alias("sensor_03")),
        good[1:2].with_columns(pl.lit("M9999").alias("machine_id")),
        good[2:3].with_columns(pl.lit("-4").alias("cycle")),
    ])
    write_atomic(day_file.with_name("gateway.parquet"), broken.write_parquet)
    materialize("machines", instance_=instance)
    result = materialize("raw_telemetry", (DAY, DAY), instance_=instance)
    meta = _metadata(result, "raw_telemetry")
    assert meta["rows_quarantined"] == 3
    assert meta["rows_read"] == meta["rows_loaded"] + meta["rows_quarantined"]
    reasons = sorted(r for (r,) in _sql("select reason from raw.quarantine where source_table = 'raw.telemetry'"))
    assert reasons == ["impossible cycle (negative)", "unknown machine_id", "unparseable sensor_03"]
    # re-running the partition does not pile up quarantine rows either
    materialize("raw_telemetry", (DAY, DAY), instance_=instance)
    assert _sql("select count(*) from raw.quarantine")[0][0] == 3


def test_ingest_without_machine_register_fails_clearly(landed, instance):
    result = materialize("raw_telemetry", (DAY, DAY), instance_=instance, raise_on_error=False)
    assert not result.success
    assert "materialize the `machines` asset first" in str(result.get_step_failure_events()[0].event_specific_data.error)


def test_dbt_builds_tested_marts_and_partitioned_runs_rebuild_only_their_days(landed, instance):
    first, last = dt.date(2025, 1, 1), dt.date(2025, 1, 8)
    materialize("machines", instance_=instance)
    materialize("raw_telemetry raw_events", (first, last), instance_=instance)
    models = materialize("dbt_models", instance_=instance)
    daily = materialize("dbt_daily_models", (first, last), instance_=instance)
    checks = [e for r in (models, daily) for e in r.get_asset_check_evaluations()]
    assert len(checks) >= 15
    assert all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]

    total = _sql("select count(*) from machine_timeseries")[0][0]
    unique_readings = landed.telemetry.select("machine_id", "ts").unique().height
    assert total == unique_readings  # duplicated timestamps were resolved
    assert _sql("select count(*) from machine_daily_health")[0][0] == _sql(
        "select count(distinct (machine_id, reading_date)) from machine_timeseries")[0][0]
    faulty = _sql("select sum(n_faulty_sensors) from machine_timeseries")[0][0]
    assert faulty > 0  # the simulator's faults were flagged

    # drop a day from the raw table behind dbt's back, then rebuild another day: only that day changes
    with duckdb.connect(str(paths.warehouse_path())) as con:
        con.execute("delete from raw.telemetry where _partition_date in ('2025-01-02', '2025-01-05')")
    materialize("dbt_daily_models", (dt.date(2025, 1, 5), dt.date(2025, 1, 5)), instance_=instance)
    per_day = dict(_sql("select reading_date, count(*) from machine_timeseries group by all"))
    assert per_day.get(dt.date(2025, 1, 5), 0) == 0  # rebuilt from the now-empty raw day
    assert per_day[dt.date(2025, 1, 2)] > 0  # not in the run's window: untouched


def test_definitions_load_with_ingest_and_dbt_assets_and_checks():
    from pm_assets.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"machines", "raw_telemetry", "raw_events", "stg_telemetry", "machine_timeseries", "machine_daily_health"} <= keys
    graph = defs.resolve_asset_graph()
    check_keys = {k.name for k in graph.asset_check_keys}
    assert "quarantine_share" in check_keys
    assert any(name.startswith("unique_combination_machine_timeseries") for name in check_keys)


def test_daily_mart_tests_check_only_the_rebuilt_window_and_a_new_window_parses_nothing(landed, instance):
    materialize("machines", instance_=instance)
    materialize("raw_telemetry raw_events", (dt.date(2025, 1, 1), dt.date(2025, 1, 3)), instance_=instance)
    materialize("dbt_models", instance_=instance)
    materialize("dbt_daily_models", (dt.date(2025, 1, 1), dt.date(2025, 1, 2)), instance_=instance)
    with duckdb.connect(str(paths.warehouse_path())) as con:  # a duplicated reading on a day outside the next window
        con.execute("insert into machine_timeseries select * from machine_timeseries where reading_date = '2025-01-01' limit 1")

    result = materialize("dbt_daily_models", (dt.date(2025, 1, 3), dt.date(2025, 1, 3)), instance_=instance)
    unique = [e for e in result.get_asset_check_evaluations() if e.check_name.startswith("unique_combination_machine_timeseries")]
    assert unique and all(e.passed for e in unique)
    log = (paths.dbt_state_dir() / "daily" / "dbt.log").read_text()
    assert log.rstrip().endswith("}") and "no changes found, skipping parsing" in log.split("Running with dbt")[-1]
