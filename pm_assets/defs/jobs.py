"""The pipeline's shape, stated once: which assets each job materializes. The schedules, the sensors and `pm`'s
in-process stages (`drivers.runner`) all build on these names.

- `daily`: a day's raw tables (unless sharded), its dbt marts, features, scores, checks and plan.
- `ingest_shard` (only when `PM_SHARDS` > 1): one machine shard of a day's raw tables.
- `retrain`: feature spec (refitted only on new operating regimes) → training set → candidates → promotion → new reference.
"""

import dagster as dg

from pm_assets.defs.assets.dbt import dbt_daily_models
from pm_assets.defs.partitions import SHARDS, daily_partitions, raw_partitions

RAW_ASSETS = ("raw_telemetry", "raw_events")
#: After the raw tables and the daily dbt models (`dbt_daily_models`).
DAY_ASSETS = ("machine_features", "champion_predictions", "challenger_gate", "drift_report", "model_performance", "fleet_scores", "maintenance_plan")
#: The feature spec first: kept as it is unless the fleet now runs in operating regimes it does not know.
RETRAIN_ASSETS = ("feature_spec", "training_set", "catboost_model", "lightgbm_model", "champion_model", "reference_profile")
#: What the day's scores need once a champion exists: the last steps of `daily`.
SCORE_ASSETS = ("fleet_scores", "maintenance_plan")

daily_job = dg.define_asset_job(
    "daily",
    selection=dg.AssetSelection.assets(*(RAW_ASSETS + DAY_ASSETS if SHARDS == 1 else DAY_ASSETS))
    | dg.AssetSelection.assets(*dbt_daily_models.keys),
    partitions_def=daily_partitions,
    description="Ingest a day, rebuild its daily marts and features, log the champion's predictions, check drift and matured accuracy"
    if SHARDS == 1 else "Rebuild a day's daily marts and features once its shards are loaded, log the champion's predictions, "
                        "check drift and matured accuracy",
)
retrain_job = dg.define_asset_job("retrain", selection=RETRAIN_ASSETS,
                                  description="Feature spec (refit on new operating regimes) → training set → candidates → promotion → new reference")
ingest_shard_job = dg.define_asset_job("ingest_shard", selection=dg.AssetSelection.assets(*RAW_ASSETS), partitions_def=raw_partitions,
                                       description="Load one machine shard of a day's landing files into the raw tables") if SHARDS > 1 else None
