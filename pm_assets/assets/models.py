"""Candidate models (CatBoost, LightGBM) tracked in MLflow, and the champion chosen among them."""

import datetime as dt

import dagster as dg
import mlflow
import numpy as np
import polars as pl

from pm_assets import plots, registry, store
from pm_assets.assets.training import read_history
from pm_assets.features import build_features
from pm_assets.metrics import rul_metrics, should_promote
from pm_assets.models import TrainConfig, fit_bundle
from pm_assets.resources import WarehouseResource


class CandidateConfig(dg.Config):
    iterations: int = 250
    learning_rate: float = 0.08
    n_folds: int = 5
    cuts_per_machine: int = 5
    max_train_rows: int = 60_000
    miss_cost: float = 10.0
    false_alarm_cost: float = 1.0
    seed: int = 42


def _train_candidate(context: dg.AssetExecutionContext, library: str, config: CandidateConfig) -> dg.MaterializeResult:
    frame, spec, label_config = store.load_training_set()
    train_config = TrainConfig(**config.model_dump())
    context.log.info(f"{library}: {config.n_folds}-fold machine-grouped CV on {frame.height:,} rows, then the final fit")
    bundle, validation = fit_bundle(library, frame, spec, label_config, train_config)
    rul = validation.rul_predictions
    failures = validation.failure_predictions
    figures = {
        "predicted_vs_true": plots.predicted_vs_true(rul["rul"].to_numpy(), rul["rul_pred"].to_numpy(), f"{library}: RUL at CV cut points"),
        "feature_importance": plots.feature_importance(bundle.feature_importance, f"{library}: RUL feature importance"),
    }
    if failures.height and failures["label"].n_unique() == 2:
        figures["precision_recall"] = plots.precision_recall(failures["label"].to_numpy(), failures["probability"].to_numpy(), f"{library}: failure within horizon")
    tags = {"dagster_run_id": context.run_id, "dagster_asset": f"{library}_model",
            "data_from": str(frame["ts"].min()), "data_to": str(frame["ts"].max())}
    with mlflow.start_run(run_name=f"{library}-{context.run_id[:8]}", nested=True) as run:
        mlflow.set_tags(tags)
        mlflow.log_params({"library": library, **config.model_dump(), "rul_cap_hours": label_config.rul_cap_hours,
                           "horizon_hours": label_config.horizon_hours, "n_features": len(spec.feature_names),
                           "threshold": bundle.threshold})
        mlflow.log_metrics({k: v for k, v in bundle.metrics.items() if np.isfinite(v)})
        for name, fig in figures.items():
            mlflow.log_figure(fig, f"{name}.png")
        version = registry.log_bundle(bundle, frame.select(spec.feature_names).head(50).to_numpy(), tags)
    store.save_candidate(library, {"library": library, "version": version, "run_id": run.info.run_id, "metrics": bundle.metrics},
                         validation.all_rul_predictions)
    metadata = {k: float(v) for k, v in bundle.metrics.items()}
    metadata |= {"model_version": version, "mlflow_run_id": run.info.run_id, "alert_threshold": bundle.threshold}
    metadata |= {name: dg.MetadataValue.md(plots.as_markdown(fig)) for name, fig in figures.items()}
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(group_name="models", kinds={"catboost", "mlflow"}, deps=["training_set"], required_resource_keys={"mlflow"})
def catboost_model(context: dg.AssetExecutionContext, config: CandidateConfig) -> dg.MaterializeResult:
    """CatBoost RUL regressor and failure classifier, cross-validated, logged and registered in MLflow."""
    return _train_candidate(context, "catboost", config)


@dg.asset(group_name="models", kinds={"lightgbm", "mlflow"}, deps=["training_set"], required_resource_keys={"mlflow"})
def lightgbm_model(context: dg.AssetExecutionContext, config: CandidateConfig) -> dg.MaterializeResult:
    """LightGBM RUL regressor and failure classifier, cross-validated, logged and registered in MLflow."""
    return _train_candidate(context, "lightgbm", config)


class PromotionConfig(dg.Config):
    margin: float = 0.0  # the challenger's RUL RMSE must be lower than the champion's by this fraction
    min_gate_rows: int = 100  # matured rows after the champion's training data needed to judge on them


def _gate(record: dict, validation: pl.DataFrame, current: str | None, config: PromotionConfig,
          warehouse: WarehouseResource) -> tuple[float, float | None, str]:
    """Challenger and champion RUL RMSE on the same footing, and what that footing is.

    Preferred: rows after the champion's training data whose RUL has matured (neither model trained
    on them: the challenger's are out-of-fold). Without enough of them: both models' cross-validated
    estimates (honest, but not on the same rows).
    """
    challenger_cv = record["metrics"]["rul_rmse"]
    if current is None or current == record["version"]:
        return challenger_cv, None, "first champion" if current is None else "same version"
    champion = registry.load_version(current).bundle
    trained_to = registry.version_tags(current).get("data_to")
    if trained_to is None:
        return challenger_cv, champion.metrics.get("rul_rmse"), "cross-validation estimates (the champion's data period is unknown)"
    trained_until = dt.datetime.fromisoformat(trained_to)
    recent = validation.filter(pl.col("ts") > trained_until)
    if recent.height >= config.min_gate_rows:
        readings, events = read_history(warehouse)
        try:
            features = build_features(readings, champion.feature_spec, events)
        except ValueError:  # trained on other sensors: it cannot score this data at all
            return rul_metrics(recent["rul"].to_numpy(), recent["rul_pred"].to_numpy())["rul_rmse"], None, "champion cannot score this data"
        rows = recent.join(features, on=["machine_id", "ts"], how="inner")
        champion_rul, _ = champion.predict(rows.select(champion.feature_names).to_numpy())
        truth = rows["rul"].to_numpy()
        return (rul_metrics(truth, rows["rul_pred"].to_numpy())["rul_rmse"], rul_metrics(truth, champion_rul)["rul_rmse"],
                f"{rows.height} matured rows after {trained_until}")
    return challenger_cv, champion.metrics.get("rul_rmse"), f"cross-validation estimates (only {recent.height} matured rows after {trained_until})"


@dg.asset(group_name="models", kinds={"mlflow"}, deps=["catboost_model", "lightgbm_model"],
          required_resource_keys={"mlflow", "warehouse"})
def champion_model(context: dg.AssetExecutionContext, config: PromotionConfig) -> dg.MaterializeResult:
    """The better candidate becomes `champion` only if it beats the current one on the same validation points."""
    warehouse: WarehouseResource = context.resources.warehouse
    candidates = store.load_candidates()
    if not candidates:
        raise dg.Failure("no candidate models: materialize catboost_model and lightgbm_model first")
    record, validation = min(candidates, key=lambda c: c[0]["metrics"]["rul_rmse"])
    current = registry.alias_version(registry.CHAMPION)
    challenger_rmse, champion_rmse, basis = _gate(record, validation, current, config, warehouse)
    promote = current != record["version"] and should_promote(challenger_rmse, champion_rmse, config.margin)
    registry.set_alias(record["version"], registry.CHAMPION if promote else registry.CHALLENGER)
    champion = record["version"] if promote else current
    decision = "promoted" if promote else ("kept" if current == record["version"] else "challenger lost")
    with mlflow.start_run(run_name=f"promotion-{context.run_id[:8]}", nested=True):
        mlflow.set_tags({"dagster_run_id": context.run_id, "decision": decision, "basis": basis, "challenger_version": record["version"],
                         "champion_version_before": str(current), "champion_version_after": str(champion)})
        mlflow.log_metrics({"challenger_rul_rmse": challenger_rmse, **({"champion_rul_rmse": champion_rmse} if champion_rmse is not None else {})})
    mlflow.end_run()  # closes the parent run dagster-mlflow opened for this Dagster run
    context.log.info(f"{decision} ({basis}): challenger v{record['version']} ({record['library']}) RMSE {challenger_rmse:.2f} "
                     f"vs champion v{current} RMSE {champion_rmse}")
    return dg.MaterializeResult(metadata={
        "decision": decision,
        "basis": basis,
        "champion_version": str(champion),
        "champion_version_before": str(current),
        "challenger_version": record["version"],
        "challenger_library": record["library"],
        "challenger_rul_rmse": challenger_rmse,
        "champion_rul_rmse": champion_rmse if champion_rmse is not None else float("nan"),
        "margin": config.margin,
    })
