"""Shared set-up of the pipeline tests: a simulated fleet landed, ingested and turned into stored features."""

import datetime as dt

from pm_assets.core.constants import PARTITION_START
from pm_assets.drivers.runner import ingest_stages, materialize, run_stages
from pm_assets.sources.simulator import FleetConfig, simulate_fleet
from pm_assets.storage import landing, paths


def model_config(iterations: int = 60, **overrides) -> dict:
    """Quick candidates: run config of both model assets."""
    config = {"iterations": iterations, "n_folds": 3, **overrides}
    return {"ops": {"catboost_model": {"config": config}, "lightgbm_model": {"config": config}}}


def warehouse_with_features(config: FleetConfig, history_days: int):
    """Land the whole fleet, ingest its first `history_days` days, fit the feature spec and store their features."""
    fleet = simulate_fleet(config)
    landing.land_dataset(fleet, paths.landing_dir())
    days = (PARTITION_START, PARTITION_START + dt.timedelta(days=history_days - 1))
    run_stages(ingest_stages(days), log=lambda line: None)
    materialize("feature_spec")
    materialize("machine_features", days)
    return fleet, days
