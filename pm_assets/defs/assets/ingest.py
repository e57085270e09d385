"""Ingestion: landing files into DuckDB `raw.*` tables, validated, with rejected rows quarantined."""

import datetime as dt

import dagster as dg
import polars as pl

from pm_assets.defs.partitions import daily_partitions, single_run_backfill
from pm_assets.defs.resources import LandingResource, WarehouseResource
from pm_assets.sources.validation import EVENTS, MACHINES, QUARANTINE_SCHEMA, TELEMETRY, TableSpec, Validated, validate
from pm_assets.storage import landing
from pm_assets.storage.warehouse import RAW_SCHEMA, known_machine_ids, replace_partitions


class IngestConfig(dg.Config):
    max_quarantine_share: float = 0.05  # the quarantine check fails above this share of rows read


def _read_files(paths: list) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(p) for p in paths], how="diagonal_relaxed")


def _ingest_report(results: dict[dt.date | None, Validated], config: IngestConfig, check_name: str, extra: dict | None = None):
    """Run metadata (read = loaded + quarantined, with reasons) and the quarantine-share check."""
    read = sum(v.rows_read for v in results.values())
    loaded = sum(v.valid.height for v in results.values())
    quarantined = sum(v.quarantined.height for v in results.values())
    assert read == loaded + quarantined, "row accounting broke: read != loaded + quarantined"
    reasons = pl.concat([v.quarantined for v in results.values()]).group_by("reason").len().sort("len", descending=True)
    share = quarantined / read if read else 0.0
    metadata = {
        "rows_read": read,
        "rows_loaded": loaded,
        "rows_quarantined": quarantined,
        "quarantine_share": share,
        **(extra or {}),
        "quarantine_reasons": dg.MetadataValue.md(
            "\n".join(f"- {r}: {n}" for r, n in reasons.iter_rows()) or "none"
        ),
    }
    yield dg.MaterializeResult(metadata=metadata)
    yield dg.AssetCheckResult(
        check_name=check_name,
        passed=share <= config.max_quarantine_share,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quarantine_share": share, "max_quarantine_share": config.max_quarantine_share},
    )


def _quarantine_check(asset: str) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec("quarantine_share", asset=asset, description="Share of rows read that were quarantined")]


@dg.asset(group_name="ingest", kinds={"duckdb"}, check_specs=_quarantine_check("machines"))
def machines(config: IngestConfig, landing_files: LandingResource, warehouse: WarehouseResource):
    """The machine register, `raw.machines`."""
    files = landing.machine_files(landing_files.root)
    if not files:
        raise dg.Failure(f"no machine register in {landing_files.root / 'machines'}: run `pm simulate` or a `pm load` command first")
    validated = validate(_read_files(files), MACHINES)
    with warehouse.connect() as con:
        replace_partitions(con, f"{RAW_SCHEMA}.machines", {None: (validated.valid, validated.quarantined)})
    yield from _ingest_report({None: validated}, config, "quarantine_share")


def _ingest_daily(context: dg.AssetExecutionContext, spec: TableSpec, config, landing_files, warehouse):
    days = [dt.date.fromisoformat(key) for key in context.partition_keys]
    with warehouse.connect() as con:
        known = known_machine_ids(con)
    if known.is_empty():
        raise dg.Failure("the machine register raw.machines is empty: materialize the `machines` asset first")
    results: dict[dt.date | None, Validated] = {}
    empty_days: list[dt.date] = []
    for i, day in enumerate(days):
        files = landing.daily_files(landing_files.root, spec.name, day)
        if files:
            results[day] = validate(_read_files(files), spec, day, known)
        else:
            context.log.info(f"no {spec.name} landing files in {landing.day_folder(landing_files.root, spec.name, day)}")
            empty_days.append(day)
            results[day] = Validated(pl.DataFrame(schema=spec.columns), pl.DataFrame(schema=QUARANTINE_SCHEMA))
        if len(days) > 1 and (i + 1) % 10 == 0:
            context.log.info(f"validated {i + 1}/{len(days)} days of {spec.name}")
    with warehouse.connect() as con:
        replace_partitions(con, f"{RAW_SCHEMA}.{spec.name}", {d: (v.valid, v.quarantined) for d, v in results.items()})
    yield from _ingest_report(results, config, "quarantine_share", {"days_without_files": len(empty_days)})


def _daily_ingest_asset(spec: TableSpec, description: str) -> dg.AssetsDefinition:
    name = f"raw_{spec.name}"

    @dg.asset(
        name=name,
        description=description,
        group_name="ingest",
        kinds={"duckdb"},
        partitions_def=daily_partitions,
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
