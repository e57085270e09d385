"""Files the model stages hand to each other under `$PM_DATA_DIR`: the training set and its feature spec,
and each candidate's record (registered version, metrics)."""

import json
import os
import pickle
from pathlib import Path

import polars as pl

from pm_assets import paths
from pm_assets.features import FeatureSpec
from pm_assets.labels import LabelConfig


def _features_dir() -> Path:
    return paths.data_dir() / "features"


def save_training_set(frame: pl.DataFrame, spec: FeatureSpec, label_config: LabelConfig) -> Path:
    folder = _features_dir()
    folder.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(folder / ".training_set.parquet")
    (folder / ".training_spec.pkl").write_bytes(pickle.dumps((spec, label_config)))
    os.replace(folder / ".training_set.parquet", folder / "training_set.parquet")
    os.replace(folder / ".training_spec.pkl", folder / "training_spec.pkl")
    return folder / "training_set.parquet"


def load_training_set() -> tuple[pl.DataFrame, FeatureSpec, LabelConfig]:
    folder = _features_dir()
    if not (folder / "training_set.parquet").exists():
        raise FileNotFoundError(f"no training set in {folder}: materialize the `training_set` asset first")
    spec, label_config = pickle.loads((folder / "training_spec.pkl").read_bytes())
    return pl.read_parquet(folder / "training_set.parquet"), spec, label_config


def _candidate_dir() -> Path:
    return paths.data_dir() / "models" / "candidates"


def save_candidate(library: str, record: dict) -> None:
    folder = _candidate_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{library}.json").write_text(json.dumps(record))


def load_candidates() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(_candidate_dir().glob("*.json"))]
