"""The pipeline's shape, stated once: which assets each job materializes, built from the asset objects themselves
(a renamed asset is an import error here, not a job that silently skips it). The schedules, the sensors and `pm`'s
in-process stages (`drivers.runner`, by the same assets' names) all build on these.

- `daily`: a day's raw tables (unless sharded), its dbt marts, features, scores, checks, plan and machine trends.
- `ingest_shard` (only when `PM_SHARDS` > 1): one machine shard of a day's raw tables.
- `retrain`: feature spec (refitted only on new operating regimes) → training set → candidates → promotion → new reference.
"""

import dagster as dg

from pm_assets.defs.assets.candidates import catboost_model, champion_model, lightgbm_model
from pm_assets.defs.assets.dbt import dbt_daily_models
from pm_assets.defs.assets.features import feature_spec, machine_features
from pm_assets.defs.assets.fleet_scores import fleet_scores
from pm_assets.defs.assets.ingest import raw_events, raw_telemetry
from pm_assets.defs.assets.monitoring import drift_report, reference_profile
from pm_assets.defs.assets.performance import champion_predictions, model_performance
from pm_assets.defs.assets.plan import maintenance_plan
from pm_assets.defs.assets.promotion import challenger_gate
from pm_assets.defs.assets.training import training_set
from pm_assets.defs.assets.trends import machine_trends
from pm_assets.defs.partitions import SHARDS, daily_partitions, raw_partitions


def _names(*assets: dg.AssetsDefinition) -> tuple[str, ...]:
    return tuple(asset.key.to_user_string() for asset in assets)


RAW = (raw_telemetry, raw_events)
#: After the raw tables and the daily dbt models (`dbt_daily_models`).
DAY = (machine_features, champion_predictions, challenger_gate, drift_report, model_performance, fleet_scores, maintenance_plan,
       machine_trends)
#: The feature spec first: kept as it is unless the fleet now runs in operating regimes it does not know.
RETRAIN = (feature_spec, training_set, catboost_model, lightgbm_model, champion_model, reference_profile)
#: What the day's scores need once a champion exists: the last steps of `daily`.
SCORE = (fleet_scores, maintenance_plan, machine_trends)
#: The same by name, for `pm`'s in-process stages (`drivers.runner`).
RAW_ASSETS, DAY_ASSETS, RETRAIN_ASSETS, SCORE_ASSETS = _names(*RAW), _names(*DAY), _names(*RETRAIN), _names(*SCORE)

daily_job = dg.define_asset_job(
    "daily",
    selection=dg.AssetSelection.assets(*(RAW + DAY if SHARDS == 1 else DAY), dbt_daily_models),
    partitions_def=daily_partitions,
    description="Ingest a day, rebuild its daily marts and features, log the champion's predictions, check drift and matured accuracy"
    if SHARDS == 1 else "Rebuild a day's daily marts and features once its shards are loaded, log the champion's predictions, "
                        "check drift and matured accuracy",
)
retrain_job = dg.define_asset_job("retrain", selection=dg.AssetSelection.assets(*RETRAIN),
                                  description="Feature spec (refit on new operating regimes) → training set → candidates → promotion → new reference")
ingest_shard_job = dg.define_asset_job("ingest_shard", selection=dg.AssetSelection.assets(*RAW), partitions_def=raw_partitions,
                                       description="Load one machine shard of a day's landing files into the raw tables") if SHARDS > 1 else None
