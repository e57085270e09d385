"""The dbt project `dbt_sensors/` as Dagster assets; its tests become asset checks.

Daily marts (dbt tag `daily`) are partitioned like the raw telemetry and rebuild only the days of
the run's partition window; everything else (staging views, the event mart) is one unpartitioned set.
"""

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets
from dagster_dbt.errors import DagsterDbtCliRuntimeError

from pm_assets.defs.partitions import daily_partitions, single_run_backfill
from pm_assets.defs.resources import WarehouseResource, dbt_cli, dbt_project
from pm_assets.storage import paths
from pm_assets.storage.writer_lock import writer_lock


def _manifest_is_stale() -> bool:
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        return True
    sources = [p for p in dbt_project.project_dir.rglob("*") if p.suffix in {".sql", ".yml"} and "target" not in p.parts]
    return max(p.stat().st_mtime for p in sources) > manifest.stat().st_mtime


def _parse_if_stale() -> None:
    """Parse the dbt project when a model changed since the manifest was written. Processes starting at once (the
    UI's and a `pm` command's, parallel test workers) take turns: one parses, the others then find it fresh."""
    if not _manifest_is_stale():
        return
    target = dbt_project.manifest_path.parent
    target.mkdir(parents=True, exist_ok=True)
    with (target / "parse.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _manifest_is_stale():
            # Not `dbt_project.prepare_if_dev()`: it runs the `dbt` on PATH, which an un-activated virtualenv lacks.
            dbt_cli().cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()


_parse_if_stale()

DAILY = "tag:daily"


def _sources_through_views(manifest: dict, unique_id: str) -> set[str]:
    """The dbt sources a model reads, directly or through views (which are never rebuilt per day)."""
    found = set()
    for parent in manifest["parent_map"].get(unique_id, []):
        if parent.startswith("source."):
            found.add(parent)
        elif manifest["nodes"].get(parent, {}).get("config", {}).get("materialized") == "view":
            found |= _sources_through_views(manifest, parent)
    return found


class Translator(DagsterDbtTranslator):
    """Models sit in the UI's group of their folder (`staging`, `marts`), and daily marts also depend on the raw
    tables behind their staging views.

    Dagster orders a run's steps only by dependencies among the selected assets: without these, a
    run of raw ingestion and the daily marts (the `daily` job) could rebuild the marts first.
    """

    def get_asset_spec(self, manifest, unique_id, project):
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id, {})
        if node.get("resource_type") == "model":
            spec = spec.replace_attributes(group_name=node["fqn"][1])
        if "daily" not in node.get("tags", []):
            return spec
        present = {dep.asset_key for dep in spec.deps}
        raw = [key for key in (self.get_asset_spec(manifest, s, project).key for s in sorted(_sources_through_views(manifest, unique_id)))
               if key not in present]
        return spec.replace_attributes(deps=[*spec.deps, *raw])


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, exclude=DAILY, name="dbt_models", dagster_dbt_translator=Translator())
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    with _dbt_build(warehouse):
        yield from dbt.cli(["build"], context=context, target_path=paths.dbt_state_dir() / "models").stream()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=DAILY,
    name="dbt_daily_models",
    dagster_dbt_translator=Translator(),
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
)
def dbt_daily_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    window = context.partition_time_window
    start, end = window.start.date().isoformat(), window.end.date().isoformat()
    context.log.info(f"rebuilding daily marts for [{start}, {end})")
    # the run state (partial-parse file) lives with the warehouse it was parsed for, kept between days:
    # a fresh one, or one last used with another profile, costs a full parse
    with _dbt_build(warehouse), _window_in_environment(start, end):
        yield from dbt.cli(["build"], context=context, target_path=paths.dbt_state_dir() / "daily").stream()


@contextlib.contextmanager
def _dbt_build(warehouse: WarehouseResource) -> Iterator[None]:
    """A dbt build under the platform's writer lock (no other writer starts meanwhile), once the warehouse is free:
    dbt opens it in its own process and fails at once when a reader holds it, so wait here with the platform's
    back-off. A failed build fails with dbt's own error (DuckDB's lock, a missing table), not its wrapper's first line."""
    with writer_lock("a dbt build"):
        with warehouse.connect():
            pass
        try:
            yield
        except DagsterDbtCliRuntimeError as error:
            text = str(error.description or error)
            cause = text.split("Errors parsed from dbt logs:", 1)[1] if "Errors parsed from dbt logs:" in text else ""
            # dbt's own error lines ("Catalog Error: …", "IO Error: Could not set lock …"), without colours and progress lines
            lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in cause.splitlines()]
            cause = " ".join([line for line in lines if "Error" in line and not re.match(r"\d+ of \d+ ", line)][:2])
            raise dg.Failure(f"dbt build failed: {cause or text.splitlines()[0]} (dbt's log: {paths.dbt_state_dir()})") from error


@contextlib.contextmanager
def _window_in_environment(start: str, end: str) -> Iterator[None]:
    """The window for `macros/daily_window.sql`, in the environment the dbt process inherits."""
    saved = {name: os.environ.get(name) for name in ("PM_WINDOW_START", "PM_WINDOW_END")}
    os.environ.update(PM_WINDOW_START=start, PM_WINDOW_END=end)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
