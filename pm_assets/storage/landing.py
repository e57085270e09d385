"""Raw landing files: the hand-off between data sources (simulator, loaders) and ingestion.

Layout under the landing root, one Parquet file per source so several sources can share a day:

    telemetry/date=YYYY-MM-DD/<source>.parquet
    events/date=YYYY-MM-DD/<source>.parquet
    machines/<source>.parquet
    _quarantine/...                     files quarantined whole, moved here under their own relative path

Every file is written to a temporary name and renamed, so a reader never sees half a file.
"""

import datetime as dt
import os
from pathlib import Path

import polars as pl

from pm_assets.storage.atomic import write_atomic

DAILY_TABLES = ("telemetry", "events")


def day_folder(root: Path, table: str, day: dt.date) -> Path:
    return root / table / f"date={day.isoformat()}"


def write_daily(frame: pl.DataFrame, root: Path, table: str, source: str) -> list[dt.date]:
    """Split `frame` by the day of `ts` (or by a `_day` column a loader chose) into one file per day."""
    if table not in DAILY_TABLES:
        raise ValueError(f"unknown daily landing table {table!r}; expected one of {DAILY_TABLES}")
    if frame.height == 0:
        return []
    with_day = frame if "_day" in frame.columns else frame.with_columns(pl.col("ts").dt.date().alias("_day"))
    days = []
    for (day,), part in with_day.partition_by("_day", as_dict=True, maintain_order=True).items():
        write_atomic(day_folder(root, table, day) / f"{source}.parquet", part.drop("_day").write_parquet)
        days.append(day)
    return sorted(days)


def write_machines(frame: pl.DataFrame, root: Path, source: str) -> None:
    write_atomic(root / "machines" / f"{source}.parquet", frame.write_parquet)


def daily_files(root: Path, table: str, day: dt.date) -> list[Path]:
    return sorted(day_folder(root, table, day).glob("*.parquet"))


def machine_files(root: Path) -> list[Path]:
    return sorted((root / "machines").glob("*.parquet"))


def landed_days(root: Path, table: str = "telemetry") -> list[dt.date]:
    """Days that have at least one landing file, oldest first."""
    folders = (root / table).glob("date=*")
    return sorted(dt.date.fromisoformat(f.name.removeprefix("date=")) for f in folders if any(f.glob("*.parquet")))


def land_dataset(data, root: Path) -> list[dt.date]:
    """Write a loader's or the simulator's `machines`, `telemetry` and `events` frames; return the days."""
    write_machines(data.machines, root, data.source)
    days = write_daily(data.telemetry, root, "telemetry", data.source)
    days += write_daily(data.events, root, "events", data.source)
    return sorted(set(days))


QUARANTINE_FOLDER = "_quarantine"


def quarantine_path(root: Path, path: Path) -> Path:
    """Where a landing file quarantined whole is moved: out of every folder ingestion reads."""
    return root / QUARANTINE_FOLDER / Path(path).relative_to(root)


def move_to_quarantine(root: Path, path: Path) -> Path:
    target = quarantine_path(root, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    return target
