"""NASA C-MAPSS turbofan data (train_/test_/RUL_FDxxx.txt) into landing files.

Each engine unit becomes a machine ``FD001-train-007``; its cycle ``c`` becomes the timestamp
``start + (c - 1) * cycle_hours`` (one flight per hour by default, so FD001's longest engine, 362
cycles, spans 16 days). Train engines ran to failure: they get a failure event at their last cycle.
Test engines are censored (no event), unless the matching RUL file is given: then the failure is
placed ``RUL`` cycles after the last one, which makes it ground truth that arrives later.
"""

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from pm_assets.core.constants import PARTITION_START, SETTING_COLUMNS, sensor_name

N_COLUMNS = 26  # unit, cycle, 3 operating settings, 21 sensors
FILE_PATTERN = re.compile(r"^(train|test)_(FD00[1-4])\.txt$")


@dataclass
class CmapssData:
    telemetry: pl.DataFrame
    events: pl.DataFrame
    machines: pl.DataFrame
    source: str  # e.g. "cmapss_FD001_train": names the landing files


def read_cmapss_text(path: Path) -> pl.DataFrame:
    """One C-MAPSS text file as a frame of unit, cycle, op_setting_1..3, sensor_01..21."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"C-MAPSS file not found: {path}")
    try:
        values = np.loadtxt(path, ndmin=2)
    except ValueError as error:
        raise ValueError(f"{path}: not C-MAPSS text (whitespace-separated numbers): {error}") from None
    if values.shape[1] != N_COLUMNS:
        raise ValueError(f"{path}: expected {N_COLUMNS} columns per line (unit, cycle, 3 settings, 21 sensors), got {values.shape[1]}")
    names = ["unit", "cycle", *SETTING_COLUMNS, *(sensor_name(i) for i in range(1, 22))]
    frame = pl.DataFrame(values, schema=names, orient="row")
    return frame.with_columns(pl.col("unit", "cycle").cast(pl.Int64))


def read_rul(path: Path) -> np.ndarray:
    values = np.loadtxt(path, ndmin=1)
    if values.ndim != 1:
        raise ValueError(f"{path}: expected one remaining-useful-life number per line")
    return values.astype(np.int64)


def load_cmapss(path: Path, rul_path: Path | None = None, start: dt.datetime | None = None, cycle_hours: float = 1.0,
                stagger_hours: float = 0.0) -> CmapssData:
    """Convert `train_FDxxx.txt` or `test_FDxxx.txt` (with optional `RUL_FDxxx.txt`) to canonical frames.

    With `stagger_hours`, the k-th unit (0-based, in file order) starts `k * stagger_hours` after
    `start`, so the units come into service one after another, as in a fleet, rather than together.
    """
    path = Path(path)
    match = FILE_PATTERN.match(path.name)
    if not match:
        raise ValueError(f"{path.name}: expected a C-MAPSS file name like train_FD001.txt or test_FD003.txt")
    split, subset = match.groups()
    if cycle_hours <= 0 or stagger_hours < 0:
        raise ValueError(f"cycle_hours must be > 0 and stagger_hours >= 0, got {cycle_hours}, {stagger_hours}")
    origin = start or dt.datetime.combine(PARTITION_START, dt.time())
    raw = read_cmapss_text(path)
    machine_id = pl.format("{}-{}-{}", pl.lit(subset), pl.lit(split), pl.col("unit").cast(pl.String).str.zfill(3))
    step = pl.duration(microseconds=int(round(cycle_hours * 3_600e6)))
    first_unit = raw["unit"].min()
    unit_start = pl.lit(origin) + (pl.col("unit") - first_unit) * pl.duration(microseconds=int(round(stagger_hours * 3_600e6)))
    telemetry = raw.select(
        machine_id.alias("machine_id"),
        (unit_start + (pl.col("cycle") - 1) * step).alias("ts"),
        pl.exclude("unit"),
    )
    last = raw.group_by("unit").agg(pl.col("cycle").max()).sort("unit")
    failing = last
    if split == "test":
        failing = last.clear()
        if rul_path is not None:
            rul = read_rul(rul_path)
            if len(rul) != last.height:
                raise ValueError(f"{rul_path}: {len(rul)} RUL values for {last.height} test units")
            failing = last.with_columns(pl.col("cycle") + pl.Series(rul))
    events = failing.select(
        machine_id.alias("machine_id"),
        (unit_start + (pl.col("cycle") - 1) * step).alias("ts"),
        pl.lit("failure").alias("event_type"),
        pl.lit(None, dtype=pl.String).alias("failure_mode"),
    )
    machines = last.select(
        machine_id.alias("machine_id"),
        pl.lit(subset).alias("model_type"),
        pl.lit(split).alias("site"),
        unit_start.dt.date().alias("install_date"),
    )
    return CmapssData(telemetry=telemetry, events=events, machines=machines, source=f"cmapss_{subset}_{split}")
