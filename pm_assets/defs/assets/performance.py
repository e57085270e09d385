"""Accuracy with delayed ground truth: the champion's (and a challenger's) daily predictions are
logged, and judged once their truth has matured (`pm_assets.storage.predictions`).
"""

import datetime as dt
import math

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field

from pm_assets.core.constants import FAILURE
from pm_assets.core.metrics import expected_rmse, live_metrics
from pm_assets.core.models import ModelBundle
from pm_assets.core.scoring import with_predictions
from pm_assets.defs.partitions import daily_partitions, day_window, single_run_backfill
from pm_assets.defs.resources import WarehouseResource
from pm_assets.storage import feature_store, registry, shared_snapshots
from pm_assets.storage.predictions import PREDICTIONS_TABLE, read_matured
from pm_assets.storage.warehouse import create_table, table_columns, transaction

def _score_day(con, day: dt.date, bundles: dict[str, ModelBundle], table_spec: str | None) -> pl.DataFrame:
    """Every model's predictions of the day's stored feature rows (read once)."""
    start, end = day_window(day.isoformat())
    for version, bundle in bundles.items():
        if table_spec is not None and feature_store.spec_id(bundle.feature_spec) != table_spec:
            raise dg.Failure(f"model v{version} was trained on another feature spec than the stored features ({table_spec}): "
                             "retrain it (the `retrain` job) on the current features")
    features = feature_store.read_rows(con, start, end)
    logged = []
    for version, bundle in bundles.items():
        scored = with_predictions(bundle, features)
        if scored.height:
            logged.append(scored.select("machine_id", "ts", pl.lit(version).alias("model_version"), "predicted_rul", "failure_probability",
                                        (pl.col("failure_probability") >= bundle.threshold).alias("alert"), "rul_lower", "rul_upper"))
    return pl.concat(logged) if logged else pl.DataFrame()


@dg.asset(group_name="monitoring", kinds={"duckdb"}, partitions_def=daily_partitions, backfill_policy=single_run_backfill,
          deps=["champion_model", "machine_features"])
def champion_predictions(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The champion's RUL and failure probability for each stored feature row of the day(s), and the challenger's
    in shadow, in `monitoring.predictions`."""
    versions = {alias: registry.alias_version(alias) for alias in (registry.CHAMPION, registry.CHALLENGER)}
    if versions[registry.CHAMPION] is None:
        raise dg.Failure("no champion to score with: materialize champion_model first")
    bundles = {v: registry.load_version(v).bundle for v in dict.fromkeys(v for v in versions.values() if v is not None)}
    rows = alerts = 0
    with warehouse.connect() as con:
        con.execute("create schema if not exists monitoring")
        create_table(con, PREDICTIONS_TABLE, "(machine_id varchar, ts timestamp, model_version varchar, predicted_rul double, "
                     "failure_probability double, alert boolean, rul_lower double, rul_upper double)")
        for column in {"rul_lower", "rul_upper"} - set(table_columns(con, PREDICTIONS_TABLE) or []):  # a table from before RUL ranges
            con.execute(f"alter table {PREDICTIONS_TABLE} add column {column} double")
        for key in context.partition_keys:
            day = dt.date.fromisoformat(key)
            _, _, table_spec = feature_store.read_state(con, day + dt.timedelta(days=1))
            predictions = _score_day(con, day, bundles, table_spec)
            start, end = day_window(key)
            with transaction(con, **({"_predictions": predictions} if predictions.height else {})):
                con.execute(f"delete from {PREDICTIONS_TABLE} where ts >= $start and ts < $end", {"start": start, "end": end})
                if predictions.height:
                    con.execute(f"insert into {PREDICTIONS_TABLE} by name select * from _predictions")
            champion = predictions.filter(pl.col("model_version") == versions[registry.CHAMPION]) if predictions.height else predictions
            rows, alerts = rows + champion.height, alerts + (int(champion["alert"].sum()) if champion.height else 0)
    return dg.MaterializeResult(metadata={"rows": rows, "champion_version": versions[registry.CHAMPION],
                                          "challenger_version": str(versions[registry.CHALLENGER]), "alerts": alerts})


class PerformanceConfig(dg.Config):
    window_days: int = Field(default=14, ge=1)  # predictions of the last `window_days` days (the checked one included) are judged
    min_matured_rows: int = Field(default=200, ge=1)  # fewer matured RUL labels than this: RMSE is not judged yet
    max_rmse_ratio: float = Field(default=1.5, gt=0)  # fails when live RUL RMSE exceeds what cross-validation predicts for the same rows by this factor
    # a new failure mode shows first as failures the alert missed: judged from `min_judged_failures` matured failures
    min_judged_failures: int = Field(default=3, ge=1)
    min_caught_share: float = Field(default=0.5, ge=0, le=1)  # fails when fewer of the judged failures than this were alerted on in time
    min_lead_hours: float = Field(default=12.0, ge=0)  # an alert is in time when it fired at least this long before the failure
    # RUL ranges: judged from `min_matured_rows` matured RULs of at least `min_range_machines` machines (rows of one
    # machine are strongly correlated); fails when they hold the true RUL less often than nominal minus this margin
    min_range_machines: int = Field(default=10, ge=1)
    max_coverage_shortfall: float = Field(default=0.10, ge=0, lt=1)
    # `new_failures` (a warning): fails once the failures since the newest model's training set reach this share of
    # those it was trained on, and at least `min_new_failures`, so a fleet that does not drift still gets a
    # challenger that learned from them (the gate decides whether it serves)
    new_failure_share: float = Field(default=0.25, ge=0)
    min_new_failures: int = Field(default=10, ge=1)


@dg.asset(
    group_name="monitoring",
    partitions_def=daily_partitions,
    deps=["champion_predictions", "machine_events", "challenger_gate"],  # judges the champion after the day's gate
    check_specs=[dg.AssetCheckSpec("performance_degradation", asset="model_performance",
                                   description="Live RUL RMSE of matured predictions against what cross-validation predicts for rows "
                                               "as close to failure, and the share of matured failures the alert caught in time"),
                 dg.AssetCheckSpec("interval_coverage", asset="model_performance",
                                   description="Share of matured RULs inside their predicted range, against the range's nominal coverage"),
                 dg.AssetCheckSpec("new_failures", asset="model_performance",
                                   description="Failures seen since the newest model's training set, against how many it was trained on")],
)
def model_performance(context: dg.AssetExecutionContext, config: PerformanceConfig, warehouse: WarehouseResource):
    """Live RMSE, precision, recall and alert lead time of the champion's logged predictions whose truth is known by the end of the day."""
    _, end = day_window(context.partition_key)
    window_start = end - dt.timedelta(days=config.window_days)
    version = registry.alias_version(registry.CHAMPION)
    if version is None:
        raise dg.Failure("no champion to judge: materialize champion_model first")
    bundle = registry.load_version(version).bundle
    with warehouse.connect(read_only=True) as con:
        rows = read_matured(con, [version], window_start, end, bundle.label_config)
        new_failures = new_failures_check(con, config, end, context.partition_key)
    live = live_metrics(rows, bundle, config.min_lead_hours)
    truth = rows["rul"].drop_nulls().to_numpy()
    expected = expected_rmse(bundle.metrics, truth, bundle.label_config.rul_cap_hours) if len(truth) else float("nan")
    ratio = live["rul_rmse"] / expected if len(truth) else float("nan")
    metadata = {"model_version": version, "window_start": str(window_start.date()), "predictions": rows.height,
                **{k: float(v) for k, v in live.items()}, "expected_rul_rmse": float(expected), "rmse_ratio": float(ratio)}
    yield dg.MaterializeResult(metadata=metadata)
    rmse_judged = live["rul_rows"] >= config.min_matured_rows and np.isfinite(ratio)
    alerts_judged = live["failures_judged"] >= config.min_judged_failures
    verdicts = []
    if rmse_judged:
        verdicts.append(f"live RUL RMSE {ratio:.2f}x the expected (at most {config.max_rmse_ratio:g}x)")
    if alerts_judged:
        verdicts.append(f"{live['failures_caught_share']:.0%} of {live['failures_judged']} matured failures alerted on "
                        f"{config.min_lead_hours:g} h ahead (at least {config.min_caught_share:.0%})")
    failed = (rmse_judged and ratio > config.max_rmse_ratio) or (alerts_judged and live["failures_caught_share"] < config.min_caught_share)
    yield dg.AssetCheckResult(
        check_name="performance_degradation",
        passed=not failed,
        description="; ".join(verdicts) or (f"not judged: {live['rul_rows']} matured predictions (judged from {config.min_matured_rows}) "
                                           f"and {live['failures_judged']} matured failures (judged from {config.min_judged_failures})"),
        metadata={**metadata, "max_rmse_ratio": config.max_rmse_ratio, "min_caught_share": config.min_caught_share,
                  "partition": context.partition_key},
    )
    coverage = coverage_check(rows, bundle, config, context.partition_key)
    yield coverage
    yield new_failures
    caught = round(live["failures_caught_share"] * live["failures_judged"]) if live["failures_judged"] else 0
    shared_snapshots.publish_figures("performance", {  # for /metrics and the fleet dashboard
        "day": context.partition_key, "window_days": config.window_days, "model_version": version,
        "failures_caught": caught, "failures_missed": int(live["failures_judged"]) - caught,
        "live_rul_rmse": float(live["rul_rmse"]) if live["rul_rows"] else float("nan"),
        "rul_range_coverage": coverage.metadata["live_coverage"].value})


def coverage_check(rows: pl.DataFrame, bundle: ModelBundle, config: PerformanceConfig, partition: str) -> dg.AssetCheckResult:
    """`interval_coverage`: fails when matured RULs fall inside their ranges clearly less often than the nominal coverage."""
    nominal = bundle.intervals.coverage if bundle.intervals is not None else float("nan")
    judged = rows.filter(pl.col("rul").is_not_null() & pl.col("rul_lower").is_not_null()) if "rul_lower" in rows.columns else rows.clear()
    machines = judged["machine_id"].n_unique()
    inside = judged.select(((pl.col("rul") >= pl.col("rul_lower")) & (pl.col("rul") <= pl.col("rul_upper"))).mean()).item() \
        if judged.height else float("nan")
    metadata = {"nominal_coverage": float(nominal), "live_coverage": float(inside if inside is not None else "nan"),
                "matured_rows": judged.height, "machines": machines, "partition": partition,
                "max_coverage_shortfall": config.max_coverage_shortfall}
    if judged.height < config.min_matured_rows or machines < config.min_range_machines or not np.isfinite(nominal):
        return dg.AssetCheckResult(check_name="interval_coverage", passed=True, metadata=metadata,
                                   description=f"not judged: {judged.height} matured RULs with a range from {machines} machines "
                                               f"(judged from {config.min_matured_rows} rows of {config.min_range_machines} machines)")
    failed = inside < nominal - config.max_coverage_shortfall
    return dg.AssetCheckResult(check_name="interval_coverage", passed=not failed, metadata=metadata,
                               description=f"{inside:.0%} of {judged.height} matured RULs inside their range (nominal {nominal:.0%}, "
                                           f"at least {nominal - config.max_coverage_shortfall:.0%})")


def new_failures_check(con, config: PerformanceConfig, end: dt.datetime, partition: str) -> dg.AssetCheckResult:
    """`new_failures`: warns (and so requests a retraining) once enough failures came after the newest model's training set."""
    newest = registry.newest_version()
    tags = registry.version_tags(newest) if newest else {}
    metadata = {"model_version": str(newest), "partition": partition, "new_failure_share": config.new_failure_share,
                "min_new_failures": config.min_new_failures}
    if "labels_as_of" not in tags:
        return dg.AssetCheckResult(check_name="new_failures", passed=True, metadata=metadata,
                                   description=f"not judged: model v{newest} does not record when its training set was drawn")
    known_then, trained_on = dt.datetime.fromisoformat(tags["labels_as_of"]), int(tags["failures"])
    new = con.execute("select count(*) from machine_events where event_type = $failure and ts >= $since and ts < $end",
                      {"failure": FAILURE, "since": known_then, "end": end}).fetchone()[0]
    needed = max(config.min_new_failures, math.ceil(config.new_failure_share * trained_on))
    metadata |= {"new_failures": new, "trained_on_failures": trained_on, "retrain_from": needed}
    return dg.AssetCheckResult(
        check_name="new_failures", passed=new < needed, severity=dg.AssetCheckSeverity.WARN, metadata=metadata,
        description=f"{new} failures since v{newest}'s training set of {known_then:%Y-%m-%d %H:%M} ({trained_on} failures in it); "
                    f"a new model is trained from {needed}")
