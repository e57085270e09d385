import os
from pathlib import Path

import dagster as dg
import pytest

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

REPO_ROOT = Path(__file__).resolve().parents[1]
CMAPSS_DIR = REPO_ROOT.parent / "shared" / "data" / "cmapss"


@pytest.fixture
def cmapss_dir() -> Path:
    """The shared NASA C-MAPSS files; tests needing them skip when a user cloned the repo alone."""
    if not (CMAPSS_DIR / "train_FD001.txt").exists():
        pytest.skip(f"C-MAPSS files not found at {CMAPSS_DIR} (they live in ../shared, outside the repo)")
    return CMAPSS_DIR


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh PM_DATA_DIR: warehouse, landing files and stores of one test."""
    monkeypatch.setenv("PM_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def instance() -> dg.DagsterInstance:
    with dg.instance_for_test() as test_instance:
        yield test_instance
