"""Self-healing: a failed drift or accuracy check, enough failures since the last training, or readings in operating
regimes the features do not know, materializes the retraining assets, once per cooldown.

The cooldown runs on the data's clock, the end of the day a failed check judged, not on the wall
clock: a backfill or a simulated stream of many days in an hour retrains as the same days would in
production, and the decision does not depend on when the daemon happens to tick.

`pm daily` and `pm demo` evaluate this sensor in-process, without a daemon (`build_sensor_context`, no cursor
of Dagster's); the daemon of `make ui` keeps its cursor in the instance. Both also keep it in the data directory,
and an evaluation starts from the further of the two, so neither acts again on a failure the other settled.
"""

import datetime as dt
import json
import os
import time
from dataclasses import dataclass

import dagster as dg

from pm_assets.defs.jobs import retrain_job
from pm_assets.storage import paths, registry
from pm_assets.storage.atomic import write_atomic

SENSOR_NAME = "retrain_on_failed_check"
#: Tags of a requested `retrain` run: which checks failed, on which day, in which run.
TRIGGER_TAGS = TRIGGER_CHECK_TAG, TRIGGER_PARTITION_TAG, TRIGGER_RUN_TAG = "pm/trigger_check", "pm/trigger_partition", "pm/trigger_run"
#: Checks that trigger retraining. `prediction_drift` only warns: its reference predictions are the
#: champion's own training rows (in-sample, sharper than on new data), so it runs high on quiet days.
WATCHED_CHECKS = [dg.AssetCheckKey(dg.AssetKey("drift_report"), "feature_drift"),
                  dg.AssetCheckKey(dg.AssetKey("model_performance"), "performance_degradation"),
                  dg.AssetCheckKey(dg.AssetKey("model_performance"), "interval_coverage"),
                  dg.AssetCheckKey(dg.AssetKey("model_performance"), "new_failures"),
                  dg.AssetCheckKey(dg.AssetKey("drift_report"), "unknown_regimes")]
WATCHED_NAMES = ", ".join(key.name for key in WATCHED_CHECKS)


def cooldown_seconds() -> float:
    """The daemon's cooldown between two retraining requests (`PM_RETRAIN_COOLDOWN_HOURS`, 12 by default)."""
    return float(os.environ.get("PM_RETRAIN_COOLDOWN_HOURS", 12)) * 3600


@dataclass(frozen=True)
class FailedCheck:
    check: str
    partition: str
    record_id: int
    run_id: str


def data_clock(partition: str) -> float:
    """The end of a daily partition as a timestamp (the wall clock for a check without a partition)."""
    try:
        return (dt.datetime.fromisoformat(partition) + dt.timedelta(days=1)).replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return time.time()


def decide(failures: list[FailedCheck], cursor: dict, cooldown: float,
           challenger: str | None = None) -> tuple[dg.RunRequest | dg.SkipReason, dict]:
    """Whether to retrain, and the new cursor. Failures seen during a cooldown, or while a challenger
    is still in shadow (a new one would end its trial before the verdict), are acknowledged, not queued."""
    new = [f for f in failures if f.record_id > cursor.get("last_record_id", 0)]
    if not new:
        return dg.SkipReason("no watched check failed since the last evaluation"), cursor
    latest = max(new, key=lambda f: f.record_id)
    advanced = {**cursor, "last_record_id": latest.record_id}
    if challenger is not None:
        return dg.SkipReason(f"{latest.check} failed on {latest.partition}, but challenger v{challenger} is in shadow: "
                             "its verdict comes first"), advanced
    now = data_clock(latest.partition)
    since = now - cursor.get("last_request_at", float("-inf"))
    if since < cooldown:
        return dg.SkipReason(f"{latest.check} failed on {latest.partition}, but the last retraining was requested "
                             f"{since / 3600:.1f} h ago (cooldown {cooldown / 3600:.1f} h)"), advanced
    checks = ",".join(sorted({f.check for f in new}))  # every check that failed since the last evaluation
    request = dg.RunRequest(
        run_key=f"retrain-{latest.record_id}",
        tags={TRIGGER_CHECK_TAG: checks, TRIGGER_PARTITION_TAG: latest.partition, TRIGGER_RUN_TAG: latest.run_id},
    )
    return request, {**advanced, "last_request_at": now}


@dataclass(frozen=True)
class CheckEvaluation:
    """A watched check's latest evaluation, as the retraining sensor and the alerts read it."""

    key: dg.AssetCheckKey
    passed: bool
    partition: str
    record_id: int
    run_id: str
    description: str | None
    metadata: dict


def latest_check_evaluations(instance: dg.DagsterInstance) -> list[CheckEvaluation]:
    """The latest evaluation of each watched check, oldest first (a check never evaluated is left out)."""
    evaluations = []
    for key, record in instance.event_log_storage.get_latest_asset_check_execution_by_key(WATCHED_CHECKS).items():
        evaluation = record.event.asset_check_evaluation if record.event else None
        if evaluation is None:
            continue
        metadata = {k: v.value for k, v in evaluation.metadata.items()}
        partition = str(metadata.pop("partition", "") or "")
        evaluations.append(CheckEvaluation(key, evaluation.passed, partition, record.id, record.run_id,
                                           evaluation.description, metadata))
    return sorted(evaluations, key=lambda e: e.record_id)


def _failures(instance: dg.DagsterInstance) -> list[FailedCheck]:
    return [FailedCheck(e.key.name, e.partition, e.record_id, e.run_id)
            for e in latest_check_evaluations(instance) if not e.passed]


def _cursor(dagster_cursor: str | None) -> dict:
    """The further of Dagster's cursor and the data directory's."""
    path = paths.retrain_sensor_cursor_path()
    kept = [json.loads(c) for c in (dagster_cursor, path.read_text() if path.exists() else None) if c]
    return max(kept, key=lambda c: c.get("last_record_id", 0), default={})


def evaluate(instance: dg.DagsterInstance, dagster_cursor: str | None, cooldown: float) -> tuple[dg.RunRequest | dg.SkipReason, str]:
    """The sensor's decision on the checks that failed since its cursor (Dagster's or the data directory's, the further),
    with `cooldown` seconds on the data's clock, and the new cursor, also kept in the data directory.
    `pm` evaluates it in-process after each streamed day with its own cooldown, the daemon through the sensor."""
    result, cursor = decide(_failures(instance), _cursor(dagster_cursor), cooldown, registry.alias_version(registry.CHALLENGER))
    kept = json.dumps(cursor)
    write_atomic(paths.retrain_sensor_cursor_path(), kept)
    return result, kept


@dg.sensor(name=SENSOR_NAME, job=retrain_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description=f"Request the `retrain` job when a watched check fails ({WATCHED_NAMES}), tagged with the check and partition")
def retrain_on_failed_check(context: dg.SensorEvaluationContext):
    result, cursor = evaluate(context.instance, context.cursor, cooldown_seconds())
    context.update_cursor(cursor)
    return result
