"""The feature table in DuckDB: one row of features per clean reading, written a day at a time, and
the per-machine state that lets the next day continue where this one stopped.

`features.machine_features` holds `machine_id, ts, life_start` and the feature columns;
`features.feature_state` holds, for each materialized day (`as_of`), every machine's state after it
(`pm_assets.core.feature_state`) and the feature spec it was computed with. A day's run reads the
state of the latest earlier day and only the feature rows that state points at, so its cost does not
depend on how long the fleet has been watched.

Re-running day D recomputes D from the stored days before it and replaces D's rows and state; the
days after D keep theirs (a backfill from D to the last day recomputes them in order).
"""

import datetime as dt
import hashlib
from concurrent.futures import Future, ThreadPoolExecutor

import duckdb
import numpy as np
import polars as pl

from pm_assets.core.feature_state import empty_state
from pm_assets.core.features import FeatureSpec, extend_features
from pm_assets.storage import warehouse
from pm_assets.storage.warehouse import transaction

SCHEMA = "features"
#: The columns of the dbt mart `machine_timeseries` that features are computed from.
READING_COLUMNS = "* exclude (reading_date, cycle, n_faulty_sensors, had_duplicate)"
FEATURES_TABLE = f"{SCHEMA}.machine_features"
STATE_TABLE = f"{SCHEMA}.feature_state"
#: Readings featurised in one pass: ~1.2 kB a row of features; a chunk is computed while the one before is written, so
#: a backfill holds about three (a year of 2,000 machines peaks under 4 GB with DuckDB's 2 GB, `benchmarks/daily.py`).
CHUNK_READINGS = 250_000
#: DuckDB's memory while a backfill writes: an insert streams, more only keeps written pages (a year of 2,000 machines:
#: the same speed at 1 GB as at 2 GB, and 1 GB less peak).
WRITE_MEMORY = "1GB"


def spec_id(spec: FeatureSpec) -> str:
    """A short fingerprint of what a feature spec computes: models and stored features must agree on it."""
    arrays = (spec.settings_mean, spec.settings_std, spec.regime_centers, spec.regime_mean, spec.regime_std)
    # the config's own fields, not the class's: a spec saved before a field was added keeps its id (and its stored features)
    digest = hashlib.sha1(repr((tuple(vars(spec.config).values()), spec.sensors, spec.settings)).encode())
    if spec.regime_map is not None:  # a spec saved before the map was kept has none, and keeps its id
        arrays += (spec.regime_map,)
    for array in arrays:
        digest.update(np.asarray(array, dtype=float).round(12).tobytes())
    return digest.hexdigest()[:12]


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    query = "select count(*) from information_schema.tables where table_schema = $s and table_name = $t"
    return con.execute(query, {"s": schema, "t": name}).fetchall()[0][0] > 0


def read_state(con: duckdb.DuckDBPyConnection, before: dt.date) -> tuple[pl.DataFrame, dt.date | None, str | None]:
    """The fleet's feature state after the latest materialized day before `before`: (state, that day, spec id)."""
    if not _exists(con, STATE_TABLE):
        return empty_state(), None, None
    rows = con.execute(f"select * from {STATE_TABLE} where as_of = (select max(as_of) from {STATE_TABLE} where as_of < $day)",
                   {"day": before}).pl()
    if rows.is_empty():
        return empty_state(), None, None
    return rows.select(empty_state().columns), rows["as_of"][0], rows["spec_id"][0]


def read_carry(con: duckdb.DuckDBPyConnection, state: pl.DataFrame, machines: list[str]) -> pl.DataFrame | None:
    """The stored rows each of `machines` carries into the next day (from its `carry_from` to its `last_ts`)."""
    pointers = state.filter(pl.col("machine_id").is_in(machines)).select("machine_id", "carry_from", "last_ts")
    if pointers.is_empty():
        return None
    con.register("_pointers", pointers.to_arrow())
    try:
        # the constant lower bound lets DuckDB skip the row groups of older days
        return con.execute(f"select f.* exclude (life_start) from {FEATURES_TABLE} f join _pointers p using (machine_id) "
                       "where f.ts >= $oldest and f.ts >= p.carry_from and f.ts <= p.last_ts",
                       {"oldest": pointers["carry_from"].min()}).pl()
    finally:
        con.unregister("_pointers")


def _write_days(con: duckdb.DuckDBPyConnection, days: list[dt.date], features: pl.DataFrame, states: pl.DataFrame, spec: str) -> None:
    """Replace the feature rows and states of the consecutive `days` in one transaction."""
    start, end = _bounds(days)
    con.execute(f"create schema if not exists {SCHEMA}")
    states = states.with_columns(pl.lit(spec).alias("spec_id"))

    def write() -> None:
        with transaction(con, _features=features, _state=states):
            warehouse.create_table(con, FEATURES_TABLE, "as select * from _features limit 0")
            con.execute(f"create table if not exists {STATE_TABLE} as select * from _state limit 0")
            con.execute(f"delete from {FEATURES_TABLE} where ts >= $start and ts < $end", {"start": start, "end": end})
            con.execute(f"delete from {STATE_TABLE} where as_of >= $first and as_of <= $last", {"first": days[0], "last": days[-1]})
            # in the frame's machine-then-time order: a machine's neighbouring values compress better (a 250 k-row chunk:
            # 12 % smaller) and the insert is 25 % faster than re-sorted by time (a year's backfill: 344 -> 289 s)
            con.execute(f"insert into {FEATURES_TABLE} by name select * from _features")
            con.execute(f"insert into {STATE_TABLE} by name select * from _state")

    warehouse.retry_conflicts(write)


def _bounds(days: list[dt.date]) -> tuple[dt.datetime, dt.datetime]:
    return dt.datetime.combine(days[0], dt.time()), dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time())


def _missing_days(con: duckdb.DuckDBPyConnection, as_of: dt.date | None, day: dt.date) -> list[str]:
    """Days with readings between the stored state and `day` whose features were never computed."""
    after = "reading_date > $as_of and " if as_of is not None else ""
    rows = con.execute(f"select distinct reading_date from machine_timeseries where {after}reading_date < $day order by 1 limit 3",
                   {"day": day, **({"as_of": as_of} if as_of is not None else {})}).fetchall()
    return [str(r[0]) for r in rows]


def chunks(con: duckdb.DuckDBPyConnection, days: list[dt.date], max_readings: int = CHUNK_READINGS) -> list[list[dt.date]]:
    """`days` cut into runs of consecutive days of at most ~`max_readings` readings each (at least a day)."""
    days = sorted(set(days))
    counts = dict(con.execute("select reading_date, count(*) from machine_timeseries where reading_date between $a and $b group by 1",
                              {"a": days[0], "b": days[-1]}).fetchall())
    runs: list[list[dt.date]] = []
    size = 0
    for day in days:
        n = counts.get(day, 0)
        if not runs or runs[-1][-1] != day - dt.timedelta(days=1) or size + n > max_readings:
            runs.append([])
            size = 0
        runs[-1].append(day)
        size += n
    return runs


def _check_continues(con: duckdb.DuckDBPyConnection, day: dt.date, sid: str) -> pl.DataFrame:
    """The stored state that `day` continues from; refused when it was computed with another spec or days are missing."""
    state, as_of, stored_sid = read_state(con, day)
    if stored_sid not in (None, sid):
        raise ValueError(f"the stored features were computed with feature spec {stored_sid}, the current spec is {sid}: "
                         "materialize feature_spec and backfill machine_features from the first day")
    missing = _missing_days(con, as_of, day)
    if missing:
        raise ValueError(f"the features of {', '.join(missing)} were never computed: materialize machine_features from "
                         f"{missing[0]} (each day continues from the day before)")
    return state


def _read_inputs(con: duckdb.DuckDBPyConnection, days: list[dt.date]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The days' clean readings, and every repair and maintenance of their machines up to their end (events are few)."""
    start, end = _bounds(days)
    readings = con.execute(f"select {READING_COLUMNS} from machine_timeseries where ts >= $start and ts < $end",
                           {"start": start, "end": end}).pl()
    con.register("_machines", readings.select(pl.col("machine_id").unique()).to_arrow())
    try:
        events = con.execute("select machine_id, ts, event_type from machine_events join _machines using (machine_id) where ts < $end",
                             {"end": end}).pl()
    finally:
        con.unregister("_machines")
    return readings, events


def _carry_after(carry: pl.DataFrame | None, features: pl.DataFrame, state: pl.DataFrame) -> pl.DataFrame:
    """What `read_carry` reads once `features` are stored, from memory: the rows of `carry` and `features` that each
    machine's `state` points at."""
    rows = features.drop("life_start") if carry is None else pl.concat([carry, features.drop("life_start")], how="vertical_relaxed")
    pointers = state.select("machine_id", "carry_from", "last_ts")
    return rows.join(pointers, on="machine_id").filter(pl.col("ts").is_between(pl.col("carry_from"), pl.col("last_ts"))).drop(
        "carry_from", "last_ts")


def featurise(con: duckdb.DuckDBPyConnection, days: list[dt.date], spec: FeatureSpec, progress=lambda done, rows: None,
              max_readings: int = CHUNK_READINGS) -> tuple[dict, int]:
    """Compute and store the features of `days` from the marts `machine_timeseries` and `machine_events`, each run of
    consecutive days continuing from the stored state of the day before it; store the state after each day (so any
    day can be re-run alone) and return the figures and how many later days are stored.

    A run is computed a vectorised chunk of ~`max_readings` readings at a time, each chunk continuing from the one
    before in memory. A chunk is written (one transaction) by a second thread while the next one is computed, so a
    backfill costs about its computation, not its computation plus its writes. `progress(days done, rows)` per chunk."""
    sid = spec_id(spec)
    totals = {"rows": 0, "machines": 0, "carried_rows": 0}
    reader = warehouse.cursor(con)  # reads the next chunk's inputs while `con` writes the last one
    pending: Future | None = None
    state, carry, done = empty_state(), None, 0
    try:
        with warehouse.memory_at_most(con, WRITE_MEMORY), ThreadPoolExecutor(1, thread_name_prefix="feature-writer") as writer:
            runs = chunks(con, days, max_readings)
            for i, run in enumerate(runs):
                readings, events = _read_inputs(reader, run)
                if i == 0 or run[0] != runs[i - 1][-1] + dt.timedelta(days=1):
                    if pending is not None:
                        pending.result()  # the stored state must hold the days before
                    state = _check_continues(reader, run[0], sid)
                    carry = read_carry(reader, state, readings["machine_id"].unique().to_list())
                # the carry of every machine, from which the chunk's machines take theirs
                carried = None if carry is None else carry.filter(pl.col("machine_id").is_in(readings["machine_id"].unique().implode()))
                totals["carried_rows"] += 0 if carried is None else carried.height
                features, states = extend_features(readings, spec, events, state, carried, run)
                if pending is not None:
                    pending.result()
                pending = writer.submit(_write_days, con, run, features, states, sid)
                state = states.filter(pl.col("as_of") == run[-1]).drop("as_of", "spec_id", strict=False)
                carry = _carry_after(carry, features, state)
                totals["rows"] += features.height
                totals["machines"] = max(totals["machines"], readings["machine_id"].n_unique())
                done += len(run)
                progress(done, totals["rows"])
            if pending is not None:
                pending.result()
    finally:
        reader.close()
    later = con.execute(f"select count(distinct as_of) from {STATE_TABLE} where as_of > $day", {"day": max(days)}).fetchall()[0][0]
    return totals, later


def recompute(con: duckdb.DuckDBPyConnection, spec: FeatureSpec, progress=lambda done, total: None) -> int:
    """Recompute every stored feature day with `spec`, in order, from the first; return how many days.

    The tables are dropped first: a run killed part-way leaves days of the new spec only, which the
    next day's run refuses (its spec id differs) until this is run again."""
    days = [r[0] for r in con.execute(f"select distinct as_of from {STATE_TABLE} order by 1").fetchall()] if _exists(con, STATE_TABLE) else []
    for table in (FEATURES_TABLE, STATE_TABLE):
        con.execute(f"drop table if exists {table}")
    if days:
        featurise(con, days, spec, lambda done, rows: progress(done, len(days)))
    return len(days)


def read_rows(con: duckdb.DuckDBPyConnection, start: dt.datetime, end: dt.datetime, columns: list[str] | None = None) -> pl.DataFrame:
    """Stored feature rows with `start <= ts < end` (all columns, or `machine_id, ts` and `columns`)."""
    if not _exists(con, FEATURES_TABLE):
        raise LookupError(f"no {FEATURES_TABLE} table: materialize machine_features first")
    selected = "*" if columns is None else ", ".join(["machine_id", "ts", *(f'"{c}"' for c in columns)])
    return con.execute(f"select {selected} from {FEATURES_TABLE} where ts >= $start and ts < $end order by machine_id, ts",
                   {"start": start, "end": end}).pl()


def read_rows_of(con: duckdb.DuckDBPyConnection, spec: FeatureSpec, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """Feature rows of `spec` with `start <= ts < end`: the stored ones when `spec` computed them, else
    rebuilt from the readings (whole lives of the machines seen in the window), as a model of an older
    spec needs to be judged on the same rows. The rebuild reads history: it is for reports, not daily runs."""
    _, _, stored = read_state(con, end.date() + dt.timedelta(days=1))
    if stored == spec_id(spec):
        return read_rows(con, start, end)
    params = {"start": start, "end": end}
    seen = "machine_id in (select distinct machine_id from machine_timeseries where ts >= $start and ts < $end)"
    readings = con.execute(f"select {READING_COLUMNS} from machine_timeseries where {seen} and ts < $end", params).pl()
    events = con.execute(f"select machine_id, ts, event_type from machine_events where {seen} and ts < $end", params).pl()
    features = extend_features(readings, spec, events)[0] if readings.height else pl.DataFrame()
    return features.filter(pl.col("ts") >= start).sort("machine_id", "ts") if features.height else features


def rows_at(con: duckdb.DuckDBPyConnection, keys: pl.DataFrame, columns: list[str] | None = None) -> pl.DataFrame:
    """The stored feature rows of `keys` (machine_id, ts), read where they lie: all columns, or `machine_id`, `ts` and `columns`."""
    con.register("_keys", keys.select("machine_id", "ts").to_arrow())
    try:
        selected = "f.*" if columns is None else ", ".join(["f.machine_id", "f.ts", *(f'f."{c}"' for c in columns)])
        return con.execute(f"select {selected} from {FEATURES_TABLE} f join _keys using (machine_id, ts) "
                           "where f.ts >= $since and f.ts <= $until", {"since": keys["ts"].min(), "until": keys["ts"].max()}).pl()
    finally:
        con.unregister("_keys")


def latest_rows(con: duckdb.DuckDBPyConnection, day: dt.date, lookback: dt.timedelta) -> pl.DataFrame:
    """Each machine's last feature row up to the end of `day`, for machines seen within `lookback` of it."""
    state, as_of, _ = read_state(con, day + dt.timedelta(days=1))
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    recent = state.filter(pl.col("last_ts") >= end - lookback).select("machine_id", pl.col("last_ts").alias("ts"))
    return rows_at(con, recent) if recent.height else pl.DataFrame()


def sample_lives(con: duckdb.DuckDBPyConnection, until: dt.datetime, rows_per_life: int, max_rows: int, seed: int,
                 since: dt.datetime = dt.datetime.min) -> tuple[pl.DataFrame, dict]:
    """About `rows_per_life` feature rows of each machine life in [since, until), at most ~`max_rows` in all.

    Rows are picked by a hash of (machine, time, seed), so the sample is repeatable and a life's rows
    are spread over its whole length; memory depends on the fleet's lives, not on how long it was watched.
    """
    lives = con.execute(f"select machine_id, life_start, count(*) as n from {FEATURES_TABLE} where ts >= $since and ts < $until group by all",
                    {"since": since, "until": until}).pl()
    if lives.is_empty():
        return pl.DataFrame(), {"lives": 0, "rows_in_window": 0, "rows_per_life": 0, "sampled_rows": 0}
    quota = max(1, min(rows_per_life, max_rows // lives.height))
    con.register("_lives", lives.with_columns((quota / pl.col("n")).clip(upper_bound=1.0).alias("share")).to_arrow())
    try:
        frame = con.execute(
            f"select f.* from {FEATURES_TABLE} f join _lives l using (machine_id, life_start) "
            "where f.ts >= $since and f.ts < $until and hash(f.machine_id, f.ts, $seed) % 1000000 < l.share * 1000000 "
            "order by f.machine_id, f.ts",
            {"since": since, "until": until, "seed": seed}).pl()
    finally:
        con.unregister("_lives")
    return frame, {"lives": lives.height, "rows_in_window": int(lives["n"].sum()), "rows_per_life": quota, "sampled_rows": frame.height}
