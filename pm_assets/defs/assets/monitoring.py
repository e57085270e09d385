"""Drift monitoring: a reference profile of the champion's training data, and a daily drift report.

The checks decide on binned PSI per operating regime (`pm_assets.core.drift_reference`, seconds at 1M
rows): feature drift on the residuals of the sensors' relations (wear moves levels, not relations),
prediction drift on the champion's outputs. The Evidently report, slower, is kept for people and
runs on a sample.
"""

import datetime as dt
import pickle
from typing import Literal

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field

from pm_assets.core.drift import MIN_ROWS_PER_REGIME
from pm_assets.core.drift_reference import EVIDENTLY_SAMPLE, DriftReference, compare
from pm_assets.core.features import MIN_UNKNOWN_READINGS, outside_regimes
from pm_assets.defs.partitions import daily_partitions, day_window
from pm_assets.defs.resources import WarehouseResource
from pm_assets.storage import feature_store, model_files, paths, registry, shared_snapshots
from pm_assets.storage.predictions import PREDICTIONS_TABLE
from pm_assets.storage.reference import write_reference

@dg.asset(group_name="monitoring", deps=["champion_model", "machine_features"])
def reference_profile(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Sensor relations and bins of the champion's features and predictions over its training data, per regime.

    Also refitted by `challenger_gate` when it promotes a challenger."""
    version = registry.alias_version(registry.CHAMPION)
    if version is None:
        raise dg.Failure("no champion to monitor: materialize champion_model first")
    with warehouse.connect(read_only=True) as con:
        return dg.MaterializeResult(metadata=write_reference(con, version))


def logged_day(warehouse: WarehouseResource, start: dt.datetime, end: dt.datetime, version: str, columns: list[str]) -> pl.DataFrame:
    """The stored `columns` of the day's features beside model `version`'s logged predictions of the same rows."""
    with warehouse.connect(read_only=True) as con:
        features = feature_store.read_rows(con, start, end, columns)
        predictions = con.execute(f"select machine_id, ts, predicted_rul, failure_probability from {PREDICTIONS_TABLE} "
                              "where ts >= $start and ts < $end and model_version = $version",
                              {"start": start, "end": end, "version": version}).pl()
    return features.join(predictions, on=["machine_id", "ts"], how="inner")


class DriftConfig(dg.Config):
    """Defaults suit daily batches of about a thousand readings: on quiet days residual PSI stays
    under ~0.1 (simulated fleet and C-MAPSS FD001), a recalibrated sensor scores 0.2 to 1."""

    psi_threshold: float = Field(default=0.15, gt=0)  # a sensor's residual drifted above this PSI
    max_drifted_share: float = Field(default=0.1, ge=0, le=1)  # feature_drift fails above this share of drifted sensors
    max_prediction_psi: float = Field(default=0.6, gt=0)  # prediction_drift fails above this PSI of either prediction
    # the Evidently HTML report, for people: "always", "on_drift" (days feature_drift fails) or "never";
    # it is the slowest part of a quiet day (~7 s, mostly loading Evidently), and the checks never need it
    evidently_report: Literal["always", "on_drift", "never"] = "on_drift"
    # unknown_regimes fails from this many of the day's readings in none of the regimes the features' spec knows (a
    # stray reading is not a new operating condition)
    min_unknown_readings: int = Field(default=MIN_UNKNOWN_READINGS, ge=1)


@dg.asset(
    group_name="monitoring",
    partitions_def=daily_partitions,
    # after the day's warehouse write and the day's promotion decision (which may refit the reference)
    deps=["reference_profile", "machine_features", "champion_predictions", "challenger_gate"],
    check_specs=[
        dg.AssetCheckSpec("feature_drift", asset="drift_report",
                          description="Share of sensors whose relation to the others drifted (PSI of residuals per regime)"),
        dg.AssetCheckSpec("prediction_drift", asset="drift_report",
                          description="PSI of the champion's predictions (a warning: the reference predictions are in-sample)"),
        dg.AssetCheckSpec("unknown_regimes", asset="drift_report",
                          description="The day's readings run in operating regimes the features' spec knows"),
    ],
)
def drift_report(context: dg.AssetExecutionContext, config: DriftConfig, warehouse: WarehouseResource):
    """The day's stored features and logged predictions against the reference: PSI per column and regime, and an
    Evidently HTML report (by default only on days `feature_drift` fails)."""
    if not paths.reference_path().exists():
        raise dg.Failure(f"no reference profile at {paths.reference_path()}: materialize reference_profile first")
    reference: DriftReference = pickle.loads(paths.reference_path().read_bytes())
    day, end = day_window(context.partition_key)
    scored = logged_day(warehouse, day, end, reference.version, [*reference.relations.columns, "regime"])
    if scored.is_empty():
        raise dg.Failure(f"no features with v{reference.version}'s logged predictions on {context.partition_key}: "
                         "materialize machine_features and champion_predictions for it first")
    drift = compare(reference, scored, config.psi_threshold)
    failed = drift.drifted_share > config.max_drifted_share
    wanted = config.evidently_report == "always" or (config.evidently_report == "on_drift" and failed)
    html = _evidently_html(reference.sample, drift.monitored, context.partition_key) if wanted else None
    yield dg.MaterializeResult(metadata={
        "rows": scored.height,
        "champion_version": reference.version,
        "drifted_share": drift.drifted_share,
        "prediction_psi": drift.prediction_psi,
        "psi_by_column": dg.MetadataValue.json({c: round(v, 4) for c, v in sorted(drift.scores.items(), key=lambda kv: -kv[1])}),
        **({"report": dg.MetadataValue.path(str(html))} if html else {}),
    })
    shared_snapshots.publish_figures("drift", {"day": context.partition_key, "drifted_share": float(drift.drifted_share),
                                               "prediction_psi": float(drift.prediction_psi), "champion_version": reference.version})
    top = dict(sorted(drift.residual_scores.items(), key=lambda kv: -kv[1])[:5])
    judged = any(np.isfinite(v) for v in drift.residual_scores.values())
    yield dg.AssetCheckResult(check_name="feature_drift", passed=not failed,
                              description=(f"{drift.drifted_share:.0%} of the sensors drifted (at most {config.max_drifted_share:.0%}); "
                                           f"largest PSI: {', '.join(f'{c} {v:.2f}' for c, v in list(top.items())[:3])}") if judged
                              else f"not judged: fewer than {MIN_ROWS_PER_REGIME} readings in every regime",
                              metadata={"drifted_share": drift.drifted_share, "max_drifted_share": config.max_drifted_share,
                                        "psi_threshold": config.psi_threshold, "top_columns": dg.MetadataValue.json(top),
                                        "partition": context.partition_key})
    # NaN: too few readings in every regime to judge, which is not drift (and not the CLI's "passed" beside Dagster's "failed")
    psi_judged = bool(np.isfinite(drift.prediction_psi))
    yield dg.AssetCheckResult(check_name="prediction_drift", passed=not psi_judged or drift.prediction_psi <= config.max_prediction_psi,
                              severity=dg.AssetCheckSeverity.WARN,
                              description=None if psi_judged else f"not judged: fewer than {MIN_ROWS_PER_REGIME} readings in every regime",
                              metadata={"prediction_psi": drift.prediction_psi, "max_prediction_psi": config.max_prediction_psi,
                                        "partition": context.partition_key})
    yield _unknown_regimes_check(warehouse, day, end, config, context.partition_key)


def unknown_regime_readings(warehouse: WarehouseResource, start: dt.datetime, end: dt.datetime) -> tuple[pl.DataFrame, int]:
    """The readings of [start, end) that run in none of the operating regimes of the stored features' spec, and how many
    readings there were. Their features are normalised as if they ran in the nearest regime: the champion reads them
    wrongly (a new flight condition looks like wear) until a retraining refits the spec."""
    spec = model_files.load_feature_spec()
    columns = ", ".join(["machine_id", "ts", *spec.settings])
    with warehouse.connect(read_only=True) as con:
        readings = con.execute(f"select {columns} from machine_timeseries where ts >= $start and ts < $end",
                               {"start": start, "end": end}).pl()
    return readings.filter(pl.Series(outside_regimes(readings, spec))).select("machine_id", "ts"), readings.height


def _unknown_regimes_check(warehouse: WarehouseResource, start: dt.datetime, end: dt.datetime, config: DriftConfig,
                             partition: str) -> dg.AssetCheckResult:
    unknown, total = unknown_regime_readings(warehouse, start, end)
    machines = unknown["machine_id"].unique().sort().to_list()
    failed = unknown.height >= config.min_unknown_readings
    description = (f"{unknown.height:,} of the day's {total:,} readings, of {len(machines)} machine(s) ({', '.join(machines[:5])}"
                   f"{', ...' if len(machines) > 5 else ''}), ran in none of the operating regimes the features know: their "
                   "scores read a new condition as wear until a retraining refits the features" if unknown.height
                   else f"all {total:,} readings ran in known operating regimes")
    return dg.AssetCheckResult(check_name="unknown_regimes", passed=not failed, description=description,
                               metadata={"unknown_readings": unknown.height, "readings": total, "machines": len(machines),
                                         "min_unknown_readings": config.min_unknown_readings, "partition": partition})


def _evidently_html(reference: pl.DataFrame, current: pl.DataFrame, day: str):
    from evidently import Report
    from evidently.presets import DataDriftPreset

    sample = current.sample(min(EVIDENTLY_SAMPLE, current.height), seed=0)
    snapshot = Report([DataDriftPreset()]).run(current_data=sample.to_pandas(), reference_data=reference.to_pandas())
    folder = paths.reports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(folder / f"drift_{day}.html"))
    return folder / f"drift_{day}.html"
