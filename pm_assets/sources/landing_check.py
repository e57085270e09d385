"""Whole-file checks of landing files, before any of their rows is validated or written.

A file that cannot be read, or whose columns are not the table's, is quarantined whole: loading it
would put nulls into required columns (or fail the whole range), and it would fail the same way on
every run. The other files of the range load as usual.
"""

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from pm_assets.core.constants import SENSOR_PREFIX
from pm_assets.sources.validation import TableSpec, sensor_columns


@dataclass(frozen=True)
class RejectedFile:
    path: Path
    reason: str
    rows: int | None  # None when the file is too damaged to tell

    def describe(self, root: Path) -> str:
        return f"{self.path.relative_to(root)} ({'unknown' if self.rows is None else self.rows} rows): {self.reason}"


@dataclass
class CheckedFiles:
    frames: dict[Path, pl.DataFrame]  # the files that load, by path
    rejected: list[RejectedFile]
    sensors: tuple[str, ...] | None  # the sensor columns the kept files have (None: not a sensor table, or no file)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def _row_count(path: Path) -> int | None:
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # noqa: BLE001 - a damaged footer: the count is unknown, which is what we record
        return None


def _read(path: Path) -> pl.DataFrame | RejectedFile:
    try:
        return pl.read_parquet(path)
    except Exception as error:  # noqa: BLE001 - any unreadable file is quarantined, whatever the library raises
        return RejectedFile(path, f"unreadable file: {_first_line(error)}", _row_count(path))


def _column_problem(frame: pl.DataFrame, spec: TableSpec, sensors: tuple[str, ...] | None) -> str | None:
    missing = [c for c in spec.columns if c not in frame.columns]
    present = sensor_columns(frame.columns)
    unexpected = [c for c in frame.columns if c not in spec.columns and not c.startswith(SENSOR_PREFIX)]
    if spec.has_sensors and sensors is not None:
        missing += [s for s in sensors if s not in present]
        unexpected += [s for s in present if s not in sensors]
    elif not spec.has_sensors:
        unexpected += list(present)
    if spec.has_sensors and sensors is None and not present:
        missing.append(f"{SENSOR_PREFIX}*")
    if not (missing or unexpected):
        return None
    return ", ".join(part for part in (missing and f"missing columns {missing}", unexpected and f"unexpected columns {unexpected}") if part)


def check_files(paths: list[Path], spec: TableSpec, sensors: tuple[str, ...] | None) -> CheckedFiles:
    """Read `paths`, keeping the files whose columns are the table's: its fixed columns and, for sensor tables,
    exactly `sensors` (the warehouse table's; None: the sensor set most of these files share)."""
    read = [(path, _read(path)) for path in paths]
    frames = [(path, r) for path, r in read if isinstance(r, pl.DataFrame)]
    rejected = [r for _, r in read if isinstance(r, RejectedFile)]
    if spec.has_sensors and sensors is None and frames:
        counts = Counter(sensor_columns(frame.columns) for _, frame in frames)
        sensors = max(counts, key=lambda s: (counts[s], len(s)))  # ties: the fuller set
    kept = {}
    for path, frame in frames:
        problem = _column_problem(frame, spec, sensors)
        if problem:
            rejected.append(RejectedFile(path, problem, frame.height))
        else:
            kept[path] = frame
    return CheckedFiles(kept, sorted(rejected, key=lambda r: str(r.path)), sensors if spec.has_sensors else None)
