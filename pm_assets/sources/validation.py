"""Row validation of landing data: every row is either loaded or quarantined with a reason.

Landing files may carry text (from CSV) or typed values; each column is cast to its canonical type
and a row fails on its first problem, in this order: missing key (machine, time), unparseable value,
missing required value, impossible value, timestamp outside the partition day, unknown machine,
duplicate key. Missing sensor values are valid here: they are sensor faults, flagged later in dbt staging.
"""

import datetime as dt
from dataclasses import dataclass

import polars as pl

from pm_assets.core.constants import EVENT_TYPES, MAX_ABS_READING, SENSOR_PREFIX, SETTING_COLUMNS

QUARANTINE_SCHEMA = {"reason": pl.String, "record": pl.String}


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: dict[str, pl.DataType]
    key: tuple[str, ...]
    daily: bool  # rows must fall on the partition day
    required: tuple[str, ...]  # never null in raw.* (a row without one is quarantined)
    has_sensors: bool = False

    def schema(self, sensors: tuple[str, ...] = ()) -> dict[str, pl.DataType]:
        """The canonical schema: fixed columns plus these `sensor_*` columns."""
        return self.columns | {c: pl.Float64() for c in sensors}


def sensor_columns(columns: list[str]) -> tuple[str, ...]:
    return tuple(sorted(c for c in columns if c.startswith(SENSOR_PREFIX)))


TELEMETRY = TableSpec(
    "telemetry",
    {"machine_id": pl.String(), "ts": pl.Datetime("us"), "cycle": pl.Int64(), **{c: pl.Float64() for c in SETTING_COLUMNS}},
    key=(),  # duplicated timestamps are a sensor fault that staging resolves, not a load error
    daily=True,
    required=("machine_id", "ts", "cycle"),
    has_sensors=True,
)
EVENTS = TableSpec(
    "events",
    {"machine_id": pl.String(), "ts": pl.Datetime("us"), "event_type": pl.String(), "failure_mode": pl.String()},
    key=(),
    daily=True,
    required=("machine_id", "ts", "event_type"),
)
MACHINES = TableSpec(
    "machines",
    {"machine_id": pl.String(), "model_type": pl.String(), "site": pl.String(), "install_date": pl.Date()},
    key=("machine_id",),
    daily=False,
    required=("machine_id", "model_type"),
)


@dataclass
class Validated:
    valid: pl.DataFrame
    quarantined: pl.DataFrame  # columns: reason, record (the original row as JSON)

    @property
    def rows_read(self) -> int:
        return self.valid.height + self.quarantined.height


def expected_columns(spec: TableSpec, frame: pl.DataFrame) -> dict[str, pl.DataType]:
    """The canonical schema for `frame`: fixed columns plus its own `sensor_*` columns."""
    missing = [c for c in spec.columns if c not in frame.columns]
    sensors = sensor_columns(frame.columns)
    extra = [c for c in frame.columns if c not in spec.columns and c not in sensors]
    if missing or extra or (spec.has_sensors and not sensors):
        raise ValueError(
            f"landing {spec.name} columns do not match the canonical schema: missing {missing}, unexpected {extra}"
            + (", and no sensor_* columns" if spec.has_sensors and not sensors else "")
        )
    return spec.schema(sensors)


def _cast(column: str, dtype: pl.DataType, source: pl.DataType) -> pl.Expr:
    if source == pl.String and dtype == pl.Datetime("us"):
        return pl.col(column).str.to_datetime(strict=False, time_unit="us")
    if source == pl.String and dtype == pl.Date:
        return pl.col(column).str.to_date(strict=False)
    if isinstance(source, pl.Datetime) and source.time_zone is not None:
        return pl.col(column).dt.convert_time_zone("UTC").dt.replace_time_zone(None).cast(dtype)
    if source == pl.String and dtype.is_numeric():
        return pl.col(column).str.strip_chars().cast(dtype, strict=False)
    return pl.col(column).cast(dtype, strict=False)


def validate(
    frame: pl.DataFrame, spec: TableSpec, day: dt.date | None = None, known_machines: pl.Series | None = None
) -> Validated:
    """Split `frame` into canonical valid rows and quarantined rows with their reason."""
    schema = expected_columns(spec, frame)
    parsed = {c: _cast(c, t, frame.schema[c]) for c, t in schema.items()}
    # NaN is how numpy writes a missing reading: treat it as missing, not as an impossible number
    casted = {c: e.fill_nan(None) if schema[c] == pl.Float64 else e for c, e in parsed.items()}
    checks: list[pl.Expr] = [
        pl.when(pl.col("machine_id").is_null() | (pl.col("machine_id").cast(pl.String).str.strip_chars() == ""))
        .then(pl.lit("missing machine_id")),
    ]
    if "ts" in schema:
        checks.append(pl.when(pl.col("ts").is_null()).then(pl.lit("missing ts")))
    for column, value in parsed.items():
        checks.append(pl.when(pl.col(column).is_not_null() & value.is_null()).then(pl.lit(f"unparseable {column}")))
    # after the unparseable ones: a loader derives `cycle` from the timestamps, so a bad ts leaves it empty too
    checks += [pl.when(pl.col(c).is_null()).then(pl.lit(f"missing {c}")) for c in spec.required if c not in ("machine_id", "ts")]
    for column, dtype in schema.items():
        if dtype == pl.Float64:
            bad = ~casted[column].is_finite() | (casted[column].abs() > MAX_ABS_READING)
            checks.append(pl.when(bad).then(pl.lit(f"impossible {column} (infinite or beyond ±{MAX_ABS_READING:g})")))
    if "cycle" in schema:
        checks.append(pl.when(casted["cycle"] < 0).then(pl.lit("impossible cycle (negative)")))
    if "event_type" in schema:
        checks.append(pl.when(~casted["event_type"].is_in(EVENT_TYPES)).then(pl.lit(f"event_type not one of {list(EVENT_TYPES)}")))
    if spec.daily and day is not None:
        checks.append(pl.when(casted["ts"].dt.date() != day).then(pl.lit(f"ts outside partition {day.isoformat()}")))
    if known_machines is not None:
        checks.append(pl.when(~casted["machine_id"].is_in(known_machines.implode())).then(pl.lit("unknown machine_id")))
    if spec.key:
        checks.append(pl.when(pl.struct(spec.key).is_first_distinct().not_()).then(pl.lit(f"duplicate {', '.join(spec.key)}")))

    checked = frame.with_columns(pl.coalesce(checks).alias("_reason"))
    valid = checked.filter(pl.col("_reason").is_null()).select(value.alias(c) for c, value in casted.items())
    rejected = checked.filter(pl.col("_reason").is_not_null())
    quarantined = rejected.select(
        pl.col("_reason").alias("reason"),
        pl.struct(pl.exclude("_reason").cast(pl.String)).struct.json_encode().alias("record"),
    )
    return Validated(valid=valid, quarantined=quarantined)
