"""Bring-your-own telemetry: a folder of CSV or Parquet files plus a small column mapping (YAML).

Example ``mapping.yaml``::

    telemetry:
      files: "telemetry/*.csv"          # glob inside the folder
      machine_id: asset
      timestamp: time
      timestamp_format: "%Y-%m-%d %H:%M:%S"   # optional; ISO 8601 by default
      settings: [load, speed]           # up to 3 operating settings, optional
      sensors: [temp_c, vibration, pressure]  # become sensor_01, sensor_02, … in this order
    events:                             # optional
      files: "events.csv"
      machine_id: asset
      timestamp: time
      event_type: kind
      event_map: {fail: failure, pm: maintenance}   # optional: your labels -> failure/maintenance/repair
    machines:                           # optional; otherwise every machine gets model_type "unknown"
      files: "machines.csv"
      machine_id: asset
      model_type: type

Values are kept as text, so a cell that does not parse is quarantined at ingestion with its reason
instead of being silently dropped here. A row whose timestamp does not parse lands on the day of the
machine's previous reading, where ingestion quarantines it.
"""

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

from pm_assets.core.constants import SETTING_COLUMNS, sensor_name


@dataclass
class TabularData:
    telemetry: pl.DataFrame
    events: pl.DataFrame
    machines: pl.DataFrame
    source: str


def _read(folder: Path, spec: dict, section: str) -> pl.DataFrame:
    pattern = spec.get("files")
    if not pattern:
        raise ValueError(f"mapping section {section!r} needs 'files' (a glob inside {folder})")
    paths = sorted(folder.glob(pattern))
    if not paths:
        raise FileNotFoundError(f"mapping section {section!r}: no files match {pattern!r} in {folder}")
    frames = [
        pl.read_parquet(p).select(pl.all().cast(pl.String)) if p.suffix == ".parquet" else pl.read_csv(p, infer_schema=False)
        for p in paths
    ]
    frame = pl.concat(frames, how="diagonal")
    wanted = [spec[k] for k in ("machine_id", "timestamp", "event_type", "model_type") if k in spec]
    wanted += spec.get("settings", []) + spec.get("sensors", [])
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise ValueError(f"mapping section {section!r}: columns {missing} not found in {pattern!r}; found {frame.columns}")
    return frame


def _timestamps(spec: dict) -> tuple[pl.Expr, pl.Expr]:
    """The parsed timestamp, and the text to land (ISO when it parsed, the original text when not)."""
    raw = pl.col(spec["timestamp"])
    parsed = raw.str.to_datetime(spec.get("timestamp_format"), strict=False, time_unit="us")
    return parsed, pl.coalesce(parsed.dt.to_string("%Y-%m-%dT%H:%M:%S%.f"), raw)


def _landing_day(parsed: pl.Expr, machine: pl.Expr) -> pl.Expr:
    day = parsed.dt.date()
    return day.forward_fill().over(machine).fill_null(day.backward_fill().over(machine)).fill_null(day.min())


def load_tabular(folder: Path, mapping_path: Path, source: str = "tabular") -> TabularData:
    """Read `folder` as described by the YAML at `mapping_path`."""
    folder, mapping = Path(folder), yaml.safe_load(Path(mapping_path).read_text())
    spec = (mapping or {}).get("telemetry")
    if not spec or not spec.get("sensors"):
        raise ValueError(f"{mapping_path}: needs a 'telemetry' section with 'machine_id', 'timestamp' and 'sensors'")
    if len(spec.get("settings", [])) > len(SETTING_COLUMNS):
        raise ValueError(f"{mapping_path}: at most {len(SETTING_COLUMNS)} operating settings, got {spec['settings']}")
    frame = _read(folder, spec, "telemetry")
    machine = pl.col(spec["machine_id"])
    parsed, landed_ts = _timestamps(spec)
    settings = [pl.col(c).alias(SETTING_COLUMNS[i]) for i, c in enumerate(spec.get("settings", []))]
    settings += [pl.lit(None, dtype=pl.String).alias(c) for c in SETTING_COLUMNS[len(settings) :]]
    telemetry = frame.select(
        machine.alias("machine_id"),
        landed_ts.alias("ts"),
        parsed.rank("ordinal").over(machine).cast(pl.String).alias("cycle"),
        *settings,
        *(pl.col(c).alias(sensor_name(i + 1)) for i, c in enumerate(spec["sensors"])),
        _landing_day(parsed, machine).alias("_day"),
    )
    events = pl.DataFrame(schema={"machine_id": pl.String, "ts": pl.String, "event_type": pl.String, "failure_mode": pl.String, "_day": pl.Date})
    if espec := mapping.get("events"):
        raw_events = _read(folder, espec, "events")
        e_parsed, e_ts = _timestamps(espec)
        kind = pl.col(espec["event_type"])
        events = raw_events.select(
            pl.col(espec["machine_id"]).alias("machine_id"),
            e_ts.alias("ts"),
            (kind.replace(espec["event_map"]) if "event_map" in espec else kind).alias("event_type"),
            (pl.col(espec["failure_mode"]) if "failure_mode" in espec else pl.lit(None, dtype=pl.String)).alias("failure_mode"),
            _landing_day(e_parsed, pl.col(espec["machine_id"])).alias("_day"),
        )
    if mspec := mapping.get("machines"):
        machines = _read(folder, mspec, "machines").select(
            pl.col(mspec["machine_id"]).alias("machine_id"),
            pl.col(mspec["model_type"]).alias("model_type") if "model_type" in mspec else pl.lit("unknown").alias("model_type"),
        )
    else:
        machines = telemetry.select(pl.col("machine_id").unique(maintain_order=True), pl.lit("unknown").alias("model_type"))
    machines = machines.with_columns(pl.lit(source).alias("site"), pl.lit(dt.date.today().isoformat()).alias("install_date"))
    return TabularData(telemetry=telemetry, events=events, machines=machines, source=source)
