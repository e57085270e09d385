"""The platform's one code location."""

import dagster as dg

from pm_assets.assets import dbt, features, ingest, models, monitoring, performance, promotion, scoring, training
from pm_assets.resources import platform_resources
from pm_assets.schedules import daily_job, daily_schedule
from pm_assets.sensors import retrain_job, retrain_on_failed_check

ASSET_MODULES = [ingest, dbt, features, training, models, scoring, monitoring, performance, promotion]

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(ASSET_MODULES),
    asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
    jobs=[retrain_job, daily_job],
    schedules=[daily_schedule],
    sensors=[retrain_on_failed_check],
    resources=platform_resources(),
    executor=dg.in_process_executor,  # DuckDB takes one writing process: a run's steps go one after another
)
