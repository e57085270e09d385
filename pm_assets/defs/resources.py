"""Resources: where the warehouse and the landing files are. Defaults come from `pm_assets.storage.paths`."""

import contextlib
import functools
import importlib.metadata
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource, DbtProject
from dagster_mlflow.resources import MlFlow
from packaging import version

from pm_assets.storage import paths, registry, warehouse

dbt_project = DbtProject(project_dir=paths.DBT_PROJECT_DIR, profiles_dir=paths.DBT_PROJECT_DIR)

#: The dbt installed beside the running Python (an un-activated virtualenv's), else the one on PATH.
_BESIDE = Path(sys.executable).with_name("dbt")
DBT_EXECUTABLE = str(_BESIDE) if _BESIDE.exists() else (shutil.which("dbt") or "dbt")


class PlatformDbtCliResource(DbtCliResource):
    """dagster-dbt's resource without its fixed cost per invocation (~6 s of a day's run): it asks the dbt
    executable its version in a subprocess and loads dbt-core in-process for an adapter handle that only
    row-count and column metadata use. The dbt beside this Python is the installed dbt-core package."""

    @functools.cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None


def dbt_cli() -> DbtCliResource:
    return PlatformDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file (`storage.paths`, as dbt's profile). Open it per operation: DuckDB allows one
    writer process at a time."""

    @property
    def path(self) -> Path:
        return paths.warehouse_path()

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection; storage's LookupError (a table or rows not there yet, and what to materialize) fails the run in one line."""
        with warehouse.connect(self.path, read_only=read_only) as con:
            try:
                yield con
            except LookupError as error:
                raise dg.Failure(str(error)) from None


class LandingResource(dg.ConfigurableResource):
    """The folder of raw landing files written by the simulator and the loaders."""

    @property
    def root(self) -> Path:
        return paths.landing_dir()


@dg.resource(description="dagster-mlflow tracking on the platform's store; one parent MLflow run per Dagster run")
def mlflow_tracking(context: dg.InitResourceContext) -> MlFlow:
    registry.ensure_experiment()  # before dagster-mlflow would create it with artifacts in ./mlruns
    return MlFlow(context)


def platform_resources() -> dict[str, object]:
    """The resources of every asset, pointing at the current `PM_DATA_DIR` (read when called)."""
    return {
        "warehouse": WarehouseResource(),
        "landing_files": LandingResource(),
        "dbt": dbt_cli(),
        "mlflow": mlflow_tracking.configured({"experiment_name": registry.EXPERIMENT, "mlflow_tracking_uri": registry.tracking_uri()}),
    }


@dg.definitions
def resources() -> dg.Definitions:
    """Every asset's resources, and one process per run: DuckDB takes one writing process, so a run's steps go one after another."""
    return dg.Definitions(resources=platform_resources(), executor=dg.in_process_executor)
