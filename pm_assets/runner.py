"""Materialize platform assets in-process, the way the CLI and the benchmarks drive the platform.

Partitioned assets run as one single-run backfill over a day range (one run, one transaction),
unpartitioned ones in their own run, in dependency order.
"""

import contextlib
import datetime as dt
import os
import time
from pathlib import Path
from collections.abc import Sequence

import dagster as dg

from pm_assets import paths
from pm_assets.definitions import defs
from pm_assets.resources import platform_resources

PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"

#: Stages of the ingestion-to-marts pipeline: (asset selection, partitioned?).
INGEST_STAGES: tuple[tuple[str, bool], ...] = (
    ("machines", False),
    ("raw_telemetry raw_events", True),
    ("dbt_models", False),
    ("dbt_daily_models", True),
)


def instance() -> dg.DagsterInstance:
    """The persistent instance at $DAGSTER_HOME (default `data/dagster_home`), so runs show in `dagster dev`."""
    home = Path(os.environ.get("DAGSTER_HOME") or paths.data_dir() / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        # one run at a time: DuckDB takes one writing process (a schedule's run and a retraining would collide)
        config.write_text("telemetry:\n  enabled: false\nconcurrency:\n  runs:\n    max_concurrent_runs: 1\n")
    return dg.DagsterInstance.from_config(str(home))


def _selection(names: str) -> dg.AssetSelection:
    """Asset names, or the name of a multi-asset (`dbt_models`) standing for all its assets."""
    selected = dg.AssetSelection.assets()
    for name in names.split():
        matches = [a for a in defs.assets if getattr(a, "node_def", None) is not None and a.node_def.name == name]
        selected |= dg.AssetSelection.assets(*matches[0].keys) if matches else dg.AssetSelection.assets(name)
    return selected


def materialize(names: str, days: tuple[dt.date, dt.date] | None = None, tags: dict[str, str] | None = None,
                run_config: dict | None = None, instance_: dg.DagsterInstance | None = None,
                raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    """Materialize the named assets; `days` (first, last) for partitioned ones. Raises on failure."""
    run_tags = dict(tags or {})
    if days is not None:
        run_tags |= {PARTITION_RANGE_START: days[0].isoformat(), PARTITION_RANGE_END: days[1].isoformat()}
    quiet = {"loggers": {"console": {"config": {"log_level": os.environ.get("PM_LOG_LEVEL", "WARNING")}}}}
    log_path = paths.data_dir() / "logs" / "runs.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # dbt's own output goes to a log file; Dagster's run log in the UI has every event anyway
    with log_path.open("a") as log, contextlib.redirect_stdout(log):
        return dg.materialize(
            list(defs.assets or []),
            selection=_selection(names),
            resources=platform_resources(),
            tags=run_tags,
            run_config=quiet | (run_config or {}),
            instance=instance_ or instance(),
            raise_on_error=raise_on_error,
        )


def run_stages(stages: Sequence[tuple[str, bool]], days: tuple[dt.date, dt.date], log=print) -> dict[str, float]:
    """Run stages in order, printing progress; return seconds per stage."""
    seconds = {}
    for i, (names, partitioned) in enumerate(stages, 1):
        log(f"[{i}/{len(stages)}] materializing {names}" + (f" for {days[0]}..{days[1]}" if partitioned else ""))
        start = time.perf_counter()
        materialize(names, days if partitioned else None)
        seconds[names] = time.perf_counter() - start
        log(f"      done in {seconds[names]:.1f}s")
    return seconds

#: Stages from the marts to a champion and the fleet's scores.
MODEL_STAGES: tuple[tuple[str, bool], ...] = (
    ("training_set catboost_model lightgbm_model champion_model fleet_scores", False),
)
