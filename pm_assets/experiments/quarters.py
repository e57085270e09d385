"""The quarterly C-MAPSS replay (`pm replay --quarters`): the first champion trains on part of FD001, then
the other engines stream quarter by quarter through the daily job, the checks, the retraining sensor and
the shadow gate, as in production. Its report says, per quarter, what the checks and retrainings did,
and on the same matured rows how the serving champion, the frozen first champion and the best one could
do compared.

The best one could do is out-of-fold: models cross-validated on the quarter's own engines (grouped by
engine, features fitted on them), each row predicted by a model that never saw its engine.
"""

import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import time

import numpy as np
import polars as pl

from pm_assets.core.features import FeatureSpec, fit_feature_spec, refit_reason
from pm_assets.core.models import ModelBundle, TrainConfig, build_training_set, cross_validate, make_estimator, sample_rows
from pm_assets.core.policies import table as policy_table
from pm_assets.core.scoring import with_predictions
from pm_assets.core.metrics import live_metrics, rul_metrics
from pm_assets.storage.predictions import PREDICTIONS_TABLE, with_labels
from pm_assets.drivers import loop
from pm_assets.drivers.loop import LoopSummary
from pm_assets.drivers.plan_review import policies_over_stream
from pm_assets.drivers.runner import ingest_stages, materialize, run_stages, train_stages
from pm_assets.sources.replay import Quarter, QuarterPlan
from pm_assets.storage import feature_store, landing, paths, registry, warehouse
from pm_assets.storage.atomic import write_atomic

#: The models of the best-one-could-do column (a gradient-boosting model like the candidates, cross-validated).
ORACLE_LIBRARY = "lightgbm"
#: What `live_metrics` needs of a row's truth, besides the predictions.
TRUTH_COLUMNS = ["machine_id", "ts", "rul", "fails_within_horizon", "hours_to_failure", "failure_id"]


def _in(day: str, quarter: Quarter) -> bool:
    return quarter.first_day.isoformat() <= day <= quarter.last_day.isoformat()


def _served(con, engines: list[str], serving: pl.DataFrame) -> pl.DataFrame:
    """The logged predictions of `engines` made by the champion serving on their day."""
    con.register("_serving", serving.to_arrow())
    con.register("_engines", pl.DataFrame({"machine_id": engines}).to_arrow())
    try:
        return con.sql(f"select p.* from {PREDICTIONS_TABLE} p join _engines using (machine_id) "
                       "join _serving s on s.day = cast(p.ts as date) and s.champion = p.model_version").pl()
    finally:
        con.unregister("_serving")
        con.unregister("_engines")


def _metrics(rows: pl.DataFrame, bundle) -> dict:
    live = live_metrics(rows, bundle)
    return {k: live[k] for k in ("rul_rmse", "rul_rows", "failure_precision", "failure_recall")}


def _oracle(con, engines: list[str], rows: pl.DataFrame, bundle, config: TrainConfig) -> tuple[pl.DataFrame, ModelBundle]:
    """`rows` with out-of-fold predictions from models cross-validated on `engines` alone (whole lives), and
    the bundle to judge them with (its alert threshold chosen out of fold)."""
    con.register("_engines", pl.DataFrame({"machine_id": engines}).to_arrow())
    try:
        readings = con.sql(f"select {feature_store.READING_COLUMNS} from machine_timeseries join _engines using (machine_id)").pl()
        events = con.sql("select machine_id, ts, event_type from machine_events join _engines using (machine_id)").pl()
    finally:
        con.unregister("_engines")
    spec = fit_feature_spec(readings, bundle.feature_spec.config)
    training = build_training_set(readings, events, spec, bundle.label_config)
    validation = cross_validate(ORACLE_LIBRARY, training, spec.feature_names, dataclasses.replace(config, n_folds=min(config.n_folds, len(engines))),
                                bundle.label_config)
    oof = validation.every_rul_prediction.select("machine_id", "ts", pl.col("rul_pred").alias("predicted_rul")).join(
        validation.failure_predictions.select("machine_id", "ts", pl.col("probability").alias("failure_probability")),
        on=["machine_id", "ts"], how="left")
    judged = rows.select(TRUTH_COLUMNS).join(oof, on=["machine_id", "ts"]).with_columns(pl.col("failure_probability").fill_null(0.0))
    return judged, dataclasses.replace(bundle, threshold=validation.threshold)


def _daily_retrained(con, judged: pl.DataFrame, bundle, config: TrainConfig, log=print) -> pl.DataFrame:
    """`judged` (machine_id, ts) predicted by the daily-retrain oracle: each day, a model trained that morning on every
    row of every engine whose truth was known by then (its engine had failed, or it had run a RUL cap since), with no
    gate and no cooldown: the best a policy could serve with the information available.

    Its features are those of that morning: the spec refitted, without labels, on the readings there were by then,
    whenever the platform's rule (`refit_reason`) says so; not the spec of every reading the replay will ever have,
    which would know a flight condition's regime and early-life normaliser before its first engine flew it."""
    readings = con.sql(f"select {feature_store.READING_COLUMNS} from machine_timeseries").pl()
    events = con.sql("select machine_id, ts, event_type from machine_events").pl()
    wanted = judged.select("machine_id", "ts").unique().with_columns(pl.col("ts").dt.truncate("1d").alias("_day"))
    by_day = sorted(((day, part) for (day,), part in wanted.partition_by("_day", as_dict=True).items()), key=lambda item: item[0])
    specs = specs_by_day(readings, [day for day, _ in by_day], bundle.feature_spec.config, log)
    predicted, started, done = [], time.monotonic(), 0
    for _, group in itertools.groupby(by_day, key=lambda item: id(specs[item[0]])):  # the days of one spec each
        group = list(group)
        if (spec := specs[group[0][0]]) is not None:
            predicted += _retrained_under(spec, group, readings, events, bundle, config)
        done += len(group)
        log(f"    daily-retrain oracle: {done} of {len(by_day)} days ({time.monotonic() - started:.0f} s)")
    return pl.concat(predicted) if predicted else pl.DataFrame(schema={"machine_id": pl.String, "ts": pl.Datetime, "predicted_rul": pl.Float64})


def _retrained_under(spec: FeatureSpec, days: list[tuple[dt.datetime, pl.DataFrame]], readings: pl.DataFrame,
                     events: pl.DataFrame, bundle, config: TrainConfig) -> list[pl.DataFrame]:
    """Each day's judged rows predicted by a model trained that morning, every day here under `spec` (its training set
    built once, and freed before the next spec's: each holds every labelled row's features)."""
    rows = build_training_set(readings, events, spec, bundle.label_config).filter(pl.col("rul").is_not_null())
    cap = bundle.label_config.rul_cap_hours
    index = rows.select("machine_id", "ts").with_row_index("_row")
    X, rul, known = rows.select(spec.feature_names).to_numpy(), rows["rul"].to_numpy(), known_from(rows, cap)
    predicted = []
    for day, part in days:
        train = sample_rows(known <= day.replace(tzinfo=dt.UTC).timestamp() / 3600, config.max_train_rows, config.seed)
        if len(train) == 0:
            continue
        model = make_estimator(ORACLE_LIBRARY, "rul", config).fit(X[train], rul[train])
        part = part.join(index, on=["machine_id", "ts"])
        predicted.append(part.select("machine_id", "ts").with_columns(
            pl.Series("predicted_rul", np.clip(model.predict(X[part["_row"].to_numpy()]), 0, cap))))
    return predicted


def specs_by_day(readings: pl.DataFrame, days: list[dt.datetime], config, log=print) -> dict[dt.datetime, FeatureSpec | None]:
    """The feature spec of each day's morning: fitted on the readings before the first day, and refitted on those
    before a later day whenever `refit_reason` says so (as `feature_spec` does, without its cooldown); None before any reading."""
    specs, spec = {}, None
    for day in days:
        seen = readings.filter(pl.col("ts") < day)
        if not seen.is_empty() and (reason := refit_reason(spec, config, seen)) is not None:
            spec = fit_feature_spec(seen, config, previous=spec)
            log(f"    daily-retrain oracle: features refitted for {day:%Y-%m-%d} ({reason})")
        specs[day] = spec
    return specs


def known_from(rows: pl.DataFrame, cap: float) -> np.ndarray:
    """Hours since the epoch from which each row's capped RUL is known: its engine's failure, or a cap after the row
    (by then the RUL is at least the cap), whichever comes first.

    >>> rows = pl.DataFrame({"ts": [dt.datetime(1970, 1, 1, 10)] * 2, "hours_to_failure": [5.0, None]})
    >>> known_from(rows, cap=125.0).tolist()
    [15.0, 135.0]
    """
    hours = rows["ts"].dt.epoch("s").to_numpy() / 3600
    return hours + np.fmin(rows["hours_to_failure"].cast(pl.Float64).fill_null(np.nan).to_numpy(), cap)


def _compared(serving: pl.DataFrame, frozen: pl.DataFrame, oracle: pl.DataFrame, retrained: pl.DataFrame,
              bundles: tuple[ModelBundle, ModelBundle, ModelBundle], frozen_version: str) -> dict:
    """The models' live metrics on the same rows, and how the serving champion stands against the others (the
    daily-retrain oracle is judged on its RUL alone: it has no failure model)."""
    row = {"serving": _metrics(serving, bundles[0]), "frozen": {"version": frozen_version, **_metrics(frozen, bundles[1])},
           "cross_validated": _metrics(oracle, bundles[2]),
           "daily_retrain": {"rul_rmse": rul_metrics(retrained["rul"], retrained["predicted_rul"])["rul_rmse"], "rul_rows": retrained.height}}
    row["serving_vs_cross_validated"] = row["serving"]["rul_rmse"] / row["cross_validated"]["rul_rmse"] - 1
    row["serving_vs_daily_retrain"] = row["serving"]["rul_rmse"] / row["daily_retrain"]["rul_rmse"] - 1
    row["serving_vs_frozen"] = 1 - row["serving"]["rul_rmse"] / row["frozen"]["rul_rmse"]
    return row


def late_days(quarter: Quarter) -> int:
    """The days at a quarter's end its "by the end of the quarter" figures are judged on: the last third.

    >>> late_days(Quarter("FD002", [], dt.date(2025, 1, 1), dt.date(2025, 1, 10)))
    4
    """
    return max(1, -(-((quarter.last_day - quarter.first_day).days + 1) // 3))


def quarter_table(quarters: list[Quarter], summary: LoopSummary, frozen: str, end: dt.datetime,
                  config: TrainConfig = TrainConfig(), log=print) -> list[dict]:
    """Per quarter: days each check failed, retrainings, promotions (and the alarm days after them), and the
    live metrics of the serving champion, the frozen first champion and the out-of-fold best on the same
    matured rows of the quarter's engines, truth as known at `end`."""
    frozen_bundle = registry.load_version(frozen).bundle
    label_config = frozen_bundle.label_config
    serving = pl.DataFrame([{"day": dt.date.fromisoformat(d["day"]), "champion": d["champion"]} for d in summary.days],
                           schema={"day": pl.Date, "champion": pl.String})
    table = []
    with warehouse.connect(paths.warehouse_path(), read_only=True) as con:
        judged = {}
        for quarter in quarters:
            served = _served(con, quarter.engines, serving)
            since = served["ts"].min() if served.height else end
            judged[quarter.name] = served, since, with_labels(con, served, since, end, label_config).filter(pl.col("rul").is_not_null())
        daily = _daily_retrained(con, pl.concat([rows.select("machine_id", "ts") for _, _, rows in judged.values()]), frozen_bundle, config, log)
        for quarter in quarters:
            served, since, rows = judged[quarter.name]
            checks: dict[str, int] = {}
            for failed in summary.failed_checks:
                if _in(failed["day"], quarter):
                    checks[failed["check"]] = checks.get(failed["check"], 0) + 1
            row = {
                "quarter": quarter.name, "days": f"{quarter.first_day}..{quarter.last_day}", "engines": len(quarter.engines),
                "failed_check_days": checks,
                "retrainings": [r for r in summary.retrains if _in(r["day"], quarter)],
                "promotions": [g for g in summary.gate_decisions if g["decision"] == "promoted" and _in(g["day"], quarter)]
                + [{"day": r["day"], "decision": r["decision"], "challenger_version": r["challenger_version"]}
                   for r in summary.retrains if r["decision"].startswith("champion replaced") and _in(r["day"], quarter)],
                "alarms_after_promotion": [a for a in summary.alarms_after_promotion if _in(a["promoted"], quarter)],
                "champions_serving": sorted(set(served["model_version"].to_list()), key=int),
            }
            if rows.height:
                # the serving champions' own alerts, whatever their thresholds
                alerts = rows.with_columns(pl.col("alert").cast(pl.Float64).alias("failure_probability"))
                mine = with_predictions(frozen_bundle, feature_store.read_rows_of(con, frozen_bundle.feature_spec, since, end).join(
                    rows.select(TRUTH_COLUMNS), on=["machine_id", "ts"]))
                oracle, oracle_bundle = _oracle(con, quarter.engines, rows, frozen_bundle, config)
                retrained = rows.select(TRUTH_COLUMNS).join(daily, on=["machine_id", "ts"]).with_columns(failure_probability=None)
                bundles = (dataclasses.replace(frozen_bundle, threshold=0.5), frozen_bundle, oracle_bundle)
                row |= _compared(alerts, mine, oracle, retrained, bundles, frozen)
                # by the end of the quarter: the rows predicted on its last days, by the champions serving then
                late = dt.datetime.combine(quarter.last_day - dt.timedelta(days=late_days(quarter) - 1), dt.time())
                until = dt.datetime.combine(quarter.last_day + dt.timedelta(days=1), dt.time())
                on_late = [frame.filter(pl.col("ts").is_between(late, until, closed="left")) for frame in (alerts, mine, oracle, retrained)]
                if on_late[0]["rul"].is_not_null().any():
                    row["last_days"] = {"from": late.date().isoformat(), "to": quarter.last_day.isoformat(), **_compared(*on_late, bundles, frozen)}
            table.append(row)
    return table


def _figures(name: str, engines: int | str, row: dict, events: str) -> str:
    s, f, cv, daily = row["serving"], row["frozen"], row["cross_validated"], row["daily_retrain"]
    recall = "/".join(f"{m['failure_recall']:.2f}" for m in (s, f, cv))
    return (f"{name:<8}{engines:>8}{s['rul_rows']:>8}{s['rul_rmse']:>9.2f}{f['rul_rmse']:>8.2f}{daily['rul_rmse']:>8.2f}{cv['rul_rmse']:>9.2f}"
            f"{row['serving_vs_daily_retrain']:>+10.0%}{row['serving_vs_cross_validated']:>+9.0%}{row['serving_vs_frozen']:>+10.0%}"
            f"{recall:>16}  {events}")


def describe(table: list[dict]) -> list[str]:
    """One line per quarter."""
    lines = [f"{'quarter':<8}{'engines':>8}{'rows':>8}{'serving':>9}{'frozen':>8}{'daily':>8}{'CV best':>9}{'vs daily':>10}{'vs best':>9}"
             f"{'vs frozen':>10}{'recall s/f/cv':>16}  checks failed (days); retrainings; promotions"]
    for row in table:
        checks = ", ".join(f"{check} {n}" for check, n in row["failed_check_days"].items()) or "none"
        events = f"{checks}; {len(row['retrainings'])} retraining(s); " + (", ".join(
            f"v{p['challenger_version']} {p['day']}" for p in row["promotions"]) or "no promotion")
        if "serving" not in row:
            lines.append(f"{row['quarter']:<8}{row['engines']:>8}{0:>8}  (no matured rows)  {events}")
            continue
        lines.append(_figures(row["quarter"], row["engines"], row, events))
        if "last_days" in row:
            lines.append(_figures("  end", "", row["last_days"], f"the rows of {row['last_days']['from']}..{row['last_days']['to']}"))
    return lines


def plan_id(plan: QuarterPlan) -> str:
    """Which plan a saved report belongs to: its quarters, their days and engines."""
    quarters = [[q.name, q.first_day.isoformat(), q.last_day.isoformat(), q.engines] for q in plan.quarters]
    return hashlib.sha256(json.dumps([plan.history.machines["machine_id"].to_list(), quarters]).encode()).hexdigest()[:16]


def _write_report(report: dict) -> None:
    write_atomic(paths.replay_report_path(), json.dumps(loop.no_nan(report), indent=2, default=str, allow_nan=False))


def saved_progress(plan: QuarterPlan, finished_too: bool = False) -> dict | None:
    """The report a replay of `plan` wrote after its last finished day (None: none, another plan's, or finished
    unless `finished_too`)."""
    path = paths.replay_report_path()
    if not path.exists():
        return None
    report = json.loads(path.read_text())
    return report if report.get("plan") == plan_id(plan) and (finished_too or not report.get("complete")) else None


def _first_champion(plan: QuarterPlan, ops: dict, log) -> str:
    days = landing.land_dataset(plan.history, paths.landing_dir())
    log(f"== first champion: {plan.history.machines.height} FD001 engines, {plan.history.telemetry.height:,} readings ({days[0]}..{days[-1]})")
    run_stages(ingest_stages((days[0], days[-1])), log=log)
    run_stages(train_stages((days[0], days[-1])), log=log, ops_config=ops)
    frozen = registry.alias_version(registry.CHAMPION)
    landing.land_dataset(plan.stream, paths.landing_dir())
    for quarter in plan.quarters:
        log(f"== quarter {quarter.name}: {len(quarter.engines)} engines coming into service {quarter.first_day}..{quarter.last_day}")
    materialize("machines")  # the new engines, before their readings arrive
    return frozen


def run(plan: QuarterPlan, cooldown_days: float = 3.0, candidate_config: dict | None = None, log=print) -> list[dict]:
    """Train the first champion on the plan's history, stream its quarters day by day, and report on them
    (printed, and written with the loop's summary to `paths.replay_report_path()`).

    The report is saved after every day: run again, a stopped replay of the same plan goes on from the day
    after its last finished one."""
    ops = {name: {"config": candidate_config} for name in ("catboost_model", "lightgbm_model")} if candidate_config else {}
    stream_days = [day for quarter in plan.quarters for day in quarter.days()]
    progress = saved_progress(plan)
    if progress:
        resume = (LoopSummary.from_dict(progress["summary"]), progress["saved_at"])
        frozen, done = progress["frozen"], len(progress["summary"]["days"])
        log(f"== resuming the replay stopped after {stream_days[done - 1]} ({done} of {len(stream_days)} days done); "
            f"to start over, delete {paths.replay_report_path()} and the data folder")
    else:
        frozen, done, resume = _first_champion(plan, ops, log), 0, None
    report = {"plan": plan_id(plan), "frozen": frozen, "complete": False, "days_total": len(stream_days)}

    def save(summary: LoopSummary) -> None:
        _write_report({**report, "days_done": len(summary.days), "saved_at": time.time(), "summary": dataclasses.asdict(summary)})

    drift_start = plan.stream.telemetry.filter(~pl.col("machine_id").str.starts_with("FD001"))["ts"].min().date()
    summary = loop.stream(stream_days[done:], drift_start, log=log, retrain_config={"ops": ops} if ops else None,
                          resume=resume, on_day=save, cooldown_hours=cooldown_days * 24)
    table = report_on(plan, summary, frozen, candidate_config, log)
    _write_report({**report, "complete": True, "days_done": len(summary.days), "quarters": table, "summary": dataclasses.asdict(summary)})
    log(f"written to {paths.replay_report_path()}")
    return table


def report_saved(plan: QuarterPlan, candidate_config: dict | None = None, log=print) -> list[dict]:
    """The per-quarter table of a replay's finished days, stopped or complete, judged again without streaming more
    (written to its report)."""
    progress = saved_progress(plan, finished_too=True)
    if not progress:
        raise FileNotFoundError(f"no replay of this plan to report on in {paths.replay_report_path()}")
    summary = LoopSummary.from_dict(progress["summary"])
    loop.judge_healing(summary)
    table = report_on(plan, summary, progress["frozen"], candidate_config, log)
    _write_report({**progress, "quarters": table, "summary": dataclasses.asdict(summary)})
    log(f"days {summary.days[0]['day']}..{summary.days[-1]['day']} ({len(summary.days)} of {progress['days_total']}); "
        f"written to {paths.replay_report_path()}")
    return table


def report_on(plan: QuarterPlan, summary: LoopSummary, frozen: str, candidate_config: dict | None = None, log=print) -> list[dict]:
    """The per-quarter table of the days `summary` streamed (all of them, or those of a stopped run), printed."""
    log("== per quarter: live RUL RMSE on the quarter's engines' matured rows (serving champion, frozen first champion, "
        "out-of-fold best), and the alert's recall")
    last = dt.date.fromisoformat(summary.days[-1]["day"])
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time())
    table = quarter_table(plan.quarters, summary, frozen, end,
                          TrainConfig(**{k: v for k, v in (candidate_config or {}).items() if k in ("iterations", "n_folds", "seed")}), log)
    for line in describe(table):
        log(f"  {line}")
    for line in summary.describe():
        log(f"  {line}")
    log("== per quarter: each maintenance policy on its engines from the quarter's first day, acting on the serving champions' "
        "logged predictions (a service ends an engine's trajectory; crew 2/day)")
    for quarter, row in zip(plan.quarters, table):
        row["policies"] = policies_over_stream(summary, since=quarter.first_day, machines=quarter.engines)
        log(f"  {quarter.name}")
        for line in policy_table(row["policies"]).splitlines():
            log(f"    {line}")
    return table
