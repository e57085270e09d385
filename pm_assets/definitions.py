"""The platform's one code location."""

import dagster as dg

from pm_assets.assets import dbt, ingest, models, scoring, training
from pm_assets.resources import platform_resources

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([ingest, dbt, training, models, scoring]),
    asset_checks=dg.load_asset_checks_from_modules([ingest, dbt]),
    resources=platform_resources(),
)
