"""The self-healing loop, day by day, as the daily schedule and the retraining sensor would run it.

Used by `pm demo`, `pm daily`, `pm simulate --advance` and `pm replay`: each streamed day runs the
`daily` job (ingest, marts, features, champion predictions, gate, drift, matured accuracy, fleet
scores), then the retraining sensor's decision (`defs.sensors.evaluate`, what the daemon's tick runs), whose
requested `retrain` run carries the tags the daemon gives its runs.
"""

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

import dagster as dg

from pm_assets.defs.alerts import NOTHING_NEW, notify_all
from pm_assets.defs.sensors import (SENSOR_NAME, TRIGGER_CHECK_TAG, TRIGGER_PARTITION_TAG, TRIGGER_TAGS, WATCHED_CHECKS,
                                     cooldown_seconds, evaluate)
from pm_assets.drivers.healing import alarm_days_after, frozen_vs_healed
from pm_assets.drivers.runner import instance, run_day, run_job
from pm_assets.storage import paths, registry
from pm_assets.storage.atomic import write_atomic


@dataclass
class LoopSummary:
    drift_start_day: str | None
    drift_detected_day: str | None = None
    failed_checks: list[dict] = field(default_factory=list)
    retrain_runs: list[str] = field(default_factory=list)
    champion_before: str | None = None
    champion_after: str | None = None
    metric_before: dict | None = None  # the first champion's live RUL RMSE at the first gate decision
    metric_after: dict | None = None  # the final champion's live RUL RMSE at the last gate decision
    retrains: list[dict] = field(default_factory=list)  # each retraining: day, trigger, challenger version
    gate_decisions: list[dict] = field(default_factory=list)  # each shadow verdict: day, decision, both live RMSEs
    days: list[dict] = field(default_factory=list)  # each streamed day's drift figures
    # what healing was worth: the final champion beside the first, frozen one, on rows neither trained on
    frozen_vs_healed: dict | None = None
    degraded_days: int | None = None  # from the drift's start to the first promotion after it
    alarms_after_promotion: list[dict] = field(default_factory=list)  # feature_drift days after each promotion

    def describe(self) -> list[str]:
        """The story in a few lines (the JSON file has every figure)."""
        failed: dict[str, list[str]] = {}
        for check in self.failed_checks:
            failed.setdefault(check["check"], []).append(check["day"])
        lines = [f"drift began {self.drift_start_day or '(no drift scenario)'}; first flagged {self.drift_detected_day or 'never'}"]
        lines += [f"{check} failed on {len(days)} day(s), {days[0]}..{days[-1]}" for check, days in failed.items()]
        lines += [f"retraining {r['day']} ({r['trigger']}): v{r['challenger_version']} {r['decision']}" for r in self.retrains]
        lines += [f"gate {g['day']}: {g['decision']} v{g['challenger_version']} against v{g['champion_version_before']}, live RUL RMSE "
                  f"{g['challenger_rul_rmse']:.2f} vs {g['champion_rul_rmse']:.2f} ({g['basis']}; {g.get('why', '')})" for g in self.gate_decisions]
        lines += [f"after the promotion of {a['promoted']}: feature_drift failed on {a['alarm_days']} of {a['days_watched']} day(s)"
                  for a in self.alarms_after_promotion]
        if self.degraded_days is not None:
            lines.append(f"the fleet ran {self.degraded_days} day(s) on a model that predates the drift (its start to the promotion)")
        if self.frozen_vs_healed:
            f, h = self.frozen_vs_healed["frozen"], self.frozen_vs_healed["healed"]
            lines.append(f"on {self.frozen_vs_healed['matured_rul_rows']} matured rows after v{h['version']}'s training data: live RUL "
                         f"RMSE frozen v{f['version']} {f['rul_rmse']:.2f}, healed v{h['version']} {h['rul_rmse']:.2f} "
                         f"({self.frozen_vs_healed['rul_rmse_gain']:+.0%})")
        lines.append(f"champion v{self.champion_before} -> v{self.champion_after}")
        return lines

    @classmethod
    def from_dict(cls, saved: dict) -> "LoopSummary":
        """The summary `asdict` saved (a stopped run's progress)."""
        return cls(**{f.name: saved[f.name] for f in fields(cls) if f.name in saved})

    def write(self) -> None:
        """Strict JSON: a figure that could not be computed (no matured rows that day) is null, not NaN."""
        path = paths.demo_summary_path()
        write_atomic(path, json.dumps(no_nan(asdict(self)), indent=2, default=str, allow_nan=False))


def no_nan(value):
    """`value` with every non-finite float replaced by None (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [no_nan(v) for v in value]
    return value


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _record_gate(summary: LoopSummary, day: dt.date, gate: dict, log) -> None:
    summary.gate_decisions.append({"day": day.isoformat(), **{k: gate[k] for k in ("decision", "why", "basis", "champion_version_before",
                                                                                    "challenger_version", "champion_rul_rmse", "challenger_rul_rmse")},
                                   "segments": gate.get("segments", {})})
    summary.metric_before = summary.metric_before or {"version": gate["champion_version_before"], "live_rul_rmse": gate["champion_rul_rmse"],
                                                      "basis": gate["basis"]}
    promoted = gate["decision"] == "promoted"
    summary.metric_after = {"version": gate["champion_version"], "basis": gate["basis"],
                            "live_rul_rmse": gate["challenger_rul_rmse"] if promoted else gate["champion_rul_rmse"]}
    log(f"  promotion gate: {gate['decision']} on {gate['basis']} (champion v{gate['champion_version_before']} live RMSE "
        f"{gate['champion_rul_rmse']:.2f}, challenger v{gate['challenger_version']} {gate['challenger_rul_rmse']:.2f}): {gate['why']}")


def _failed_checks(result: dg.ExecuteInProcessResult) -> tuple[list[str], list[str]]:
    """The day's failed checks: those that start a retraining, and the others (ingestion's quarantine, a dbt test, the
    prediction drift), each marked as Dagster marks it."""
    watched = {key.name for key in WATCHED_CHECKS}
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    others = [e.check_name + (" (warning)" if e.severity == dg.AssetCheckSeverity.WARN else "") for e in failed if e.check_name not in watched]
    return [e.check_name for e in failed if e.check_name in watched], others


def promotion_days(summary: LoopSummary) -> list[str]:
    """Days a new champion took over: won a shadow trial, or replaced one trained on features of another spec."""
    return [g["day"] for g in summary.gate_decisions if g["decision"] == "promoted"] + [
        r["day"] for r in summary.retrains if r["decision"].startswith("champion replaced")]


def judge_healing(summary: LoopSummary) -> None:
    """The champion now serving, the alarm days after each promotion, the days on a pre-drift model, and the
    final champion beside the frozen first one, up to the last day streamed."""
    summary.champion_after = registry.alias_version(registry.CHAMPION)
    if not summary.days:
        return
    last_day = dt.date.fromisoformat(summary.days[-1]["day"])
    promotions = sorted(promotion_days(summary))
    alarms = [c["day"] for c in summary.failed_checks if c["check"] == "feature_drift"]
    summary.alarms_after_promotion = alarm_days_after(promotions, alarms, last_day.isoformat())
    if summary.drift_start_day:
        after = [day for day in promotions if day >= summary.drift_start_day]
        if after:
            summary.degraded_days = (dt.date.fromisoformat(after[0]) - dt.date.fromisoformat(summary.drift_start_day)).days
    if summary.champion_before and summary.champion_after and summary.champion_before != summary.champion_after:
        end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time())
        summary.frozen_vs_healed = frozen_vs_healed(summary.champion_before, summary.champion_after, end)


def _record_retraining(summary: LoopSummary, run_id: str, tags: dict[str, str], meta: dict, log) -> None:
    summary.retrain_runs.append(run_id)
    summary.retrains.append({"day": tags[TRIGGER_PARTITION_TAG], "trigger": tags[TRIGGER_CHECK_TAG],
                             "decision": meta["decision"], "challenger_version": meta["challenger_version"],
                             "challenger_cv_rul_rmse": meta["challenger_cv_rul_rmse"]})
    if meta["decision"] == "challenger in shadow":
        log(f"  challenger in shadow: v{meta['challenger_version']} (CV RMSE {meta['challenger_cv_rul_rmse']:.2f}) now predicts "
            f"beside champion v{meta['champion_version']} until matured rows decide")
    else:
        log(f"  {meta['decision']}: champion v{meta['champion_version']} (CV RMSE {meta['challenger_cv_rul_rmse']:.2f})")


def _catch_up(summary: LoopSummary, since: float, log) -> None:
    """Resuming: record the sensor's retraining runs that finished after the saved progress (`since`, a timestamp)
    but before the stop could save the day. One the stop interrupted needs nothing: the sensor stores its cursor
    only once the run it requested returns, so the redone day requests it again."""
    dagster = instance()
    runs = dagster.get_runs(dg.RunsFilter(job_name="retrain", tags={"dagster/sensor_name": SENSOR_NAME}, statuses=[dg.DagsterRunStatus.SUCCESS],
                                          created_after=dt.datetime.fromtimestamp(since, dt.UTC)))
    recorded = {record.run_id: record for record in dagster.fetch_materializations(
        dg.AssetRecordsFilter(dg.AssetKey("champion_model"), after_timestamp=since), limit=100).records}
    for run in reversed(runs):  # oldest first
        if run.run_id not in summary.retrain_runs and run.run_id in recorded:
            meta = {k: v.value for k, v in recorded[run.run_id].asset_materialization.metadata.items()}
            _record_retraining(summary, run.run_id, {k: v for k, v in run.tags.items() if k in TRIGGER_TAGS}, meta, log)


def stream(days: list[dt.date], drift_start: dt.date | None, log=print, retrain_config: dict | None = None,
           resume: tuple[LoopSummary, float] | None = None, on_day: Callable[[LoopSummary], None] | None = None,
           cooldown_hours: float | None = None) -> LoopSummary:
    """Run the `daily` job for each of `days`, then the retraining sensor's decision (with `cooldown_hours` on the data's
    clock, else the daemon's), which runs the `retrain` job (with `retrain_config`) when it requests it; `on_day` gets
    the summary after each day.

    `resume` (a summary `on_day` saved, and when) continues a stopped run: `days` are then the days it had
    not finished."""
    summary = resume[0] if resume else LoopSummary(drift_start_day=drift_start and drift_start.isoformat(),
                                                   champion_before=registry.alias_version(registry.CHAMPION))

    def retrain(request: dg.RunRequest) -> str:
        log(f"  retraining (triggered by {request.tags[TRIGGER_CHECK_TAG]} on {request.tags[TRIGGER_PARTITION_TAG]})")
        run = run_job("retrain", tags={**request.tags, "dagster/sensor_name": SENSOR_NAME, "dagster/run_key": request.run_key},
                      run_config=retrain_config)
        _record_retraining(summary, run.run_id, request.tags, _metadata(run, "champion_model"), log)
        return run.run_id

    if resume:
        _catch_up(summary, resume[1], log)
    cooldown = cooldown_seconds() if cooldown_hours is None else cooldown_hours * 3600

    for i, day in enumerate(days, 1):
        daily = run_day(day)
        failed, others = _failed_checks(daily)
        drift, accuracy, gate, scored = (_metadata(daily, asset) for asset in ("drift_report", "model_performance", "challenger_gate",
                                                                              "champion_predictions"))
        if gate["decision"] not in ("no challenger", "waiting"):
            _record_gate(summary, day, gate, log)
        summary.days.append({"day": day.isoformat(), "champion": scored["champion_version"], "drifted_share": drift["drifted_share"], "prediction_psi": drift["prediction_psi"],
                             "live_rul_rmse": accuracy["rul_rmse"], "matured_rows": int(accuracy["rul_rows"]), "failed": failed})
        live = (f"live RUL RMSE {accuracy['rul_rmse']:.1f} on {int(accuracy['rul_rows'])} matured predictions "
                f"(expected {accuracy['expected_rul_rmse']:.1f})" if accuracy["rul_rows"] else "no matured predictions yet")
        psi = f"{drift['prediction_psi']:.2f}" if math.isfinite(drift["prediction_psi"]) else "not judged (too few readings)"
        log(f"  day {day} ({i}/{len(days)}): drifted sensor share {drift['drifted_share']:.2f}, prediction PSI "
            f"{psi}, {live} -> {', '.join(failed + others) or 'all checks passed'}")
        if failed:
            summary.failed_checks += [{"day": day.isoformat(), "check": check} for check in failed]
            summary.drift_detected_day = summary.drift_detected_day or day.isoformat()
        decision, _ = evaluate(instance(), None, cooldown)
        if isinstance(decision, dg.RunRequest):
            retrain(decision)
        elif failed:
            log(f"  sensor: {decision.skip_message}")
        for sensor, outcome in notify_all(instance()).items():  # only with PM_ALERT_WEBHOOK_URL set
            if outcome != NOTHING_NEW:
                log(f"  {sensor}: {outcome}")
        if on_day:
            on_day(summary)
    judge_healing(summary)
    summary.write()
    return summary
