"""Every location under the data directory, and nowhere else: one root, `PM_DATA_DIR`, defaulting to
`data/` in the repo.

The dbt profile reads the same variable (with the same default, relative to `dbt_sensors/`), so
Python and dbt always open the same warehouse file. Every function reads the variable when called,
so a process (or a test) that changes it moves everything together.
"""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_sensors"


def data_dir() -> Path:
    """The root of everything generated: warehouse, landing files, MLflow store, reports."""
    return Path(os.environ.get("PM_DATA_DIR", REPO_ROOT / "data")).resolve()


# ---------- landing files and the warehouse
def landing_dir() -> Path:
    return data_dir() / "landing"


def simulation_state_path() -> Path:
    """The simulated fleet's config and how many of its days are landed."""
    return landing_dir() / "simulation.json"


def warehouse_path() -> Path:
    return data_dir() / "warehouse.duckdb"


def dbt_state_dir() -> Path:
    """dbt's run artifacts and partial-parse state for this warehouse (its profile points here)."""
    return data_dir() / "dbt"


# ---------- model stages
def feature_spec_path() -> Path:
    return data_dir() / "features" / "feature_spec.pkl"


def training_set_path() -> Path:
    return data_dir() / "features" / "training_set.parquet"


def training_spec_path() -> Path:
    """What the training set was made with: feature spec, label config, sampling."""
    return data_dir() / "features" / "training_spec.pkl"


def candidates_dir() -> Path:
    return data_dir() / "models" / "candidates"


def champion_pointer_path() -> Path:
    """A small file naming the champion version, which a scoring service polls cheaply."""
    return data_dir() / "models" / "champion.json"


def mlflow_database_path() -> Path:
    return data_dir() / "mlflow.db"


def mlflow_tracking_uri() -> str:
    """The default MLflow store (MLflow refuses plain `file:` stores)."""
    return f"sqlite:///{mlflow_database_path()}"


def mlflow_artifacts_dir() -> Path:
    return data_dir() / "mlartifacts"


def fleet_scores_snapshot_path() -> Path:
    """The champion's latest score of every machine, published whole for the scoring service to read."""
    return data_dir() / "scores" / "fleet_scores.parquet"


def maintenance_plan_snapshot_path() -> Path:
    """The latest maintenance plan, published whole for the scoring service to read."""
    return data_dir() / "scores" / "maintenance_plan.parquet"


def monitoring_snapshot_path(name: str) -> Path:
    """The latest figures of a monitoring asset (`drift`, `performance`), published beside the scores for `/metrics`."""
    return data_dir() / "scores" / f"{name}.json"


def machine_trends_snapshot_path() -> Path:
    """Each machine's recent sensor trends and predicted RUL, published whole for the planner's page."""
    return data_dir() / "scores" / "machine_trends.parquet"


# ---------- monitoring
def reference_path() -> Path:
    """The champion's drift reference profile."""
    return data_dir() / "monitoring" / "reference.pkl"


def reports_dir() -> Path:
    """Evidently HTML drift reports, one per day."""
    return data_dir() / "reports"


def inference_log_dir() -> Path:
    """The scoring service's log of every prediction, one JSON-lines file per day."""
    return data_dir() / "inference"


def retrain_sensor_cursor_path() -> Path:
    """What the retraining sensor has settled, for evaluations with and without a daemon."""
    return data_dir() / "monitoring" / "retrain_sensor_cursor.json"


def alerts_dir() -> Path:
    """What the alert sensors have told (their debounce state) and the alerts no receiver took (`undelivered.jsonl`)."""
    return data_dir() / "alerts"


# ---------- drivers
def dagster_home() -> Path:
    """The Dagster instance of `pm` and `make ui` (`DAGSTER_HOME` when set)."""
    return Path(os.environ.get("DAGSTER_HOME") or data_dir() / "dagster_home")


def run_log_path() -> Path:
    """What libraries print during in-process runs: dbt, MLflow, Dagster's console log (its run log has every event anyway)."""
    return data_dir() / "logs" / "runs.log"


def demo_summary_path() -> Path:
    return data_dir() / "demo_summary.json"


def policy_report_path() -> Path:
    """`pm evaluate-policy`'s per-policy figures."""
    return data_dir() / "policy_evaluation.json"


def replay_report_path() -> Path:
    return data_dir() / "replay_quarters.json"
