"""Where the platform keeps its files: one root, `PM_DATA_DIR`, defaulting to `data/` in the repo.

The dbt profile reads the same variable (with the same default, relative to `dbt_sensors/`),
so Python and dbt always open the same warehouse file.
"""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_sensors"


def data_dir() -> Path:
    """The root of everything generated: warehouse, landing files, MLflow store, reports."""
    return Path(os.environ.get("PM_DATA_DIR", REPO_ROOT / "data")).resolve()


def warehouse_path() -> Path:
    return data_dir() / "warehouse.duckdb"


def landing_dir() -> Path:
    return data_dir() / "landing"
