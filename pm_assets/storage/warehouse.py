"""DuckDB warehouse writes: each load replaces its partitions exactly, in one transaction.

DuckDB allows one writing process at a time and no readers beside it, so connections are opened
per operation and closed at once (dbt runs in its own process right after ingestion).
"""

import contextlib
import datetime as dt
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl

from pm_assets.core.shards import SHARD_COLUMN, shard_count
from pm_assets.storage import lake

RAW_SCHEMA = "raw"
T = TypeVar("T")
QUARANTINE_TABLE = f"{RAW_SCHEMA}.quarantine"
#: Landing files quarantined whole (unreadable, or not the table's columns), and where they were moved.
QUARANTINED_FILES_TABLE = f"{RAW_SCHEMA}.quarantined_files"
QUARANTINED_FILES_SCHEMA = {"landing_path": pl.String, "quarantined_path": pl.String, "_partition_date": pl.Date,
                            "reason": pl.String, "rows": pl.Int64}


def memory_limit() -> str:
    """DuckDB's memory limit for the platform's connections, `PM_DUCKDB_MEMORY_LIMIT` (default 2GB).

    Without one DuckDB keeps up to 80 % of the machine's memory of the file's pages it scanned: a
    training set sampled from 17 M feature rows then holds 14 GB instead of 1.6 GB. Larger work spills
    to disk beside the warehouse."""
    return os.environ.get("PM_DUCKDB_MEMORY_LIMIT", "2GB")


_SIZE_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


@contextlib.contextmanager
def memory_at_most(con: duckdb.DuckDBPyConnection, limit: str) -> Iterator[None]:
    """DuckDB's memory limit lowered to `limit` (never raised) for a while, then the platform's `memory_limit()` again."""
    def current() -> float:
        value, unit = con.execute("select current_setting('memory_limit')").fetchall()[0][0].split()
        return float(value) * _SIZE_UNITS[unit]

    before = current()
    con.execute(f"set memory_limit = '{limit}'")
    try:
        if current() > before:
            con.execute(f"set memory_limit = '{memory_limit()}'")
        yield
    finally:
        con.execute(f"set memory_limit = '{memory_limit()}'")


def lock_wait_seconds() -> float:
    """How long a connection waits for another process's lock on the warehouse, `PM_LOCK_WAIT_SECONDS` (default 60)."""
    return float(os.environ.get("PM_LOCK_WAIT_SECONDS", "60"))


def quiet(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """`con` without DuckDB's progress bars (a long insert would draw them over `pm`'s own output)."""
    con.execute("set enable_progress_bar = false")
    return con


class WarehouseBusy(RuntimeError):
    """Another process held the warehouse for longer than `lock_wait_seconds()`."""


class WarehouseDamaged(RuntimeError):
    """The warehouse file is cut short or not a DuckDB file (a disk that filled, a copy that stopped)."""


class WarehouseTooNew(RuntimeError):
    """The warehouse file was written by a newer DuckDB, which this one cannot read."""


def _holder(error: duckdb.Error) -> str:
    """The process DuckDB says holds the lock ("/usr/bin/python3 (PID 123)"), or a general description."""
    found = re.search(r"lock is held in (.+?\(PID \d+\))", str(error))
    return found.group(1) if found else "another process"


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting with back-off while another process holds its lock (DuckDB takes one writer, and
    no readers beside it), then failing with one line that names the file and the holder."""
    waited, delay, limit = 0.0, 0.05, lock_wait_seconds()
    while True:
        try:
            return quiet(duckdb.connect(str(path), read_only=read_only, config={"memory_limit": memory_limit()}))
        except duckdb.IOException as error:
            if "created with an newer version" in str(error) or "newer version of duckdb" in str(error).lower():
                raise WarehouseTooNew(
                    f"the warehouse {path} was written by a newer DuckDB than the installed {duckdb.__version__} (the platform "
                    "pins DuckDB 1.5.x, whose extensions install offline): move it aside and rebuild it from the landing files "
                    "with `pm ingest`, then `pm train` or `pm daily`; the model registry is not affected") from None
            if any(sign in str(error) for sign in ("Could not read enough bytes", "not a valid DuckDB database file")):
                raise WarehouseDamaged(
                    f"the warehouse {path} is damaged ({str(error).splitlines()[0]}): move it aside and rebuild it from the "
                    "landing files with `pm ingest`, then `pm train` or `pm daily`; the model registry is not affected") from None
            if "lock" not in str(error).lower():
                raise
            if waited >= limit:
                raise WarehouseBusy(f"the warehouse {path} is held by {_holder(error)} for more than {limit:g}s: close that "
                                    "process (a DuckDB client, `pm sql`, a running `pm` command or run) and run this again, "
                                    "or raise PM_LOCK_WAIT_SECONDS") from None
            time.sleep(min(delay, limit - waited))
            waited, delay = waited + delay, min(delay * 2, 2.0)


@contextlib.contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for one operation, closed at once; read-only ones need the warehouse to exist.

    With the scale profile (`lake.configured()`) the warehouse is the DuckLake instead, and `path` is not used."""
    if lake.configured():
        with contextlib.closing(lake.connect(read_only, memory_limit())) as con:
            yield con
        return
    if read_only and not Path(path).exists():
        raise FileNotFoundError(f"no warehouse at {path}: run `pm ingest` (or `pm demo`) first, or set PM_DATA_DIR")
    if not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = _open(Path(path), read_only)
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
    except BaseException:
        con.execute("rollback")
        raise
    else:
        con.execute("commit")  # a commit that fails has ended the transaction itself: nothing to roll back
    finally:
        for name in frames:
            con.unregister(name)


def cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A second connection to `con`'s database, for another thread (a connection runs one statement at a time), with
    the same default catalog (the lake's, with the scale profile)."""
    catalog = con.execute("select current_database()").fetchall()[0][0]
    other = quiet(con.cursor())
    other.execute(f'use "{catalog}"')
    return other


def retry_conflicts(write: Callable[[], T], attempts: int = 6) -> T:
    """Run `write` (one transaction) again when it conflicted with a concurrent run's transaction on the lake.

    DuckLake retries conflicting appends by itself, not two runs creating the same table, nor deleting from the
    same file; the losing transaction was rolled back whole, so running it again is safe."""
    for attempt in range(attempts):
        try:
            return write()
        except duckdb.TransactionException as error:
            if "conflict" not in str(error).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.05 * 2**attempt * (1 + random.random()))
    raise AssertionError("unreachable")


def create_table(con: duckdb.DuckDBPyConnection, table: str, definition: str) -> None:
    """`create table {table} {definition}` unless it exists, laid out by day on the lake when day-keyed (`lake.DAY_COLUMNS`)."""
    if table_columns(con, table) is None:
        con.execute(f"create table {table} {definition}")
        lake.partition_by_day(con, table)


def _ensure_quarantine_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The raw schema and its two quarantine tables: rejected rows (with their shard, when sharded), and files rejected whole."""
    con.execute(f"create schema if not exists {RAW_SCHEMA}")
    shard = f"{SHARD_COLUMN} integer, " if shard_count() > 1 else ""
    create_table(con, QUARANTINE_TABLE, f"(source_table varchar, _partition_date date, {shard}reason varchar, record varchar, "
                                        "quarantined_at timestamp)")
    con.execute(
        f"create table if not exists {QUARANTINED_FILES_TABLE} (source_table varchar, landing_path varchar, quarantined_path varchar, "
        "_partition_date date, reason varchar, rows bigint, quarantined_at timestamp)"
    )


def _ensure_tables(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, sharded: bool) -> None:
    _ensure_quarantine_tables(con)
    con.register("_incoming", frame.to_arrow())
    lineage = ["_partition_date", *([SHARD_COLUMN] if sharded else []), "_loaded_at"]
    shard = f"null::integer as {SHARD_COLUMN}, " if sharded else ""
    create_table(con, table, f"as select *, null::date as _partition_date, {shard}null::timestamp as _loaded_at from _incoming limit 0")
    existing = [r[0] for r in con.execute(f"select column_name from (describe {table})").fetchall()]
    wanted = [*frame.columns, *lineage]
    if (SHARD_COLUMN in existing) != sharded:
        was, now = ("without", f"PM_SHARDS={shard_count()}") if sharded else ("with", "PM_SHARDS=1")
        raise ValueError(f"warehouse table {table} was loaded {was} machine shards, and now {now}: a warehouse keeps the shard "
                         "setting it was first loaded with (load again into a new warehouse to change it)")
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
    quarantined_files: pl.DataFrame | None = None,
    shard: int | None = None,
) -> None:
    """Replace rows and quarantine of each partition (`None`: the whole table) with `(valid, quarantined)`, and
    record `quarantined_files` (`QUARANTINED_FILES_SCHEMA`; a file recorded before is recorded again). With a
    `shard`, a partition is that machine shard of the day, and the table keeps each row's shard.

    All partitions go in one transaction: a crash or an error leaves the previous state. Quarantined files stay
    recorded when their partition is re-run: they were moved out of the landing folder.
    """
    if batches:
        retry_conflicts(lambda: _replace_partitions(con, table, batches, quarantined_files, shard))


def _replace_partitions(con: duckdb.DuckDBPyConnection, table: str, batches: dict[dt.date | None, tuple[pl.DataFrame, pl.DataFrame]],
                        quarantined_files: pl.DataFrame | None, shard: int | None) -> None:
    first_valid = next(iter(batches.values()))[0]
    sharded = shard is not None
    with transaction(con):
        _ensure_tables(con, table, first_valid, sharded)
        if quarantined_files is not None:
            _record_files(con, table, quarantined_files)
        for day, (valid, quarantined) in batches.items():
            params = {"day": day, **({"shard": shard} if sharded else {})}
            where = "true" if day is None else "_partition_date = $day" + (f" and {SHARD_COLUMN} = $shard" if sharded else "")
            con.execute(f"delete from {table} where {where}", {} if day is None else params)
            con.execute(f"delete from {QUARANTINE_TABLE} where source_table = $table and ({where})",
                        {"table": table, **({} if day is None else params)})
            shard_value = f"$shard::integer as {SHARD_COLUMN}, " if sharded else ""
            con.register("_incoming", valid.to_arrow())
            con.execute(f"insert into {table} by name select *, $day::date as _partition_date, {shard_value}now() as _loaded_at "
                        "from _incoming", params)
            con.register("_rejected", quarantined.to_arrow())
            con.execute(f"insert into {QUARANTINE_TABLE} by name select $table as source_table, $day::date as _partition_date, "
                        f"{shard_value}reason, record, now() as quarantined_at from _rejected", {"table": table, **params})
    for name in ("_incoming", "_rejected"):
        con.unregister(name)


def _record_files(con: duckdb.DuckDBPyConnection, table: str, files: pl.DataFrame) -> None:
    _ensure_quarantine_tables(con)
    con.register("_files", files.to_arrow())
    con.execute(f"delete from {QUARANTINED_FILES_TABLE} where source_table = $table and landing_path in (select landing_path from _files)",
                {"table": table})
    con.execute(f"insert into {QUARANTINED_FILES_TABLE} select $table, landing_path, quarantined_path, _partition_date, reason, rows, "
                "now() from _files", {"table": table})
    con.unregister("_files")


def record_quarantined_files(con: duckdb.DuckDBPyConnection, table: str, files: pl.DataFrame) -> None:
    """Record landing files of `table` quarantined whole (`QUARANTINED_FILES_SCHEMA`) when no row is written with them."""
    def record() -> None:
        with transaction(con):
            _record_files(con, table, files)
    retry_conflicts(record)


def known_machine_ids(con: duckdb.DuckDBPyConnection) -> pl.Series:
    """Machine ids in the register; an empty series when machines were never loaded."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = $s and table_name = 'machines'", {"s": RAW_SCHEMA}
    ).fetchall()[0][0]
    if not exists:
        return pl.Series("machine_id", [], dtype=pl.String)
    return con.sql(f"select machine_id from {RAW_SCHEMA}.machines").pl()["machine_id"]


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str] | None:
    """The columns of `schema.table`, or None when it does not exist yet."""
    schema, name = table.split(".")
    rows = con.execute("select column_name from information_schema.columns where table_schema = $s and table_name = $t "
                       "order by ordinal_position", {"s": schema, "t": name}).fetchall()
    return [r[0] for r in rows] or None


def import_into_lake(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, int]:
    """Copy every table of a single-machine warehouse file into the (empty) lake `con` is on, day-keyed ones laid
    out by day, in one transaction; return rows per table. Views are not copied: `pm ingest` has dbt build them on the lake.
    The file's raw tables have no machine shards: a sharded lake (`PM_SHARDS` > 1) is loaded from the landing files instead."""
    if shard_count() > 1:
        raise ValueError(f"PM_SHARDS={shard_count()}: a single-machine warehouse has no machine shards to import; import it with "
                         "PM_SHARDS unset, or load the landing files into the sharded lake with `pm ingest`")
    con.execute(f"ATTACH {lake.sql_string(str(path))} AS single_machine (READ_ONLY)")
    try:
        tables = [f"{schema}.{name}" for schema, name in con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'single_machine' order by 1, 2").fetchall()]
        existing = {f"{schema}.{name}" for schema, name in con.execute(
            f"select schema_name, table_name from duckdb_tables() where database_name = '{lake.ALIAS}'").fetchall()}
        if clash := sorted(existing & set(tables)):
            raise ValueError(f"the lake already holds {', '.join(clash)}: import into an empty lake (a new catalog database)")
        copied = {}
        with transaction(con):
            for table in tables:
                con.execute(f"create schema if not exists {table.split('.')[0]}")
                # not `create_table`: its existence check would see the attached file's table of the same name
                con.execute(f"create table {table} as select * from single_machine.{table} limit 0")
                lake.partition_by_day(con, table)
                con.execute(f"insert into {table} select * from single_machine.{table}")
                copied[table] = con.execute(f"select count(*) from {table}").fetchall()[0][0]
        return copied
    finally:
        con.execute("DETACH single_machine")
