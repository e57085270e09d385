"""Alerts that reach someone: sensors that post to a webhook (`PM_ALERT_WEBHOOK_URL`, Slack-compatible JSON) when a
machine enters high risk or gets a service due on the plan's first day, when a watched check fails, when a retraining
starts, and when a new champion is promoted.

A sensor's first evaluation tells what is true now of the machines, and of checks, runs and promotions only marks
where it starts: switching alerts on for an instance with a history does not replay it. Each sensor keeps what it
has told in the data directory (`alerts/<sensor>.json`), so the daemon of `make ui` and
`pm`'s in-process evaluation after each streamed day (`notify_all`) never tell the same thing twice. Delivery is
retried with back-off and bounded (`storage.webhook`); what no receiver took is kept in `alerts/undelivered.jsonl`,
and a sensor never fails or holds up a run because of the receiver. Links point at the planner's page
(`PM_PAGE_URL`, default http://127.0.0.1:8000) and the Dagster UI (`PM_DAGSTER_URL`, default http://127.0.0.1:3000).
"""

import json
import os
from collections.abc import Callable

import dagster as dg
import polars as pl

from pm_assets.core.alert_messages import Alert, evidence_of, machine_alerts
from pm_assets.defs.jobs import retrain_job
from pm_assets.defs.sensors import TRIGGER_CHECK_TAG, TRIGGER_PARTITION_TAG, WATCHED_NAMES, latest_check_evaluations
from pm_assets.storage import paths, webhook
from pm_assets.storage.atomic import write_atomic

WEBHOOK_ENV = "PM_ALERT_WEBHOOK_URL"
#: A decision that made another model the champion: in `challenger_gate` (after a shadow trial) or `champion_model`.
PROMOTING_ASSETS = ("challenger_gate", "champion_model")
NOTHING_NEW = "nothing new to tell"


def _page_url() -> str:
    return os.environ.get("PM_PAGE_URL", "http://127.0.0.1:8000")


def _run_url(run_id: str) -> str:
    return f"{os.environ.get('PM_DAGSTER_URL', 'http://127.0.0.1:3000').rstrip('/')}/runs/{run_id}"


def _load(name: str) -> dict:
    path = paths.alerts_dir() / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def machines(instance: dg.DagsterInstance, state: dict) -> tuple[list[Alert], dict]:
    scores_path, plan_path = paths.fleet_scores_snapshot_path(), paths.maintenance_plan_snapshot_path()
    if not scores_path.exists():
        return [], state
    plan = pl.read_parquet(plan_path) if plan_path.exists() else None
    alerts, now = machine_alerts(pl.read_parquet(scores_path), plan, state.get("machines", {}), _page_url())
    return alerts, {"machines": now}


def checks(instance: dg.DagsterInstance, state: dict) -> tuple[list[Alert], dict]:
    after = state.get("last_record_id", 0)
    alerts, last = [], after
    for check in latest_check_evaluations(instance):
        if check.record_id <= after:
            continue
        last = max(last, check.record_id)
        if check.passed or not state:  # the first evaluation only marks where telling starts
            continue
        day = check.partition
        evidence = check.description or evidence_of(check.metadata)  # the check's own verdict, where it states one
        alerts.append(Alert(f"check {check.key.name}",
                            f"Check {check.key.name} of {check.key.asset_key.to_user_string()} failed{f' on {day}' if day else ''}",
                            evidence, _run_url(check.run_id)))
    return alerts, {"last_record_id": last}


def retrainings(instance: dg.DagsterInstance, state: dict) -> tuple[list[Alert], dict]:
    after = state.get("last_storage_id", 0)
    records = [r for r in instance.get_run_records(dg.RunsFilter(job_name=retrain_job.name), limit=50) if r.storage_id > after]
    alerts = []
    for record in sorted(records, key=lambda r: r.storage_id) if state else []:
        run = record.dagster_run
        cause = (f"requested because {run.tags[TRIGGER_CHECK_TAG]} failed on {run.tags.get(TRIGGER_PARTITION_TAG, '?')}"
                 if TRIGGER_CHECK_TAG in run.tags else "started by hand or on schedule")
        alerts.append(Alert(f"run {run.run_id[:8]}", f"Retraining started (run {run.run_id[:8]})", cause, _run_url(run.run_id)))
    return alerts, {"last_storage_id": max([after, *(r.storage_id for r in records)])}


def promotions(instance: dg.DagsterInstance, state: dict) -> tuple[list[Alert], dict]:
    alerts, seen = [], dict(state.get("last_storage_ids", {}))
    for asset in PROMOTING_ASSETS:
        after = seen.get(asset, 0)
        result = instance.fetch_materializations(dg.AssetRecordsFilter(dg.AssetKey(asset), after_storage_id=after), limit=50,
                                                 ascending=bool(state))  # the first evaluation: the latest one marks the start
        for record in result.records:
            seen[asset] = max(seen.get(asset, 0), record.storage_id)
            metadata = {k: v.value for k, v in record.asset_materialization.metadata.items()}
            if "champion_version_before" not in metadata or not state:  # a gate with no challenger to judge decides nothing
                continue
            new, before = str(metadata.get("champion_version")), str(metadata["champion_version_before"])
            if new in ("None", before):
                continue
            metadata.pop("reference", None)
            was = "the first champion" if before == "None" else f"was v{before}"
            alerts.append(Alert(f"model v{new}", f"Model v{new} is the champion now ({was})",
                                evidence_of(metadata, limit=10), _run_url(record.run_id)))
    return alerts, {"last_storage_ids": seen}


#: Sensor name -> what it looks at.
WATCHES: dict[str, Callable[[dg.DagsterInstance, dict], tuple[list[Alert], dict]]] = {
    "alert_machines": machines, "alert_failed_checks": checks, "alert_retraining": retrainings, "alert_promotions": promotions,
}


def notify(name: str, instance: dg.DagsterInstance, backoff: float = webhook.FIRST_BACKOFF_SECONDS) -> str:
    """Post what `name` has seen since it last told, keep its new state, and say what happened in one line."""
    url = os.environ.get(WEBHOOK_ENV)
    if not url:
        return f"{WEBHOOK_ENV} is not set: nobody to tell"
    alerts, state = WATCHES[name](instance, _load(name))
    delivered, undelivered = webhook.send(url, [a.payload() for a in alerts], backoff) if alerts else (0, 0)
    write_atomic(paths.alerts_dir() / f"{name}.json", json.dumps(state))  # told (or kept as undelivered): not again
    if not alerts:
        return NOTHING_NEW
    kept = f"; {undelivered} not delivered, kept in {paths.alerts_dir() / 'undelivered.jsonl'}" if undelivered else ""
    return f"{delivered} of {len(alerts)} alert(s) delivered ({', '.join(a.subject for a in alerts[:5])}){kept}"


def notify_all(instance: dg.DagsterInstance) -> dict[str, str]:
    """Every alert sensor's evaluation, in-process (`pm` after each streamed day, where no daemon ticks)."""
    return {name: notify(name, instance) for name in WATCHES} if os.environ.get(WEBHOOK_ENV) else {}


def _sensor(name: str, description: str) -> dg.SensorDefinition:
    @dg.sensor(name=name, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING, description=description)
    def alert(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        return dg.SkipReason(notify(name, context.instance))  # it requests no run: the message is its outcome

    return alert


alert_machines = _sensor("alert_machines", "Post to PM_ALERT_WEBHOOK_URL when a machine enters high risk or gets a service due on the plan's first day")
alert_failed_checks = _sensor("alert_failed_checks", f"Post to PM_ALERT_WEBHOOK_URL when a watched check fails ({WATCHED_NAMES})")
alert_retraining = _sensor("alert_retraining", "Post to PM_ALERT_WEBHOOK_URL when a `retrain` run starts, and why")
alert_promotions = _sensor("alert_promotions", "Post to PM_ALERT_WEBHOOK_URL when another model becomes the champion")
