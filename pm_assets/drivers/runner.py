"""Materialize platform assets in-process, the way the CLI and the benchmarks drive the platform.

Partitioned assets run as one single-run backfill over a day range (one run, one transaction),
unpartitioned ones in their own run, in dependency order.
"""

import contextlib
import datetime as dt
import os
import socket
import time
from collections.abc import Sequence

import dagster as dg

from pm_assets.core.processes import alive
from pm_assets.core.shards import SHARD_TAG
from pm_assets.definitions import defs
from pm_assets.defs.partitions import SHARDS, raw_partition_key
from pm_assets.defs.resources import platform_resources
from pm_assets.defs.jobs import RAW_ASSETS, RETRAIN_ASSETS, SCORE_ASSETS
from pm_assets.drivers import run_report
from pm_assets.drivers.instance_config import write_instance_config
from pm_assets.storage import feature_store, model_files, paths, registry, warehouse

PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"

Stage = tuple[str, tuple[dt.date, dt.date] | None]  # asset names, and the day range of partitioned ones


def ingest_stages(days: tuple[dt.date, dt.date]) -> list[Stage]:
    """Landing files to the dbt marts."""
    return [("machines", None), (" ".join(RAW_ASSETS), days), ("dbt_models", None), ("dbt_daily_models", days)]


def train_stages(days: tuple[dt.date, dt.date]) -> list[Stage]:
    """From the marts to a champion: the feature spec (once), the features of the days not computed yet,
    candidates and champion, its drift reference, and the fleet's scores on the last day."""
    spec, *models = RETRAIN_ASSETS
    stages: list[Stage] = [] if model_files.has_feature_spec() else [(spec, None)]
    first = days[0]
    if not stages:
        with warehouse.connect(paths.warehouse_path(), read_only=True) as con:
            _, as_of, _ = feature_store.read_state(con, days[1] + dt.timedelta(days=1))
        first = days[0] if as_of is None else max(days[0], as_of + dt.timedelta(days=1))
    if first <= days[1]:
        stages.append(("machine_features", (first, days[1])))
    return stages + [(" ".join(models), None), (" ".join(SCORE_ASSETS), (days[1], days[1]))]


_QUIET = {"loggers": {"console": {"config": {"log_level": os.environ.get("PM_LOG_LEVEL", "WARNING")}}}}


@contextlib.contextmanager
def _run_log():
    """What libraries print during a run (dbt's output, MLflow's registration messages, Dagster's console log)
    goes to a log file, so the terminal shows `pm`'s own lines; Dagster's run log in the UI has every event anyway."""
    log_path = paths.run_log_path()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        yield


#: Tags of every run `pm` starts: the process that runs it, so a later `pm` can tell a run whose process died.
PID_TAG, HOST_TAG = "pm/pid", "pm/host"
_UNFINISHED = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.CANCELING]


def instance() -> dg.DagsterInstance:
    """The persistent instance at `paths.dagster_home()`, so runs show in the UI (`make ui`)."""
    home = paths.dagster_home()
    write_instance_config(home)
    return dg.DagsterInstance.from_config(str(home))


def fail_abandoned_runs(current: dg.DagsterInstance) -> list[str]:
    """Mark failed the runs `pm` started on this machine whose process is gone (killed, crashed) but which the
    instance still shows as running, and end their MLflow runs as KILLED; return their ids. Re-running the same command then redoes their work."""
    host = socket.gethostname()
    abandoned = [run for run in current.get_runs(dg.RunsFilter(statuses=_UNFINISHED, tags={HOST_TAG: host}))
                 if PID_TAG in run.tags and int(run.tags[PID_TAG]) != os.getpid() and not alive(int(run.tags[PID_TAG]))]
    return _fail(current, abandoned, "the process running it (pid {pid}) ended without finishing it")


def fail_own_runs(current: dg.DagsterInstance) -> list[str]:
    """Mark failed the runs this process started and has not finished (it was interrupted), with their MLflow runs."""
    own = current.get_runs(dg.RunsFilter(statuses=_UNFINISHED, tags={HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}))
    return _fail(current, own, "interrupted (Ctrl-C or SIGTERM of pid {pid})")


def _fail(current: dg.DagsterInstance, runs: list[dg.DagsterRun], reason: str) -> list[str]:
    for run in runs:
        current.report_run_failed(run, reason.format(pid=run.tags[PID_TAG]))
        registry.end_runs_of(run.run_id)  # its MLflow runs too: they would show as running forever
    return [run.run_id for run in runs]


def _own_tags(tags: dict[str, str] | None) -> dict[str, str]:
    return {**(tags or {}), PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _selection(names: str) -> dg.AssetSelection:
    """Asset names, or the name of a multi-asset (`dbt_models`) standing for all its assets."""
    selected = dg.AssetSelection.assets()
    for name in names.split():
        matches = [a for a in defs.assets if getattr(a, "node_def", None) is not None and a.node_def.name == name]
        selected |= dg.AssetSelection.assets(*matches[0].keys) if matches else dg.AssetSelection.assets(name)
    return selected


def materialize(names: str, days: tuple[dt.date, dt.date] | None = None, tags: dict[str, str] | None = None,
                run_config: dict | None = None, instance_: dg.DagsterInstance | None = None,
                raise_on_error: bool = True, shard: int | None = None) -> dg.ExecuteInProcessResult:
    """Materialize the named assets; `days` (first, last) for partitioned ones. Raises on failure.

    Sharded (`PM_SHARDS` > 1), the raw tables load one machine shard per run: `shard`, or else every shard in turn
    (the result is the last shard's)."""
    if days is not None and SHARDS > 1 and set(names.split()) & set(RAW_ASSETS):
        if shard is None:
            for each in range(SHARDS):
                result = materialize(names, days, tags, run_config, instance_, raise_on_error, each)
            return result
        tags = {**(tags or {}), SHARD_TAG: str(shard)}
    run_tags = _own_tags(tags)
    if days is not None:
        run_tags |= {PARTITION_RANGE_START: raw_partition_key(days[0], shard), PARTITION_RANGE_END: raw_partition_key(days[1], shard)}
    with _run_log():
        return run_report.record(dg.materialize(
            list(defs.assets or []),
            selection=_selection(names),
            resources=platform_resources(),
            tags=run_tags,
            run_config=_QUIET | (run_config or {}),
            instance=instance_ or instance(),
            raise_on_error=raise_on_error,
        ))


def run_job(name: str, partition_key: str | None = None, tags: dict[str, str] | None = None,
            run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    """Run a named job of the code location (`daily`, `retrain`) in-process on the persistent instance, so it
    shows in the UI under its name, with the resources of the current `PM_DATA_DIR`."""
    current = dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks, jobs=defs.jobs, resources=platform_resources(),
                             executor=dg.in_process_executor)
    with _run_log():
        return run_report.record(current.resolve_job_def(name).execute_in_process(
            partition_key=partition_key, tags=_own_tags(tags), run_config=_QUIET | (run_config or {}), instance=instance()))


def run_day(day: dt.date) -> dg.ExecuteInProcessResult:
    """The `daily` job of one day; sharded, after loading each machine shard of the day (the schedule and the
    sensor `daily_after_shards` do the same as parallel runs on the instance)."""
    if SHARDS > 1:
        materialize(" ".join(RAW_ASSETS), (day, day))
    return run_job("daily", partition_key=day.isoformat())


def last_daily_day() -> dt.date | None:
    """The last day whose fleet scores a successful run wrote: a `daily` run, or the last stage of `pm train`.

    A run killed part-way counts for nothing, even where it got as far as the features, so running the
    same command again does its day whole."""
    current = instance()
    records = current.fetch_materializations(dg.AssetKey("fleet_scores"), limit=200).records
    if not records:
        return None
    runs = current.get_runs(dg.RunsFilter(run_ids=list({r.run_id for r in records}), statuses=[dg.DagsterRunStatus.SUCCESS]))
    succeeded = {run.run_id for run in runs}
    return max((dt.date.fromisoformat(r.partition_key) for r in records if r.run_id in succeeded and r.partition_key), default=None)


def run_stages(stages: Sequence[Stage], log=print, ops_config: dict | None = None) -> dict[str, float]:
    """Run stages in order, printing progress; return seconds per stage. `ops_config` (asset name -> its run
    config) applies to the stages that hold the asset."""
    seconds = {}
    for i, (names, days) in enumerate(stages, 1):
        log(f"[{i}/{len(stages)}] materializing {names}" + (f" for {days[0]}..{days[1]}" if days else ""))
        start = time.perf_counter()
        ops = {name: config for name, config in (ops_config or {}).items() if name in names.split()}
        materialize(names, days, run_config={"ops": ops} if ops else None)
        seconds[names] = time.perf_counter() - start
        log(f"      done in {seconds[names]:.1f}s")
    return seconds
