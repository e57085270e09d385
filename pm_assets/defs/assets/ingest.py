"""Ingestion: landing files into DuckDB `raw.*` tables, validated: bad files are quarantined whole (recorded in
`raw.quarantined_files`, moved to `landing/_quarantine/`), bad rows one by one (`raw.quarantine`)."""

import dataclasses
import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl

from pm_assets.core.shards import rows_of_shard
from pm_assets.defs.partitions import SHARDS, days_and_shard, raw_partitions, single_run_backfill
from pm_assets.defs.resources import LandingResource, WarehouseResource
from pm_assets.sources.landing_check import CheckedFiles, RejectedFile, check_files
from pm_assets.sources.validation import EVENTS, MACHINES, QUARANTINE_SCHEMA, TELEMETRY, TableSpec, Validated, sensor_columns, validate
from pm_assets.storage import landing
from pm_assets.storage.warehouse import (QUARANTINED_FILES_SCHEMA, RAW_SCHEMA, known_machine_ids, record_quarantined_files,
                                         replace_partitions, table_columns)


class IngestConfig(dg.Config):
    max_quarantine_share: float = 0.05  # the quarantine check fails above this share of rows read


def _checked_files(spec: TableSpec, paths: list[Path], warehouse: WarehouseResource) -> CheckedFiles:
    """The files of a run, read and checked whole against the warehouse table's columns (or, before it exists,
    the sensor set most of them share)."""
    with warehouse.connect() as con:
        existing = table_columns(con, f"{RAW_SCHEMA}.{spec.name}")
    return check_files(paths, spec, sensor_columns(existing) if existing else None)


def _partition_frame(spec: TableSpec, checked: CheckedFiles, paths: list[Path], shard: int | None) -> pl.DataFrame | None:
    """The partition's loadable files as one frame (the shard's machines only); empty when none loads; None when
    nothing says what its columns are."""
    frames = [checked.frames[p] for p in paths if p in checked.frames]
    if frames:
        frame = pl.concat(frames, how="diagonal_relaxed")
        return frame if shard is None else rows_of_shard(frame, shard, SHARDS)
    if spec.has_sensors and not checked.sensors:
        return None
    return pl.DataFrame(schema=spec.schema(checked.sensors or ()))


def _load(context: dg.AssetExecutionContext, spec: TableSpec, files: dict[dt.date | None, list[Path]], known: pl.Series | None,
          config: IngestConfig, landing_files: LandingResource, warehouse: WarehouseResource, shard: int | None = None):
    """Validate and write the partitions of `files` (of one machine shard, when sharded), quarantining bad files whole
    and bad rows one by one. The shards of a day read the same files: shard 0 alone records and moves a file
    quarantined whole, the others leave it out."""
    checked = _checked_files(spec, [p for paths in files.values() for p in paths], warehouse)
    if shard is not None and shard > 0:
        checked = dataclasses.replace(checked, rejected=[])
    partition_of = {p: day for day, paths in files.items() for p in paths}
    results: dict[dt.date | None, Validated] = {}
    for i, (day, paths) in enumerate(files.items()):
        frame = _partition_frame(spec, checked, paths, shard)
        if frame is not None:
            results[day] = validate(frame, spec, day, known)
        if len(files) > 1 and (i + 1) % 10 == 0:
            context.log.info(f"validated {i + 1}/{len(files)} partitions of {spec.name}")
    root = landing_files.root  # paths relative to it: a moved data directory still finds its files
    for bad in checked.rejected:
        context.log.warning(f"quarantined landing file {bad.describe(root)}")
    rejected = pl.DataFrame([{"landing_path": str(bad.path.relative_to(root)),
                              "quarantined_path": str(landing.quarantine_path(root, bad.path).relative_to(root)),
                              "_partition_date": partition_of[bad.path], "reason": bad.reason, "rows": bad.rows} for bad in checked.rejected],
                            schema=QUARANTINED_FILES_SCHEMA)
    if results:
        with warehouse.connect() as con:
            replace_partitions(con, f"{RAW_SCHEMA}.{spec.name}", {d: (v.valid, v.quarantined) for d, v in results.items()}, rejected,
                               shard)
    elif checked.rejected:  # nothing loadable, and no table yet to say what the files' columns should have been
        with warehouse.connect() as con:
            record_quarantined_files(con, f"{RAW_SCHEMA}.{spec.name}", rejected)
    else:
        context.log.info(f"no {spec.name} landing files for these partitions: nothing loaded")
    for bad in checked.rejected:  # after the commit: a crash before this re-checks (and re-records) the file next run
        landing.move_to_quarantine(root, bad.path)
    yield from _ingest_report(results, checked.rejected, root, config, "quarantine_share",
                              {"days_without_files": sum(1 for paths in files.values() if not paths)})


def _ingest_report(results: dict[dt.date | None, Validated], rejected_files: list[RejectedFile], root: Path, config: IngestConfig,
                   check_name: str, extra: dict | None = None):
    """Run metadata (read = loaded + quarantined, with reasons; files quarantined whole) and the quarantine check,
    which fails above `max_quarantine_share` of the rows or on any file quarantined whole."""
    read = sum(v.rows_read for v in results.values())
    loaded = sum(v.valid.height for v in results.values())
    quarantined = sum(v.quarantined.height for v in results.values())
    assert read == loaded + quarantined, "row accounting broke: read != loaded + quarantined"
    in_files = sum(bad.rows or 0 for bad in rejected_files)
    reasons = pl.concat([v.quarantined for v in results.values()] or [pl.DataFrame(schema=QUARANTINE_SCHEMA)]) \
        .group_by("reason").len().sort("len", descending=True)
    share = (quarantined + in_files) / (read + in_files) if read + in_files else 0.0
    files_md = "\n".join(f"- {bad.describe(root)}" for bad in rejected_files)
    metadata = {
        "rows_read": read,
        "rows_loaded": loaded,
        "rows_quarantined": quarantined,
        "files_quarantined": len(rejected_files),
        "rows_in_quarantined_files": in_files,
        "quarantine_share": share,
        **(extra or {}),
        "quarantine_reasons": dg.MetadataValue.json(dict(reasons.iter_rows())),  # reason -> rows, most first
        "quarantined_files": dg.MetadataValue.md(files_md or "none"),
    }
    yield dg.MaterializeResult(metadata=metadata)
    yield dg.AssetCheckResult(
        check_name=check_name,
        passed=share <= config.max_quarantine_share and not rejected_files,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quarantine_share": share, "max_quarantine_share": config.max_quarantine_share, "files_quarantined": len(rejected_files)},
    )


def _quarantine_check(asset: str) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec("quarantine_share", asset=asset,
                              description="Share of rows read that were quarantined; fails too when a file was quarantined whole")]


@dg.asset(group_name="ingest", kinds={"duckdb"}, check_specs=_quarantine_check("machines"))
def machines(context: dg.AssetExecutionContext, config: IngestConfig, landing_files: LandingResource, warehouse: WarehouseResource):
    """The machine register, `raw.machines`."""
    files = landing.machine_files(landing_files.root)
    if not files:
        raise dg.Failure(f"no machine register in {landing_files.root / 'machines'}: run `pm simulate` or a `pm load` command first")
    yield from _load(context, MACHINES, {None: files}, None, config, landing_files, warehouse)


def _ingest_daily(context: dg.AssetExecutionContext, spec: TableSpec, config, landing_files, warehouse):
    days, shard = days_and_shard(context.partition_keys)
    with warehouse.connect() as con:
        known = known_machine_ids(con)
    if known.is_empty():
        raise dg.Failure("the machine register raw.machines is empty: materialize the `machines` asset first")
    files = {day: landing.daily_files(landing_files.root, spec.name, day) for day in days}
    for day, paths in files.items():
        if not paths:
            context.log.info(f"no {spec.name} landing files in {landing.day_folder(landing_files.root, spec.name, day)}")
    yield from _load(context, spec, files, known, config, landing_files, warehouse, shard)


def _daily_ingest_asset(spec: TableSpec, description: str) -> dg.AssetsDefinition:
    name = f"raw_{spec.name}"

    @dg.asset(
        name=name,
        description=description,
        group_name="ingest",
        kinds={"duckdb"},
        partitions_def=raw_partitions,
        backfill_policy=single_run_backfill,
        deps=[machines],
        check_specs=_quarantine_check(name),
    )
    def daily_ingest(context: dg.AssetExecutionContext, config: IngestConfig, landing_files: LandingResource, warehouse: WarehouseResource):
        yield from _ingest_daily(context, spec, config, landing_files, warehouse)

    return daily_ingest


raw_telemetry = _daily_ingest_asset(
    TELEMETRY, "Sensor readings, `raw.telemetry`: re-materializing a day replaces exactly that day (a day without files loads nothing)."
)
raw_events = _daily_ingest_asset(EVENTS, "Failure, maintenance and repair events, `raw.events`; a day without events loads zero rows.")
