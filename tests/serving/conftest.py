"""A real small model, trained and registered in a real sqlite MLflow store, for the service tests."""

import datetime as dt

import mlflow
import numpy as np
import polars as pl
import pytest

from pm_assets import registry
from pm_assets.features import fit_feature_spec
from pm_assets.labels import LabelConfig
from pm_assets.models import TrainConfig, build_training_set, fit_bundle
from pm_assets.simulator import FleetConfig, simulate_fleet


def train_and_register(library: str = "lightgbm", iterations: int = 30) -> str:
    fleet = simulate_fleet(FleetConfig(n_machines=10, n_days=50, readings_per_day=24, seed=13))
    readings = fleet.telemetry.join(fleet.machines.select("machine_id", "model_type"), on="machine_id").sort("machine_id", "ts")
    spec = fit_feature_spec(readings)
    training = build_training_set(readings, fleet.events, spec, LabelConfig())
    bundle, _ = fit_bundle(library, training, spec, LabelConfig(), TrainConfig(iterations=iterations, n_folds=3))
    registry.ensure_experiment()
    with mlflow.start_run(run_name=f"test-{library}"):
        version = registry.log_bundle(bundle, training.select(spec.feature_names).head(5).to_numpy(), {"source": "tests"})
    registry.set_alias(version, registry.CHAMPION)
    return version


@pytest.fixture(scope="session")
def served_data_dir(tmp_path_factory):
    """PM_DATA_DIR holding a registry whose champion is a small LightGBM bundle."""
    with pytest.MonkeyPatch.context() as patch:
        data_dir = tmp_path_factory.mktemp("serving") / "data"
        patch.setenv("PM_DATA_DIR", str(data_dir))
        train_and_register()
        yield data_dir


def machine_payload(machine_id: str = "M0001", n: int = 40, sensors: int = 10, start: dt.datetime = dt.datetime(2025, 3, 1)) -> dict:
    rng = np.random.default_rng(abs(hash(machine_id)) % 2**32)
    return {
        "machine_id": machine_id,
        "model_type": "A",
        "readings": [
            {
                "ts": (start + dt.timedelta(hours=i)).isoformat(),
                "settings": {"op_setting_1": 20.0, "op_setting_2": 0.62, "op_setting_3": 100.0},
                "sensors": {f"sensor_{j:02d}": float(100 + j + rng.normal()) for j in range(1, sensors + 1)},
            }
            for i in range(n)
        ],
    }
