"""DuckDB warehouse writes: each load replaces its partitions exactly, in one transaction.

DuckDB allows one writing process at a time and no readers beside it, so connections are opened
per operation and closed at once (dbt runs in its own process right after ingestion).
"""

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl

RAW_SCHEMA = "raw"
QUARANTINE_TABLE = f"{RAW_SCHEMA}.quarantine"


def memory_limit() -> str:
    """DuckDB's memory limit for the platform's connections, `PM_DUCKDB_MEMORY_LIMIT` (default 2GB).

    Without one DuckDB keeps up to 80 % of the machine's memory of the file's pages it scanned: a
    training set sampled from 17 M feature rows then holds 14 GB instead of 1.6 GB. Larger work spills
    to disk beside the warehouse."""
    return os.environ.get("PM_DUCKDB_MEMORY_LIMIT", "2GB")


@contextlib.contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    if not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only, config={"memory_limit": memory_limit()})
    try:
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection, **frames: pl.DataFrame) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction, with `frames` readable by their names: committed whole, or rolled back on any error."""
    for name, frame in frames.items():
        con.register(name, frame.to_arrow())
    con.execute("begin transaction")
    try:
        yield con
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        for name in frames:
            con.unregister(name)


def _ensure_tables(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    con.execute(f"create schema if not exists {RAW_SCHEMA}")
    con.execute(
        f"create table if not exists {QUARANTINE_TABLE} (source_table varchar, _partition_date date, "
        "reason varchar, record varchar, quarantined_at timestamp)"
    )
    con.register("_incoming", frame.to_arrow())
    con.execute(
        f"create table if not exists {table} as "
        "select *, null::date as _partition_date, null::timestamp as _loaded_at from _incoming limit 0"
    )
    existing = [r[0] for r in con.execute(f"select column_name from (describe {table})").fetchall()]
    wanted = [*frame.columns, "_partition_date", "_loaded_at"]
    if existing != wanted:
        missing, extra = sorted(set(existing) - set(wanted)), sorted(set(wanted) - set(existing))
        raise ValueError(
            f"landing columns do not match warehouse table {table}: the table has {missing} that the files lack, "
            f"the files have {extra} that the table lacks. Load a different dataset into its own PM_DATA_DIR."
        )


def replace_partitions(
    con: duckdb.DuckDBPyConnection,
    table: str,
    batches: dict[dt.date | None, tuple[pl.DataFrame, pl.DataFrame]],
) -> None:
    """Replace rows and quarantine of each partition (`None`: the whole table) with `(valid, quarantined)`.

    All partitions go in one transaction: a crash or an error leaves the previous state.
    """
    if not batches:
        return
    first_valid = next(iter(batches.values()))[0]
    with transaction(con):
        _ensure_tables(con, table, first_valid)
        for day, (valid, quarantined) in batches.items():
            where = "true" if day is None else "_partition_date = $day"
            params = {} if day is None else {"day": day}
            con.execute(f"delete from {table} where {where}", params)
            con.execute(f"delete from {QUARANTINE_TABLE} where source_table = $table and ({where})", {"table": table, **params})
            con.register("_incoming", valid.to_arrow())
            con.execute(f"insert into {table} by name select *, $day::date as _partition_date, now() as _loaded_at from _incoming", {"day": day})
            con.register("_rejected", quarantined.to_arrow())
            con.execute(
                f"insert into {QUARANTINE_TABLE} select $table, $day::date, reason, record, now() from _rejected",
                {"table": table, "day": day},
            )
    for name in ("_incoming", "_rejected"):
        con.unregister(name)


def known_machine_ids(con: duckdb.DuckDBPyConnection) -> pl.Series:
    """Machine ids in the register; an empty series when machines were never loaded."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = $s and table_name = 'machines'", {"s": RAW_SCHEMA}
    ).fetchall()[0][0]
    if not exists:
        return pl.Series("machine_id", [], dtype=pl.String)
    return con.sql(f"select machine_id from {RAW_SCHEMA}.machines").pl()["machine_id"]
