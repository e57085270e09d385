"""The self-healing loop, day by day, as the daily schedule and the retraining sensor would run it.

Used by `pm demo`: each streamed day is ingested, its marts rebuilt and its drift checked; the
sensor's own decision function says whether to retrain; the retraining run carries its tags.
"""

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass, field

import dagster as dg

from pm_assets import paths, registry
from pm_assets.runner import materialize
from pm_assets.sensors import RETRAIN_ASSETS, WATCHED_CHECKS, FailedCheck, cooldown_seconds, decide


@dataclass
class LoopSummary:
    drift_start_day: str | None
    drift_detected_day: str | None = None
    failed_checks: list[dict] = field(default_factory=list)
    retrain_runs: list[str] = field(default_factory=list)
    champion_before: str | None = None
    champion_after: str | None = None
    metric_before: dict | None = None  # champion RUL RMSE on the promotion gate's validation points
    metric_after: dict | None = None
    days: list[dict] = field(default_factory=list)  # each streamed day's drift figures

    def write(self) -> None:
        path = paths.data_dir() / "demo_summary.json"
        path.write_text(json.dumps(asdict(self), indent=2, default=str))


def _check_failures(result: dg.ExecuteInProcessResult, day: str) -> list[FailedCheck]:
    watched = {key.name for key in WATCHED_CHECKS}
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed and e.check_name in watched]
    return [FailedCheck(e.check_name, day, int(time.time_ns()), result.run_id) for e in failed]


def stream(days: list[dt.date], drift_start: dt.date | None, log=print, retrain_config: dict | None = None) -> LoopSummary:
    """Run the daily work for each of `days`, retraining (with `retrain_config`) when the sensor would."""
    summary = LoopSummary(drift_start_day=drift_start and drift_start.isoformat(), champion_before=registry.alias_version(registry.CHAMPION))
    materialize("reference_profile")
    cursor: dict = {}
    for i, day in enumerate(days, 1):
        materialize("raw_telemetry raw_events", (day, day))
        materialize("dbt_daily_models", (day, day))
        report = materialize("drift_report", (day, day))
        failures = _check_failures(report, day.isoformat())
        [event] = [e for e in report.get_asset_materialization_events() if e.asset_key.to_user_string() == "drift_report"]
        meta = {k: v.value for k, v in event.materialization.metadata.items()}
        status = ", ".join(f.check for f in failures) or "no drift"
        summary.days.append({"day": day.isoformat(), "drifted_share": meta["drifted_share"], "prediction_psi": meta["prediction_psi"],
                             "failed": [f.check for f in failures]})
        log(f"  day {day} ({i}/{len(days)}): drifted feature share {meta['drifted_share']:.2f}, "
            f"prediction PSI {meta['prediction_psi']:.2f} -> {status}")
        # the cooldown runs on the simulated clock: one retraining per cooldown of simulated time
        clock = dt.datetime.combine(day, dt.time(23, 59)).timestamp()
        decision, cursor = decide(failures, cursor, clock, cooldown_seconds())
        if failures:
            summary.failed_checks += [{"day": f.partition, "check": f.check} for f in failures]
            summary.drift_detected_day = summary.drift_detected_day or day.isoformat()
        if isinstance(decision, dg.RunRequest):
            log(f"  retraining (triggered by {decision.tags['pm/trigger_check']} on {day})")
            run = materialize(" ".join(RETRAIN_ASSETS), tags=decision.tags, run_config=retrain_config)
            summary.retrain_runs.append(run.run_id)
            [gate] = [e for e in run.get_asset_materialization_events() if e.asset_key.to_user_string() == "champion_model"]
            meta = {k: v.value for k, v in gate.materialization.metadata.items()}
            summary.metric_before = {"champion_rul_rmse": meta["champion_rul_rmse"], "version": meta["champion_version_before"]}
            summary.metric_after = {"challenger_rul_rmse": meta["challenger_rul_rmse"], "version": meta["challenger_version"],
                                    "decision": meta["decision"], "basis": meta["basis"]}
            log(f"  promotion gate: {meta['decision']} on {meta['basis']} (champion v{meta['champion_version_before']} RMSE "
                f"{meta['champion_rul_rmse']:.2f}, challenger v{meta['challenger_version']} RMSE {meta['challenger_rul_rmse']:.2f})")
    summary.champion_after = registry.alias_version(registry.CHAMPION)
    summary.write()
    return summary
