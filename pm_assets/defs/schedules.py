"""The daily work: load the day's landing files, rebuild its marts, compute its features, score it (champion,
and challenger in shadow), decide on the challenger, check drift and accuracy, refresh the fleet's scores."""

import dagster as dg

from pm_assets.defs.assets.dbt import dbt_daily_models
from pm_assets.defs.partitions import daily_partitions

#: With the daily dbt models (`dbt_daily_models`) between the raw tables and the rest.
DAILY_ASSETS = ("raw_telemetry", "raw_events", "machine_features", "champion_predictions", "challenger_gate", "drift_report",
                "model_performance", "fleet_scores")
daily_job = dg.define_asset_job(
    "daily",
    selection=dg.AssetSelection.assets(*DAILY_ASSETS) | dg.AssetSelection.assets(*dbt_daily_models.keys),
    partitions_def=daily_partitions,
    description="Ingest a day, rebuild its daily marts and features, log the champion's predictions, check drift and matured accuracy",
)
daily_schedule = dg.build_schedule_from_partitioned_job(daily_job, hour_of_day=1)
