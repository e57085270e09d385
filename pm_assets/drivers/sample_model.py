"""A small model trained on a simulated fleet and registered as champion: for trying the service
without running the whole pipeline, and for the service's tests and benchmark."""

import mlflow

from pm_assets.core.features import fit_feature_spec
from pm_assets.core.labels import LabelConfig
from pm_assets.core.models import TrainConfig, build_training_set, fit_bundle
from pm_assets.sources.simulator import FleetConfig, simulate_fleet
from pm_assets.storage import registry

SAMPLE_FLEET = FleetConfig(n_machines=10, n_days=50, readings_per_day=24, seed=13)


def train_and_register(library: str = "lightgbm", iterations: int = 30, fleet: FleetConfig = SAMPLE_FLEET) -> str:
    """Train `library` on a simulated fleet, register it, give it the champion alias; return its version."""
    simulated = simulate_fleet(fleet)
    readings = simulated.telemetry.join(simulated.machines.select("machine_id", "model_type"), on="machine_id").sort("machine_id", "ts")
    spec = fit_feature_spec(readings)
    training = build_training_set(readings, simulated.events, spec, LabelConfig())
    bundle, _ = fit_bundle(library, training, spec, LabelConfig(), TrainConfig(iterations=iterations, n_folds=3))
    with mlflow.start_run(run_name=f"sample-{library}", experiment_id=registry.ensure_experiment()):
        version = registry.log_bundle(bundle, training.select(spec.feature_names).head(5).to_numpy(), {"source": "sample_model"})
    registry.set_alias(version, registry.CHAMPION)
    return version
