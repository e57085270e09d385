"""The MLflow model registry: logging model bundles, and the `champion` alias that serving follows.

The default store is `sqlite:///$PM_DATA_DIR/mlflow.db` with artifacts under `$PM_DATA_DIR/mlartifacts`
(MLflow refuses plain `file:` stores). Promotion also writes `$PM_DATA_DIR/models/champion.json`, a
pointer file that a service can poll cheaply.
"""

import datetime as dt
import functools
import importlib.metadata
import json
import os
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from pm_assets.core.models import ModelBundle
from pm_assets.storage import paths
from pm_assets.storage.atomic import write_atomic
from pm_assets.storage.relocation import relocate_once

MODEL_NAME = "pm_machine_health"
EXPERIMENT = "pm-platform"
CHAMPION = "champion"
CHALLENGER = "challenger"
#: What loading a logged bundle imports, besides its model library. Given, not inferred: MLflow infers it by loading
#: the model in a subprocess, ~5 s for each model logged.
MODEL_REQUIREMENTS = ("mlflow", "cloudpickle", "numpy", "pandas", "scikit-learn", "scipy", "pm-platform")


def tracking_uri() -> str:
    """`PM_MLFLOW_TRACKING_URI`, else the sqlite store in the data dir.

    Not MLflow's own MLFLOW_TRACKING_URI: `mlflow.set_tracking_uri` writes that variable, so it would
    pin the first store a process used.
    """
    if os.environ.get("PM_MLFLOW_TRACKING_URI"):
        return os.environ["PM_MLFLOW_TRACKING_URI"]
    # a copied or moved data directory: its store's paths are rewritten to it before anything reads them
    relocate_once(str(paths.mlflow_database_path()), str(paths.data_dir()), EXPERIMENT, str(paths.champion_pointer_path()))
    return paths.mlflow_tracking_uri()


def on_tracking_server() -> bool:
    """Whether the registry is an MLflow tracking server (the scale profile) rather than the local SQLite store."""
    return tracking_uri().startswith(("http://", "https://"))


def ensure_experiment() -> str:
    """Create the experiment with its artifacts under the data dir (not MLflow's default ./mlruns), or, on a
    tracking server, where the server keeps artifacts (`mlflow server --artifacts-destination`)."""
    paths.data_dir().mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri())
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return mlflow.create_experiment(EXPERIMENT, artifact_location=None if on_tracking_server() else paths.mlflow_artifacts_dir().as_uri())
    return experiment.experiment_id


class BundleModel(mlflow.pyfunc.PythonModel):
    """A model bundle as an MLflow pyfunc: features in, RUL and failure probability out."""

    def __init__(self, bundle: ModelBundle):
        self.bundle = bundle

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        rul, probability = self.bundle.predict(model_input[self.bundle.feature_names].to_numpy(dtype=float))
        return pd.DataFrame({"rul": rul, "failure_probability": probability})


def log_bundle(bundle: ModelBundle, example: np.ndarray, tags: dict[str, str]) -> str:
    """Log the bundle to the active run and register it; return the new version number."""
    example_frame = pd.DataFrame(example, columns=bundle.feature_names)
    wrapped = BundleModel(bundle)
    signature = mlflow.models.infer_signature(example_frame, wrapped.predict(None, example_frame))
    info = mlflow.pyfunc.log_model(
        name="model", python_model=wrapped, signature=signature, input_example=example_frame.head(3),
        registered_model_name=MODEL_NAME, pip_requirements=list(_requirements(bundle.library)),
    )
    version = str(info.registered_model_version)
    client = MlflowClient()
    for key, value in {**tags, "library": bundle.library, "threshold": f"{bundle.threshold:.6f}"}.items():
        client.set_model_version_tag(MODEL_NAME, version, key, value)
    return version


@functools.cache
def _requirements(library: str) -> tuple[str, ...]:
    """Pinned to the versions installed: those the model was trained and checked with (a tuple: the cache's
    answer is shared, and must not be changed by a caller)."""
    found = []
    for name in (*MODEL_REQUIREMENTS, library):
        try:
            found.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
            pass
    return tuple(found)


@dataclass
class RegisteredModel:
    version: str
    run_id: str
    bundle: ModelBundle
    registered_at: dt.datetime  # when the version was registered (its training run's end), UTC


def load_version(version: str) -> RegisteredModel:
    mlflow.set_tracking_uri(tracking_uri())
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}")
    info = MlflowClient().get_model_version(MODEL_NAME, version)
    return RegisteredModel(version=version, run_id=info.run_id, bundle=model.unwrap_python_model().bundle,
                           registered_at=dt.datetime.fromtimestamp(info.creation_timestamp / 1000, dt.UTC))


def version_tags(version: str) -> dict[str, str]:
    mlflow.set_tracking_uri(tracking_uri())
    return dict(MlflowClient().get_model_version(MODEL_NAME, version).tags)


def newest_version() -> str | None:
    """The version registered last: the champion, a challenger in shadow, or one that lost its trial."""
    mlflow.set_tracking_uri(tracking_uri())
    versions = MlflowClient().search_model_versions(f"name='{MODEL_NAME}'")
    return str(max(int(v.version) for v in versions)) if versions else None


def alias_version(alias: str = CHAMPION) -> str | None:
    """The version holding `alias`, or None when there is none yet."""
    mlflow.set_tracking_uri(tracking_uri())
    client = MlflowClient()
    try:
        return str(client.get_model_version_by_alias(MODEL_NAME, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


def remove_alias(alias: str) -> None:
    """Take `alias` off whichever version holds it (nothing happens when none does)."""
    if alias_version(alias) is not None:
        MlflowClient().delete_registered_model_alias(MODEL_NAME, alias)


def set_alias(version: str, alias: str) -> None:
    MlflowClient().set_registered_model_alias(MODEL_NAME, alias, version)
    if alias == CHAMPION:
        write_atomic(paths.champion_pointer_path(), json.dumps({"model": MODEL_NAME, "version": version, "tracking_uri": tracking_uri(),
                                                                "promoted_at": dt.datetime.now(dt.UTC).isoformat()}))


def end_runs_of(dagster_run_id: str, status: str = "KILLED") -> int:
    """End the MLflow runs a Dagster run left open (its process was killed); return how many. Nothing is created
    when the default store does not exist yet."""
    if not os.environ.get("PM_MLFLOW_TRACKING_URI") and not paths.mlflow_database_path().exists():
        return 0
    mlflow.set_tracking_uri(tracking_uri())
    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return 0
    open_runs = client.search_runs([experiment.experiment_id],
                                   filter_string=f"tags.dagster_run_id = '{dagster_run_id}' and attributes.status = 'RUNNING'")
    for run in open_runs:
        client.set_terminated(run.info.run_id, status=status)
    return len(open_runs)
