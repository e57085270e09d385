"""A copied or moved data directory works on its own: it never reads or writes the original's files."""

import json
import shutil
import sqlite3

from pm_assets.drivers.sample_model import FleetConfig, train_and_register
from pm_assets.storage import paths, registry

SMALL = FleetConfig(n_machines=6, n_days=30, readings_per_day=24, seed=4)


def _texts(database) -> str:
    """Every text value of the store, in one string."""
    with sqlite3.connect(database) as con:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type = 'table'")]
        return "\n".join(str(v) for t in tables for row in con.execute(f'select * from "{t}"') for v in row if isinstance(v, str))


def test_a_copied_then_moved_data_directory_serves_and_trains_from_itself(tmp_path, monkeypatch):
    original, copy = tmp_path / "original", tmp_path / "elsewhere" / "copy"
    monkeypatch.setenv("PM_DATA_DIR", str(original))
    version = train_and_register(iterations=10, fleet=SMALL)
    assert str(original) in _texts(original / "mlflow.db")

    shutil.copytree(original, copy)
    shutil.rmtree(original)  # a move: the original is gone, so anything still pointing at it fails
    monkeypatch.setenv("PM_DATA_DIR", str(copy))
    assert registry.alias_version(registry.CHAMPION) == version
    loaded = registry.load_version(version)  # the model's files, read from the copy
    assert loaded.bundle.feature_names
    assert str(original) not in _texts(copy / "mlflow.db")
    assert json.loads(paths.champion_pointer_path().read_text())["tracking_uri"] == f"sqlite:///{copy / 'mlflow.db'}"

    newer = train_and_register(iterations=10, fleet=SMALL)  # training in the copy writes into the copy
    assert int(newer) == int(version) + 1
    assert not original.exists()
    assert any(copy.joinpath("mlartifacts").rglob("MLmodel"))
