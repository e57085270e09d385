"""The warehouse of the scale profile: a DuckLake, its catalog in PostgreSQL and its data as Parquet in S3.

Chosen by setting `PM_LAKE_CATALOG`; unset, the warehouse is the single DuckDB file. Many processes may write
one lake at once (DuckLake retries conflicting appends), so the lake has no single-writer lock. dbt's profile
(`dbt_sensors/profiles.yml`, target `lake`) attaches the same lake from the same variables.

DuckDB would download its extensions at run time; they come from PyPI wheels instead (`duckdb-extension-*`),
installed into `extensions_dir()` rather than the home directory.
"""

import os
from pathlib import Path
from urllib.parse import urlparse

import duckdb
from duckdb_extensions import import_extension

from pm_assets.core.shards import SHARD_COLUMN
from pm_assets.storage import paths

#: The name the lake is attached as, and made the default database under: every table keeps its `schema.table` name.
ALIAS = "lake"
EXTENSIONS = ("ducklake", "postgres_scanner", "httpfs")


class LakeSettingsError(ValueError):
    """The scale profile is asked for (`PM_LAKE_CATALOG`) without the rest of what it needs."""


def configured() -> bool:
    """Whether the warehouse is a DuckLake (`PM_LAKE_CATALOG` set) rather than the DuckDB file."""
    return bool(os.environ.get("PM_LAKE_CATALOG"))


def catalog() -> str:
    """The DuckLake metadata location after `ducklake:`, e.g. `postgres:dbname=lake host=db user=pm`."""
    return os.environ["PM_LAKE_CATALOG"]


def data_path() -> str:
    """Where the lake's Parquet files go (`PM_LAKE_DATA_PATH`, e.g. `s3://bucket/lake/`)."""
    value = os.environ.get("PM_LAKE_DATA_PATH")
    if not value:
        raise LakeSettingsError("PM_LAKE_CATALOG is set but PM_LAKE_DATA_PATH is not: set it to the lake's data folder, "
                                "e.g. s3://my-bucket/lake/ (see deploy/README.md)")
    return value


def extensions_dir() -> Path:
    """DuckDB's extension directory, beside the data (`PM_DUCKDB_EXTENSIONS` to move it): never the home directory."""
    return Path(os.environ.get("PM_DUCKDB_EXTENSIONS") or paths.data_dir() / "duckdb_extensions")


def connection_config() -> dict[str, str | bool]:
    """DuckDB settings of every lake connection: extensions only from `extensions_dir()`, never downloaded."""
    return {"extension_directory": str(extensions_dir()), "autoinstall_known_extensions": False}


def install_extensions() -> None:
    """Install the extensions from their wheels into `extensions_dir()` (idempotent), for this process and dbt's."""
    installed = extensions_dir() / f"v{duckdb.__version__}"
    missing = [name for name in EXTENSIONS if not any(installed.glob(f"*/{name}.duckdb_extension"))]
    if not missing:
        return
    con = duckdb.connect(":memory:", config=connection_config())
    try:
        for name in missing:
            import_extension(name, con=con)
    finally:
        con.close()


def s3_secret_sql() -> str:
    """The S3 credentials of the lake's data path, from the standard AWS variables; `PM_S3_ENDPOINT` (host:port),
    `PM_S3_USE_SSL` and `PM_S3_URL_STYLE` point it at an S3-compatible store (MinIO, moto)."""
    options = {
        "TYPE": "s3",
        "KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", ""),
        "SECRET": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
        "REGION": os.environ.get("AWS_REGION", "us-east-1"),
        "ENDPOINT": os.environ.get("PM_S3_ENDPOINT", "s3.amazonaws.com"),
        "URL_STYLE": os.environ.get("PM_S3_URL_STYLE", "vhost"),
        "USE_SSL": os.environ.get("PM_S3_USE_SSL", "true"),
    }
    quoted = ", ".join(f"{key} {value if key in ('TYPE', 'USE_SSL') else sql_string(value)}" for key, value in options.items())
    return f"CREATE OR REPLACE SECRET pm_lake_s3 ({quoted})"


def s3_location(url: str, setting: str) -> tuple[str, str]:
    """(bucket, key prefix) of an `s3://bucket/prefix/` URL; a wrong one is refused naming `setting`."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"{setting} is {url!r}: it must be s3://bucket/prefix/")
    prefix = parsed.path.lstrip("/")
    return parsed.netloc, prefix if not prefix or prefix.endswith("/") else prefix + "/"


def s3_endpoint_url() -> str | None:
    """The S3-compatible store of `PM_S3_ENDPOINT` as a URL for boto3 (None: AWS itself)."""
    endpoint = os.environ.get("PM_S3_ENDPOINT")
    if not endpoint:
        return None
    return f"{'https' if os.environ.get('PM_S3_USE_SSL', 'true') == 'true' else 'http'}://{endpoint}"


def sql_string(value: str) -> str:
    """`value` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def connect(read_only: bool, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as its default database."""
    location = data_path()
    install_extensions()
    con = duckdb.connect(":memory:", config={**connection_config(), "memory_limit": memory_limit})
    try:
        if location.startswith("s3://"):
            con.execute(s3_secret_sql())
        options = f"DATA_PATH {sql_string(location)}" + (", READ_ONLY" if read_only else "")
        con.execute(f"ATTACH {sql_string('ducklake:' + catalog())} AS {ALIAS} ({options})")
        con.execute(f"USE {ALIAS}")
        con.execute("set enable_progress_bar = false")  # a long insert would draw it over `pm`'s own output
    except BaseException:
        con.close()
        raise
    return con


#: The lake's tables laid out by day, and the column that says the day (a date, or a timestamp: `ts`), so runs of
#: different days never write, nor delete from, the same file; a table with a shard column (`PM_SHARDS` > 1) is laid
#: out by shard too, for the shards of a day. Every other table is small and rewritten whole.
DAY_COLUMNS = {
    "raw.telemetry": "_partition_date",
    "raw.events": "_partition_date",
    "raw.quarantine": "_partition_date",
    "features.machine_features": "ts",
    "monitoring.predictions": "ts",
}


def partition_by_day(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Lay out `table` by day (and shard) if it is one of `DAY_COLUMNS`; call it right after creating it. On the DuckDB
    file: nothing."""
    if not configured() or table not in DAY_COLUMNS:
        return
    column = DAY_COLUMNS[table]
    keys = f"year({column}), month({column}), day({column})" if column == "ts" else column
    schema, name = table.split(".")
    if con.execute("select count(*) from information_schema.columns where table_catalog = current_database() and table_schema = $s "
                   "and table_name = $t and column_name = $c",
                   {"s": schema, "t": name, "c": SHARD_COLUMN}).fetchall()[0][0]:
        keys += f", {SHARD_COLUMN}"
    con.execute(f"ALTER TABLE {table} SET PARTITIONED BY ({keys})")
