"""Bad landing files are quarantined whole, recorded and moved aside, while the other files of the range load."""

import datetime as dt

import dagster as dg
import duckdb
import polars as pl
import pytest

from pm_assets.drivers.cli import main
from pm_assets.drivers.runner import materialize
from pm_assets.sources.simulator import FleetConfig, simulate_fleet
from pm_assets.storage import landing, paths

FLEET = FleetConfig(n_machines=6, n_days=4, readings_per_day=24, seed=3)
DAYS = [dt.date(2025, 1, 1) + dt.timedelta(days=i) for i in range(4)]


def _sql(query: str):
    with duckdb.connect(str(paths.warehouse_path()), read_only=True) as con:
        return con.sql(query).fetchall()


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}  # one per partition, the same


def _check(result: dg.ExecuteInProcessResult, asset: str) -> dg.AssetCheckEvaluation:
    return [e for e in result.get_asset_check_evaluations() if e.asset_key.to_user_string() == asset][-1]


@pytest.fixture
def landed(data_dir):
    fleet = simulate_fleet(FLEET)
    landing.land_dataset(fleet, paths.landing_dir())
    return fleet


def _day_file(table: str, day: dt.date):
    [path] = landing.daily_files(paths.landing_dir(), table, day)
    return path


def test_unreadable_and_schema_broken_files_are_quarantined_whole_and_the_rest_loads(landed, instance):
    truncated, narrow = _day_file("telemetry", DAYS[1]), _day_file("telemetry", DAYS[2])
    garbage = landing.day_folder(paths.landing_dir(), "events", DAYS[0]) / "broken.parquet"
    garbage.parent.mkdir(parents=True, exist_ok=True)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    narrow_rows = pl.read_parquet(narrow).height
    pl.read_parquet(narrow).drop("cycle", "op_setting_1", "sensor_10").write_parquet(narrow)
    garbage.write_bytes(b"not a parquet file at all")

    materialize("machines", instance_=instance)
    result = materialize("raw_telemetry raw_events", (DAYS[0], DAYS[-1]), instance_=instance)
    assert result.success

    loaded = dict(_sql("select _partition_date, count(*) from raw.telemetry group by all"))
    expected = landed.telemetry.group_by(pl.col("ts").dt.date()).len()
    assert loaded == {d: n for d, n in expected.iter_rows() if d in (DAYS[0], DAYS[3])}
    assert _sql("select count(*) from raw.telemetry where machine_id is null or ts is null or cycle is null")[0][0] == 0

    files = {row[0]: row[1:] for row in _sql(
        "select landing_path, quarantined_path, reason, rows, _partition_date from raw.quarantined_files order by all")}
    relative = {name: str(path.relative_to(paths.landing_dir())) for name, path in
                {"truncated": truncated, "narrow": narrow, "garbage": garbage}.items()}  # a moved data dir still finds them
    assert set(files) == set(relative.values())
    assert files[relative["truncated"]][1].startswith("unreadable file")
    assert files[relative["narrow"]][1:] == ("missing columns ['cycle', 'op_setting_1', 'sensor_10']", narrow_rows, DAYS[2])
    assert files[relative["garbage"]][1].startswith("unreadable file") and files[relative["garbage"]][2] is None
    for original, (moved, *_) in files.items():  # moved aside, out of what ingestion reads, kept whole
        assert not (paths.landing_dir() / original).exists()
        assert (paths.landing_dir() / moved).exists() and "_quarantine" in moved
    telemetry = _metadata(result, "raw_telemetry")
    assert telemetry["files_quarantined"] == 2 and telemetry["rows_in_quarantined_files"] == narrow_rows
    assert relative["narrow"] in telemetry["quarantined_files"]
    assert not _check(result, "raw_telemetry").passed and not _check(result, "raw_events").passed

    # a re-run reads none of them again and keeps their records; a repaired file put back loads
    again = materialize("raw_telemetry raw_events", (DAYS[0], DAYS[-1]), instance_=instance)
    assert _metadata(again, "raw_telemetry")["files_quarantined"] == 0 and _check(again, "raw_telemetry").passed
    assert _sql("select count(*) from raw.quarantined_files")[0][0] == 3
    day = landed.telemetry.filter(pl.col("ts").dt.date() == DAYS[2])
    day.write_parquet(narrow)
    materialize("raw_telemetry", (DAYS[2], DAYS[2]), instance_=instance)
    assert _sql(f"select count(*) from raw.telemetry where _partition_date = '{DAYS[2]}'")[0][0] == day.height


def test_a_file_whose_sensors_differ_from_the_table_is_quarantined(landed, instance):
    materialize("machines", instance_=instance)
    materialize("raw_telemetry", (DAYS[0], DAYS[0]), instance_=instance)
    path = _day_file("telemetry", DAYS[1])
    pl.read_parquet(path).with_columns(pl.lit(1.0).alias("sensor_99"), pl.lit("x").alias("operator")).write_parquet(path)
    result = materialize("raw_telemetry", (DAYS[1], DAYS[1]), instance_=instance)
    [(reason,)] = _sql("select reason from raw.quarantined_files")
    assert reason == "unexpected columns ['operator', 'sensor_99']"
    assert not _check(result, "raw_telemetry").passed


@pytest.mark.parametrize("argv, message", [
    (["ingest", "--start", "2025-01-03", "--end", "2025-01-01"], "the range is reversed: start 2025-01-03 is after end 2025-01-01"),
    (["ingest", "--start", "2026-01-01", "--end", "2026-01-05"], "no landing files between 2026-01-01 and 2026-01-05"),
])
def test_a_reversed_or_empty_range_is_one_line(landed, argv, message):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert message in str(stopped.value) and "\n" not in str(stopped.value)


def test_a_first_load_whose_only_file_is_bad_records_it_and_loads_nothing(landed, instance):
    path = _day_file("telemetry", DAYS[0])
    path.write_bytes(b"PAR1 and then nothing")
    materialize("machines", instance_=instance)
    result = materialize("raw_telemetry", (DAYS[0], DAYS[0]), instance_=instance)
    assert result.success and not _check(result, "raw_telemetry").passed
    assert _sql("select landing_path, rows from raw.quarantined_files") == [(str(path.relative_to(paths.landing_dir())), None)]
    assert _sql("select count(*) from information_schema.tables where table_name = 'telemetry'")[0][0] == 0
