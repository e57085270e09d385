"""A real small model, trained and registered in a real sqlite MLflow store, for the service tests."""

import datetime as dt

import numpy as np
import pytest

from pm_assets.drivers.sample_model import train_and_register


@pytest.fixture(scope="session")
def served_data_dir(tmp_path_factory):
    """PM_DATA_DIR holding a registry whose champion is a small LightGBM bundle."""
    with pytest.MonkeyPatch.context() as patch:
        data_dir = tmp_path_factory.mktemp("serving") / "data"
        patch.setenv("PM_DATA_DIR", str(data_dir))
        train_and_register()
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
