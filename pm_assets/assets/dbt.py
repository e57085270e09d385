"""The dbt project `dbt_sensors/` as Dagster assets; its tests become asset checks.

Daily marts (dbt tag `daily`) are partitioned like the raw telemetry and rebuild only the days of
the run's partition window; everything else (staging views, the event mart) is one unpartitioned set.
"""

import json

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from pm_assets.partitions import daily_partitions, single_run_backfill
from pm_assets.resources import dbt_cli, dbt_project



def _manifest_is_stale() -> bool:
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        return True
    sources = [p for p in dbt_project.project_dir.rglob("*") if p.suffix in {".sql", ".yml"} and "target" not in p.parts]
    return max(p.stat().st_mtime for p in sources) > manifest.stat().st_mtime


dbt_project.prepare_if_dev()
if _manifest_is_stale():
    # Outside `dagster dev` nothing else writes the manifest; `dbt parse` takes a few seconds.
    dbt_cli().cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()

DAILY = "tag:daily"


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, exclude=DAILY, name="dbt_models")
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(["build"], context=context).stream()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=DAILY,
    name="dbt_daily_models",
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
)
def dbt_daily_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    window = context.partition_time_window
    days = {"min_date": window.start.date().isoformat(), "max_date": window.end.date().isoformat()}
    context.log.info(f"rebuilding daily marts for [{days['min_date']}, {days['max_date']})")
    yield from dbt.cli(["build", "--vars", json.dumps(days)], context=context).stream()
