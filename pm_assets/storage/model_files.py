"""Files the model stages hand to each other under the data directory: the feature spec, the training set
(with what it was made with), and each candidate's record (registered version, metrics)."""

import json
import pickle
from pathlib import Path

import polars as pl

from pm_assets.core.features import FeatureSpec
from pm_assets.core.labels import LabelConfig
from pm_assets.storage import paths
from pm_assets.storage.atomic import write_atomic


def save_feature_spec(spec: FeatureSpec) -> Path:
    return write_atomic(paths.feature_spec_path(), pickle.dumps(spec))


def load_feature_spec() -> FeatureSpec:
    path = paths.feature_spec_path()
    if not path.exists():
        raise FileNotFoundError(f"no feature spec at {path}: materialize the `feature_spec` asset first (`pm train`)")
    return pickle.loads(path.read_bytes())


def has_feature_spec() -> bool:
    return paths.feature_spec_path().exists()


def save_training_set(frame: pl.DataFrame, spec: FeatureSpec, label_config: LabelConfig, sampling: dict) -> Path:
    """The training set and what it was made with (spec, label config, how it was sampled)."""
    write_atomic(paths.training_set_path(), frame.write_parquet)
    write_atomic(paths.training_spec_path(), pickle.dumps((spec, label_config, sampling)))
    return paths.training_set_path()


def load_training_set() -> tuple[pl.DataFrame, FeatureSpec, LabelConfig, dict]:
    if not paths.training_set_path().exists():
        raise FileNotFoundError(f"no training set at {paths.training_set_path()}: materialize the `training_set` asset first")
    spec, label_config, sampling = pickle.loads(paths.training_spec_path().read_bytes())
    return pl.read_parquet(paths.training_set_path()), spec, label_config, sampling


def save_candidate(library: str, record: dict) -> None:
    write_atomic(paths.candidates_dir() / f"{library}.json", json.dumps(record))


def load_candidates() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(paths.candidates_dir().glob("*.json"))]
