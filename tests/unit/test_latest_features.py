import numpy as np
import polars as pl
import pytest

from pm_assets.core.features import FeatureConfig, build_features, fit_feature_spec
from pm_assets.core.latest_features import MachineHistory, latest_features
from pm_assets.sources.simulator import FleetConfig, simulate_fleet


@pytest.fixture(scope="module")
def fleet():
    return simulate_fleet(FleetConfig(n_machines=8, n_days=40, readings_per_day=24, seed=21))


@pytest.mark.parametrize("length", [3, 25, 400])
@pytest.mark.parametrize("config", [FeatureConfig(), FeatureConfig(windows=(4, 12), ewm_spans=(5, 20), life=False)])
def test_numpy_hot_path_equals_the_training_features(fleet, length, config):
    readings = fleet.telemetry.unique(["machine_id", "ts"], keep="first").sort("machine_id", "ts")
    spec = fit_feature_spec(readings, config)
    # a gateway that loses a setting now and then: the reading keeps the previous regime
    readings = readings.with_columns(pl.when(pl.col("ts").dt.hour() % 7 == 3).then(None).otherwise(pl.col(spec.settings[0]))
                                     .alias(spec.settings[0]))
    events = fleet.events
    histories, expected = [], []
    for k, machine in enumerate(readings["machine_id"].unique().sort()):
        mine = readings.filter(pl.col("machine_id") == machine).tail(length - k % 3)  # lives of several lengths
        expected.append(build_features(mine, spec, events).tail(1).select(spec.feature_names).to_numpy()[0])
        machine_events = events.filter(pl.col("machine_id") == machine)
        histories.append(MachineHistory(
            ts=mine["ts"].to_numpy(),
            settings=mine.select(spec.settings).to_numpy().astype(float),
            sensors=mine.select(pl.col(spec.sensors).fill_nan(None)).to_numpy().astype(float),
            repairs=machine_events.filter(pl.col("event_type") == "repair")["ts"].to_numpy(),
            services=machine_events.filter(pl.col("event_type").is_in(["repair", "maintenance"]))["ts"].to_numpy(),
        ))
    got = latest_features(spec, histories)
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-9, atol=1e-9)
