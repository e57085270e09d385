"""A real small model, trained and registered in a real sqlite MLflow store, and the fleet scores it publishes,
for the service tests."""

import datetime as dt

import numpy as np
import polars as pl
import pytest

from pm_assets.core.features import build_features
from pm_assets.core.scoring import score_rows
from pm_assets.drivers.sample_model import SAMPLE_FLEET, train_and_register
from pm_assets.sources.simulator import simulate_fleet
from pm_assets.storage import paths, registry
from pm_assets.storage.atomic import write_atomic


def publish_fleet_scores(version: str) -> pl.DataFrame:
    """Score the sample fleet's last readings with model `version` and publish them as `fleet_scores` does."""
    bundle = registry.load_version(version).bundle
    fleet = simulate_fleet(SAMPLE_FLEET)
    readings = (fleet.telemetry.unique(["machine_id", "ts"], keep="first")
                .join(fleet.machines.select("machine_id", "model_type"), on="machine_id").sort("machine_id", "ts"))
    latest = build_features(readings, bundle.feature_spec, fleet.events).group_by("machine_id").last()
    scores = score_rows(bundle, latest).with_columns(pl.lit(version).alias("model_version"),
                                                     pl.lit(dt.datetime(2025, 3, 1, 12)).alias("scored_at"))
    write_atomic(paths.fleet_scores_snapshot_path(), scores.write_parquet)
    return scores


@pytest.fixture(scope="session")
def served_data_dir(tmp_path_factory):
    """PM_DATA_DIR holding a registry whose champion is a small LightGBM bundle, and its fleet scores."""
    with pytest.MonkeyPatch.context() as patch:
        data_dir = tmp_path_factory.mktemp("serving") / "data"
        patch.setenv("PM_DATA_DIR", str(data_dir))
        publish_fleet_scores(train_and_register())
        yield data_dir


def machine_payload(machine_id: str = "M0001", n: int = 40, sensors: int = 10, start: dt.datetime = dt.datetime(2025, 3, 1)) -> dict:
    rng = np.random.default_rng(sum(map(ord, machine_id)))
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


def as_columns(payload: dict) -> dict:
    """The same machine in the columnar shape of `/predict/columns`."""
    readings = payload["readings"]
    return {"machine_id": payload["machine_id"], "model_type": payload.get("model_type"), "ts": [r["ts"] for r in readings],
            "sensors": {s: [r["sensors"].get(s) for r in readings] for s in readings[0]["sensors"]},
            "settings": {s: [r["settings"].get(s) for r in readings] for s in readings[0]["settings"]}}
