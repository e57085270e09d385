"""The simulated fleet advancing day by day: the same fleet, landed in order, one day at a time."""

import polars as pl
import pytest

from pm_assets.sources import simulation
from pm_assets.sources.simulator import DriftScenario, FleetConfig, simulate_fleet
from pm_assets.storage import landing, paths

CONFIG = FleetConfig(n_machines=4, n_days=10, readings_per_day=6, seed=3, drift=DriftScenario("recalibration", 7, 0.5))


def _landed(day) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(p) for p in landing.daily_files(paths.landing_dir(), "telemetry", day)])


def test_advancing_lands_the_next_days_of_the_same_fleet(data_dir):
    days, _ = simulation.land_days(CONFIG, 0, 5)
    assert landing.landed_days(paths.landing_dir()) == days and len(days) == 6
    config, landed = simulation.load_state()
    assert (config, landed) == (CONFIG, 6)  # the drift scenario survives the round trip

    [day], rows = simulation.land_days(config, landed, landed)
    assert simulation.load_state()[1] == 7 and landing.landed_days(paths.landing_dir())[-1] == day
    whole = simulate_fleet(CONFIG).telemetry.filter(pl.col("ts").dt.date() == day)
    assert _landed(day).sort("machine_id", "ts").equals(whole.sort("machine_id", "ts")) and rows == whole.height


def test_advancing_past_the_horizon_is_refused(data_dir):
    simulation.land_days(CONFIG, 0, 9)
    with pytest.raises(ValueError, match="outside the simulated fleet's 10 days"):
        simulation.land_days(CONFIG, 10, 10)


def test_advancing_needs_a_fleet(data_dir):
    with pytest.raises(FileNotFoundError, match="start one with `pm simulate`"):
        simulation.load_state()
