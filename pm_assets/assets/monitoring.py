"""Drift monitoring: a reference profile of the champion's training data, and a daily drift report.

The checks decide on binned PSI per operating regime (`pm_assets.drift`, seconds at 1M rows); the
Evidently report, slower, is kept for people and runs on a sample.
"""

import datetime as dt
import pickle

import dagster as dg
import numpy as np
import polars as pl

from pm_assets import paths, registry
from pm_assets.drift import drifted_share, fit_reference, psi
from pm_assets.features import build_features
from pm_assets.partitions import daily_partitions
from pm_assets.assets.training import read_history
from pm_assets.resources import WarehouseResource

PREDICTION_COLUMNS = ("predicted_rul", "failure_probability")
EVIDENTLY_SAMPLE = 5_000


def _monitored_columns(spec) -> list[str]:
    """Each sensor's regime-normalised reading: rolling means move slowly and vary more between days."""
    return [f"{s}__now" for s in spec.sensors]


def _scored_features(bundle, warehouse: WarehouseResource, keep_from: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """Champion features and predictions of readings in [keep_from, end), computed over each machine's
    whole history before `end` (life start, baseline, time since service), as in training."""
    readings, events = read_history(warehouse, until=end)
    features = build_features(readings, bundle.feature_spec, events).filter(pl.col("ts") >= keep_from)
    if features.is_empty():
        return features
    rul, probability = bundle.predict(features.select(bundle.feature_names).to_numpy())
    return features.with_columns(pl.Series("predicted_rul", rul), pl.Series("failure_probability", probability))


def _arrays(frame: pl.DataFrame, columns: list[str]) -> dict[str, np.ndarray]:
    return {c: frame[c].cast(pl.Float64).to_numpy() for c in columns}


@dg.asset(group_name="monitoring", deps=["champion_model"])
def reference_profile(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Bins of the champion's features and predictions over the data it was trained on, per regime."""
    version = registry.alias_version(registry.CHAMPION)
    if version is None:
        raise dg.Failure("no champion to monitor: materialize champion_model first")
    champion = registry.load_version(version)
    tags = registry.version_tags(version)
    start, end = dt.datetime.fromisoformat(tags["data_from"]), dt.datetime.fromisoformat(tags["data_to"]) + dt.timedelta(microseconds=1)
    scored = _scored_features(champion.bundle, warehouse, start, end)
    columns = _monitored_columns(champion.bundle.feature_spec) + list(PREDICTION_COLUMNS)
    profile = fit_reference(_arrays(scored, columns), scored["regime"].to_numpy())
    sample = scored.select(columns).sample(min(EVIDENTLY_SAMPLE, scored.height), seed=0)
    folder = paths.data_dir() / "monitoring"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reference.pkl").write_bytes(pickle.dumps({"version": version, "profile": profile, "sample": sample}))
    return dg.MaterializeResult(metadata={"champion_version": version, "rows": scored.height, "columns": len(columns),
                                          "regimes": len(profile.regimes), "from": str(start), "to": str(end)})


class DriftConfig(dg.Config):
    """Defaults suit daily batches of about a thousand readings, where PSI is noisy (up to ~0.45 on quiet days)."""

    psi_threshold: float = 0.4  # a column drifted above this PSI
    max_drifted_share: float = 0.1  # feature_drift fails above this share of drifted columns
    max_prediction_psi: float = 0.6  # prediction_drift fails above this PSI of either prediction


@dg.asset(
    group_name="monitoring",
    partitions_def=daily_partitions,
    deps=["reference_profile", "machine_timeseries"],
    check_specs=[
        dg.AssetCheckSpec("feature_drift", asset="drift_report", description="Share of drifted features (PSI per regime)"),
        dg.AssetCheckSpec("prediction_drift", asset="drift_report",
                          description="PSI of the champion's predictions (a warning: the reference predictions are in-sample)"),
    ],
)
def drift_report(context: dg.AssetExecutionContext, config: DriftConfig, warehouse: WarehouseResource):
    """A day's features and predictions against the reference: PSI per column and regime, and an Evidently HTML report."""
    reference_path = paths.data_dir() / "monitoring" / "reference.pkl"
    if not reference_path.exists():
        raise dg.Failure(f"no reference profile at {reference_path}: materialize reference_profile first")
    reference = pickle.loads(reference_path.read_bytes())
    champion = registry.load_version(reference["version"]).bundle
    day = dt.datetime.fromisoformat(context.partition_key)
    scored = _scored_features(champion, warehouse, day, day + dt.timedelta(days=1))
    if scored.is_empty():
        raise dg.Failure(f"no readings in machine_timeseries on {context.partition_key}")
    profile = reference["profile"]
    features = _monitored_columns(champion.feature_spec)
    result = psi(profile, _arrays(scored, profile.columns), scored["regime"].to_numpy())
    feature_scores = {c: result.scores[c] for c in features}
    share = drifted_share(feature_scores, config.psi_threshold)
    prediction_psi = max(result.scores[c] for c in PREDICTION_COLUMNS)
    html = _evidently_html(reference["sample"], scored.select(profile.columns), context.partition_key)
    yield dg.MaterializeResult(metadata={
        "rows": scored.height,
        "drifted_share": share,
        "prediction_psi": prediction_psi,
        "psi_by_column": dg.MetadataValue.json({c: round(v, 4) for c, v in sorted(result.scores.items(), key=lambda kv: -kv[1])}),
        "report": dg.MetadataValue.path(str(html)),
    })
    top = dict(sorted(feature_scores.items(), key=lambda kv: -kv[1])[:5])
    yield dg.AssetCheckResult(check_name="feature_drift", passed=share <= config.max_drifted_share,
                              metadata={"drifted_share": share, "max_drifted_share": config.max_drifted_share,
                                        "top_columns": dg.MetadataValue.json(top), "partition": context.partition_key})
    yield dg.AssetCheckResult(check_name="prediction_drift", passed=prediction_psi <= config.max_prediction_psi,
                              severity=dg.AssetCheckSeverity.WARN,
                              metadata={"prediction_psi": prediction_psi, "max_prediction_psi": config.max_prediction_psi,
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
