"""Files the model stages hand to each other under `$PM_DATA_DIR`: the feature spec, the training set,
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


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_name(f".{path.name}").write_bytes(data)
    os.replace(path.with_name(f".{path.name}"), path)


def save_feature_spec(spec: FeatureSpec) -> Path:
    path = _features_dir() / "feature_spec.pkl"
    _atomic_write(path, pickle.dumps(spec))
    return path


def load_feature_spec() -> FeatureSpec:
    path = _features_dir() / "feature_spec.pkl"
    if not path.exists():
        raise FileNotFoundError(f"no feature spec at {path}: materialize the `feature_spec` asset first (`pm train`)")
    return pickle.loads(path.read_bytes())


def has_feature_spec() -> bool:
    return (_features_dir() / "feature_spec.pkl").exists()


def save_training_set(frame: pl.DataFrame, spec: FeatureSpec, label_config: LabelConfig, sampling: dict) -> Path:
    """The training set and what it was made with (spec, label config, how it was sampled)."""
    folder = _features_dir()
    folder.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(folder / ".training_set.parquet")
    os.replace(folder / ".training_set.parquet", folder / "training_set.parquet")
    _atomic_write(folder / "training_spec.pkl", pickle.dumps((spec, label_config, sampling)))
    return folder / "training_set.parquet"


def load_training_set() -> tuple[pl.DataFrame, FeatureSpec, LabelConfig, dict]:
    folder = _features_dir()
    if not (folder / "training_set.parquet").exists():
        raise FileNotFoundError(f"no training set in {folder}: materialize the `training_set` asset first")
    spec, label_config, sampling = pickle.loads((folder / "training_spec.pkl").read_bytes())
    return pl.read_parquet(folder / "training_set.parquet"), spec, label_config, sampling


def _candidate_dir() -> Path:
    return paths.data_dir() / "models" / "candidates"


def save_candidate(library: str, record: dict) -> None:
    folder = _candidate_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{library}.json").write_text(json.dumps(record))


def load_candidates() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(_candidate_dir().glob("*.json"))]
