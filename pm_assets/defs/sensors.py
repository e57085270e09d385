"""Self-healing: a failed drift or accuracy check materializes the retraining assets, once per cooldown.

The cooldown runs on the data's clock, the end of the day a failed check judged, not on the wall
clock: a backfill or a simulated stream of many days in an hour retrains as the same days would in
production, and the decision does not depend on when the daemon happens to tick.
"""

import datetime as dt
import json
import os
import time
from dataclasses import dataclass

import dagster as dg

from pm_assets.storage import registry

#: The feature spec first: kept as it is unless the fleet now runs in operating regimes it does not know.
RETRAIN_ASSETS = ["feature_spec", "training_set", "catboost_model", "lightgbm_model", "champion_model", "reference_profile"]
retrain_job = dg.define_asset_job("retrain", selection=RETRAIN_ASSETS,
                                  description="Feature spec (refit on new operating regimes) → training set → candidates → promotion → new reference")
#: Checks that trigger retraining. `prediction_drift` only warns: its reference predictions are the
#: champion's own training rows (in-sample, sharper than on new data), so it runs high on quiet days.
WATCHED_CHECKS = [dg.AssetCheckKey(dg.AssetKey("drift_report"), "feature_drift"),
                  dg.AssetCheckKey(dg.AssetKey("model_performance"), "performance_degradation"),
                  dg.AssetCheckKey(dg.AssetKey("model_performance"), "interval_coverage")]


def cooldown_seconds() -> float:
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
        tags={"pm/trigger_check": checks, "pm/trigger_partition": latest.partition, "pm/trigger_run": latest.run_id},
    )
    return request, {**advanced, "last_request_at": now}


def _failures(instance: dg.DagsterInstance) -> list[FailedCheck]:
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(WATCHED_CHECKS)
    failures = []
    for key, record in records.items():
        evaluation = record.event.asset_check_evaluation if record.event else None
        if evaluation is None or evaluation.passed:
            continue
        partition = evaluation.metadata.get("partition")
        failures.append(FailedCheck(key.name, str(partition.value if partition else ""), record.id, record.run_id))
    return failures


@dg.sensor(job=retrain_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def retrain_on_failed_check(context: dg.SensorEvaluationContext):
    """Request the `retrain` job when `feature_drift`, `performance_degradation` or `interval_coverage` fails (tagged with the check and partition)."""
    result, cursor = decide(_failures(context.instance), json.loads(context.cursor or "{}"), cooldown_seconds(),
                            registry.alias_version(registry.CHALLENGER))
    context.update_cursor(json.dumps(cursor))
    return result
