"""Features computed a day at a time from the stored state equal a full recompute, row for row.

The days run through `feature_store.featurise`, the code path of the `machine_features` asset, on
an in-memory DuckDB holding the two marts it reads. The fleet has repairs and maintenance, sensor
faults, missing settings, gaps between readings (hours, and a whole day of one machine), a reading
arriving late and a middle day run again.
"""

import datetime as dt

import duckdb
import numpy as np
import polars as pl
import pytest

from pm_assets.core.features import build_features, fit_feature_spec
from pm_assets.sources.simulator import FleetConfig, simulate_fleet
from pm_assets.storage import feature_store

DAYS = 24
T0 = dt.datetime(2025, 1, 1)


def _day(i: int) -> dt.date:
    return (T0 + dt.timedelta(days=i)).date()


@pytest.fixture(scope="module")
def fleet():
    fleet = simulate_fleet(FleetConfig(n_machines=10, n_days=DAYS, readings_per_day=24, seed=4))
    readings = fleet.telemetry.unique(["machine_id", "ts"], keep="first", maintain_order=True).drop("cycle")
    gap = ((pl.col("machine_id") == "M0002") & pl.col("ts").is_between(T0 + dt.timedelta(days=5, hours=20), T0 + dt.timedelta(days=7, hours=3)))
    faulty = (pl.col("machine_id") == "M0003") & pl.col("ts").dt.hour().is_in([23, 0, 1])  # nulled across midnights
    readings = readings.filter(~gap).with_columns(  # a gap across a whole day, missing settings and sensor values
        pl.when(pl.col("ts").dt.hour() == 5).then(None).otherwise(pl.col("op_setting_1")).alias("op_setting_1"),
        pl.when(faulty).then(None).otherwise(pl.col("sensor_03")).alias("sensor_03"))
    events = fleet.events.select("machine_id", "ts", "event_type")
    assert {"repair", "maintenance"} <= set(events["event_type"]), "the fleet must exercise new lives and services"
    assert readings.select(pl.col("^sensor_.*$").null_count()).sum_horizontal()[0] > 0, "and faulty (nulled) readings"
    return readings, events


def _warehouse(readings: pl.DataFrame, events: pl.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("_r", readings.to_arrow())
    con.register("_e", events.to_arrow())
    con.execute("create table machine_timeseries as select *, ts::date as reading_date, 0 as cycle, 0 as n_faulty_sensors, "
                "false as had_duplicate from _r")
    con.execute("create table machine_events as select * from _e")
    return con


def _replace_readings(con: duckdb.DuckDBPyConnection, readings: pl.DataFrame) -> None:
    con.register("_r", readings.to_arrow())
    con.execute("delete from machine_timeseries")
    con.execute("insert into machine_timeseries select *, ts::date, 0, 0, false from _r")


def _stored(con: duckdb.DuckDBPyConnection, spec) -> pl.DataFrame:
    return feature_store.read_rows(con, T0, T0 + dt.timedelta(days=DAYS), spec.feature_names)


def _assert_equal_to_full(con, readings, events, spec) -> None:
    full = build_features(readings, spec, events).sort("machine_id", "ts")
    stored = _stored(con, spec)
    assert stored.select("machine_id", "ts").equals(full.select("machine_id", "ts"))
    difference = np.abs(stored.select(spec.feature_names).to_numpy() - full.select(spec.feature_names).to_numpy())
    assert difference.max() <= 1e-9, spec.feature_names[int(difference.max(axis=0).argmax())]


def test_day_by_day_features_equal_a_full_recompute(fleet):
    readings, events = fleet
    spec = fit_feature_spec(readings)
    con = _warehouse(readings, events)
    carried = []
    for i in range(DAYS):
        figures, later = feature_store.featurise(con, [_day(i)], spec)
        carried.append(figures["carried_rows"])
        assert later == 0
    assert max(carried) <= len(readings["machine_id"].unique()) * (max(spec.config.windows) - 1)  # state stays small
    _assert_equal_to_full(con, readings, events, spec)

    # a middle day run again, unchanged: the same rows; and the state after it does not move later days
    before = _stored(con, spec)
    _, later = feature_store.featurise(con, [_day(9)], spec)
    assert later == DAYS - 10
    assert _stored(con, spec).equals(before)

    # a reading arrives late for day 9: re-running days 9.. (a backfill to the end) catches up exactly
    late = readings.filter((pl.col("machine_id") == "M0005") & (pl.col("ts").dt.date() == _day(9))).head(1).with_columns(
        pl.col("ts") + dt.timedelta(minutes=30), pl.col("^sensor_.*$") * 1.01)
    amended = pl.concat([readings, late]).sort("machine_id", "ts")
    _replace_readings(con, amended)
    for i in range(9, DAYS):
        feature_store.featurise(con, [_day(i)], spec)
    _assert_equal_to_full(con, amended, events, spec)
    assert not _stored(con, spec).filter(pl.col("ts") > late["ts"][0]).equals(before.filter(pl.col("ts") > late["ts"][0]))


def test_a_day_whose_previous_day_was_never_computed_is_refused(fleet):
    readings, events = fleet
    spec = fit_feature_spec(readings)
    con = _warehouse(readings, events)
    feature_store.featurise(con, [_day(0)], spec)
    with pytest.raises(ValueError, match=f"features of {_day(1)}.* were never computed"):
        feature_store.featurise(con, [_day(2)], spec)
    with pytest.raises(ValueError, match="feature spec"):
        feature_store.featurise(con, [_day(1)], fit_feature_spec(readings.head(3000)))


def test_a_refitted_spec_recomputes_every_stored_day(fleet):
    """`feature_store.recompute` (what a refit of `feature_spec` runs) leaves the rows a full recompute with the new spec gives."""
    readings, events = fleet
    old, new = fit_feature_spec(readings.head(3000)), fit_feature_spec(readings)
    con = _warehouse(readings, events)
    for i in range(DAYS):
        feature_store.featurise(con, [_day(i)], old)
    assert feature_store.recompute(con, new) == DAYS
    _assert_equal_to_full(con, readings, events, new)
    state, as_of, sid = feature_store.read_state(con, _day(DAYS))
    assert (as_of, sid) == (_day(DAYS - 1), feature_store.spec_id(new))


def test_a_range_of_days_in_one_pass_equals_day_by_day(fleet):
    """A backfill featurises chunks of days in one vectorised pass: its rows equal the day-by-day path's to 1e-9, and it
    stores the same state after every day, so any day of the range can later be re-run alone."""
    readings, events = fleet
    spec = fit_feature_spec(readings)
    daily, ranged = _warehouse(readings, events), _warehouse(readings, events)
    for i in range(DAYS):
        feature_store.featurise(daily, [_day(i)], spec)
    days = [_day(i) for i in range(DAYS)]
    chunk = readings.height // 3
    runs = feature_store.chunks(ranged, days, max_readings=chunk)
    assert len(runs) >= 3 and [d for run in runs for d in run] == days
    chunks_done = []
    figures, later = feature_store.featurise(ranged, days, spec, lambda done, rows: chunks_done.append(done), max_readings=chunk)
    # each chunk continued from the one before in memory, while the one before was written by the writer thread
    assert chunks_done == list(np.cumsum([len(run) for run in runs])) and later == 0
    assert figures["rows"] == readings.height and figures["carried_rows"] > 0
    _assert_equal_to_full(ranged, readings, events, spec)
    by_day = dict(zip(["daily", "ranged"], [_stored(con, spec) for con in (daily, ranged)]))
    assert by_day["daily"].select("machine_id", "ts").equals(by_day["ranged"].select("machine_id", "ts"))
    difference = np.abs(by_day["daily"].select(spec.feature_names).to_numpy() - by_day["ranged"].select(spec.feature_names).to_numpy())
    assert difference.max() <= 1e-9
    states = [con.sql(f"select * from {feature_store.STATE_TABLE} order by as_of, machine_id").pl() for con in (daily, ranged)]
    assert states[0].height >= DAYS * 9 and states[0].equals(states[1])
    # a middle day of the range, re-run alone, continues from the state the range stored
    feature_store.featurise(ranged, [_day(9)], spec)
    _assert_equal_to_full(ranged, readings, events, spec)
