"""Drift monitoring: a reference profile of the champion's training data, and a daily drift report.

The checks decide on binned PSI per operating regime (`pm_assets.drift_reference`, seconds at 1M
rows): feature drift on the residuals of the sensors' relations (wear moves levels, not relations),
prediction drift on the champion's outputs. The Evidently report, slower, is kept for people and
runs on a sample.
"""

import datetime as dt
import pickle

import dagster as dg
import numpy as np
import polars as pl

from pm_assets import paths, registry
from pm_assets.assets.training import read_history
from pm_assets.drift import MIN_ROWS_PER_REGIME
from pm_assets.drift_reference import EVIDENTLY_SAMPLE, DriftReference, build_reference, compare
from pm_assets.features import build_features
from pm_assets.partitions import daily_partitions, day_window
from pm_assets.resources import WarehouseResource
from pm_assets.scoring import with_predictions


def scored_features(bundle, history: tuple[pl.DataFrame, pl.DataFrame], keep_from: dt.datetime) -> pl.DataFrame:
    """Features and predictions of the readings from `keep_from` on in `history` (readings, events from
    `read_history`), computed over each machine's whole history (life start, baseline, time since service), as in training."""
    readings, events = history
    return with_predictions(bundle, build_features(readings, bundle.feature_spec, events).filter(pl.col("ts") >= keep_from))


def _reference_path():
    return paths.data_dir() / "monitoring" / "reference.pkl"


def write_reference(version: str, warehouse: WarehouseResource) -> dict:
    """Fit and save the reference of model `version` on the data it was trained on; return its metadata."""
    champion = registry.load_version(version).bundle
    tags = registry.version_tags(version)
    start, end = dt.datetime.fromisoformat(tags["data_from"]), dt.datetime.fromisoformat(tags["data_to"]) + dt.timedelta(microseconds=1)
    scored = scored_features(champion, read_history(warehouse, until=end), start)
    reference = build_reference(version, champion.feature_spec, scored)
    path = _reference_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_name(".reference.pkl").write_bytes(pickle.dumps(reference))
    path.with_name(".reference.pkl").replace(path)
    return {"champion_version": version, "rows": scored.height, "columns": len(reference.profile.columns),
            "regimes": len(reference.profile.regimes), "from": str(start), "to": str(end)}


@dg.asset(group_name="monitoring", deps=["champion_model"])
def reference_profile(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Sensor relations and bins of the champion's features and predictions over its training data, per regime.

    Also refitted by `challenger_gate` when it promotes a challenger."""
    version = registry.alias_version(registry.CHAMPION)
    if version is None:
        raise dg.Failure("no champion to monitor: materialize champion_model first")
    return dg.MaterializeResult(metadata=write_reference(version, warehouse))


class DriftConfig(dg.Config):
    """Defaults suit daily batches of about a thousand readings: on quiet days residual PSI stays
    under ~0.1 (simulated fleet and C-MAPSS FD001), a recalibrated sensor scores 0.2 to 1."""

    psi_threshold: float = 0.15  # a sensor's residual drifted above this PSI
    max_drifted_share: float = 0.1  # feature_drift fails above this share of drifted sensors
    max_prediction_psi: float = 0.6  # prediction_drift fails above this PSI of either prediction


@dg.asset(
    group_name="monitoring",
    partitions_def=daily_partitions,
    # after the day's warehouse write and the day's promotion decision (which may refit the reference)
    deps=["reference_profile", "machine_timeseries", "champion_predictions", "challenger_gate"],
    check_specs=[
        dg.AssetCheckSpec("feature_drift", asset="drift_report",
                          description="Share of sensors whose relation to the others drifted (PSI of residuals per regime)"),
        dg.AssetCheckSpec("prediction_drift", asset="drift_report",
                          description="PSI of the champion's predictions (a warning: the reference predictions are in-sample)"),
    ],
)
def drift_report(context: dg.AssetExecutionContext, config: DriftConfig, warehouse: WarehouseResource):
    """A day's features and predictions against the reference: PSI per column and regime, and an Evidently HTML report."""
    if not _reference_path().exists():
        raise dg.Failure(f"no reference profile at {_reference_path()}: materialize reference_profile first")
    reference: DriftReference = pickle.loads(_reference_path().read_bytes())
    champion = registry.load_version(reference.version).bundle
    day, end = day_window(context.partition_key)
    scored = scored_features(champion, read_history(warehouse, until=end), day)
    if scored.is_empty():
        raise dg.Failure(f"no readings in machine_timeseries on {context.partition_key}")
    drift = compare(reference, scored, config.psi_threshold)
    html = _evidently_html(reference.sample, drift.monitored, context.partition_key)
    yield dg.MaterializeResult(metadata={
        "rows": scored.height,
        "champion_version": reference.version,
        "drifted_share": drift.drifted_share,
        "prediction_psi": drift.prediction_psi,
        "psi_by_column": dg.MetadataValue.json({c: round(v, 4) for c, v in sorted(drift.scores.items(), key=lambda kv: -kv[1])}),
        "report": dg.MetadataValue.path(str(html)),
    })
    top = dict(sorted(drift.residual_scores.items(), key=lambda kv: -kv[1])[:5])
    judged = any(np.isfinite(v) for v in drift.residual_scores.values())
    yield dg.AssetCheckResult(check_name="feature_drift", passed=drift.drifted_share <= config.max_drifted_share,
                              description=None if judged else f"not judged: fewer than {MIN_ROWS_PER_REGIME} readings in every regime",
                              metadata={"drifted_share": drift.drifted_share, "max_drifted_share": config.max_drifted_share,
                                        "psi_threshold": config.psi_threshold, "top_columns": dg.MetadataValue.json(top),
                                        "partition": context.partition_key})
    yield dg.AssetCheckResult(check_name="prediction_drift", passed=drift.prediction_psi <= config.max_prediction_psi,
                              severity=dg.AssetCheckSeverity.WARN,
                              metadata={"prediction_psi": drift.prediction_psi, "max_prediction_psi": config.max_prediction_psi,
                                        "partition": context.partition_key})


def _evidently_html(reference: pl.DataFrame, current: pl.DataFrame, day: str):
    from evidently import Report
    from evidently.presets import DataDriftPreset

    sample = current.sample(min(EVIDENTLY_SAMPLE, current.height), seed=0)
    snapshot = Report([DataDriftPreset()]).run(current_data=sample.to_pandas(), reference_data=reference.to_pandas())
    folder = paths.data_dir() / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(folder / f"drift_{day}.html"))
    return folder / f"drift_{day}.html"
