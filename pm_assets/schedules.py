"""The daily work: load the day's landing files, rebuild its marts, check it for drift."""

import dagster as dg

from pm_assets.assets.dbt import dbt_daily_models
from pm_assets.partitions import daily_partitions

daily_job = dg.define_asset_job(
    "daily",
    selection=dg.AssetSelection.assets("raw_telemetry", "raw_events", "drift_report") | dg.AssetSelection.assets(*dbt_daily_models.keys),
    partitions_def=daily_partitions,
    description="Ingest a day, rebuild its daily marts, and compare it with the champion's reference",
)
daily_schedule = dg.build_schedule_from_partitioned_job(daily_job, hour_of_day=1)
