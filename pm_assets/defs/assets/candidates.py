"""Candidate models (CatBoost, LightGBM) tracked in MLflow, and the champion chosen among them."""

import dagster as dg
import mlflow
import numpy as np

from pm_assets.core.models import TrainConfig, fit_bundle
from pm_assets.storage import model_files, registry
from pm_assets.storage.feature_store import spec_id


class CandidateConfig(dg.Config):
    """`core.models.TrainConfig`, editable in the launchpad (its defaults, its meaning)."""

    iterations: int = TrainConfig.iterations
    learning_rate: float = TrainConfig.learning_rate
    n_folds: int = TrainConfig.n_folds
    cuts_per_machine: int = TrainConfig.cuts_per_machine
    max_train_rows: int = TrainConfig.max_train_rows
    miss_cost: float = TrainConfig.miss_cost
    false_alarm_cost: float = TrainConfig.false_alarm_cost
    interval_coverage: float = TrainConfig.interval_coverage  # the RUL ranges' coverage, calibrated out of fold
    seed: int = TrainConfig.seed


def _train_candidate(context: dg.AssetExecutionContext, library: str, config: CandidateConfig) -> dg.MaterializeResult:
    from pm_assets.core import plots  # matplotlib takes seconds to import, and only training draws

    frame, spec, label_config, sampling = model_files.load_training_set()
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
            "data_from": str(frame["ts"].min()), "data_to": str(frame["ts"].max()),
            **{k: str(sampling[k]) for k in ("labels_as_of", "failures") if k in sampling}}
    with mlflow.start_run(run_name=f"{library}-{context.run_id[:8]}", nested=True) as run:
        mlflow.set_tags(tags)
        mlflow.log_params({"library": library, **config.model_dump(), "rul_cap_hours": label_config.rul_cap_hours,
                           "horizon_hours": label_config.horizon_hours, "n_features": len(spec.feature_names),
                           "threshold": bundle.threshold, **{f"sampling_{k}": v for k, v in sampling.items()}})
        mlflow.log_metrics({k: v for k, v in bundle.metrics.items() if np.isfinite(v)})
        for name, fig in figures.items():
            mlflow.log_figure(fig, f"{name}.png")
        version = registry.log_bundle(bundle, frame.select(spec.feature_names).head(50).to_numpy(), tags)
    model_files.save_candidate(library, {"library": library, "version": version, "run_id": run.info.run_id, "metrics": bundle.metrics})
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


@dg.asset(group_name="models", kinds={"mlflow"}, deps=["catboost_model", "lightgbm_model"], required_resource_keys={"mlflow"})
def champion_model(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """The better candidate (by cross-validated RUL RMSE) becomes `champion` if there is none yet;
    otherwise `challenger`, scored in shadow until `challenger_gate` decides on matured predictions."""
    candidates = model_files.load_candidates()
    if not candidates:
        raise dg.Failure("no candidate models: materialize catboost_model and lightgbm_model first")
    record = min(candidates, key=lambda c: c["metrics"]["rul_rmse"])
    current = registry.alias_version(registry.CHAMPION)
    current_bundle = registry.load_version(current).bundle if current else None
    champion_cv = current_bundle.metrics.get("rul_rmse", float("nan")) if current_bundle else float("nan")
    # a champion of other stored features (a refitted spec, or a data dir from before features were stored)
    # cannot score the day's rows, so it cannot be judged live beside a challenger: the new model replaces it
    other_features = current_bundle is not None and spec_id(current_bundle.feature_spec) != spec_id(model_files.load_feature_spec())
    if current is None or other_features:
        decision = "first champion" if current is None else "champion replaced: it was trained on other features"
        registry.set_alias(record["version"], registry.CHAMPION)
        registry.remove_alias(registry.CHALLENGER)
    elif current == record["version"]:
        decision = "kept"
    else:
        decision = "challenger in shadow"
        registry.set_alias(record["version"], registry.CHALLENGER)
    champion = current if decision in ("kept", "challenger in shadow") else record["version"]
    with mlflow.start_run(run_name=f"candidates-{context.run_id[:8]}", nested=True):
        mlflow.set_tags({"dagster_run_id": context.run_id, "decision": decision, "challenger_version": record["version"],
                         "champion_version": str(champion)})
        mlflow.log_metrics({"challenger_cv_rul_rmse": record["metrics"]["rul_rmse"],
                            **({"champion_cv_rul_rmse": champion_cv} if np.isfinite(champion_cv) else {})})
    mlflow.end_run()  # closes the parent run dagster-mlflow opened for this Dagster run
    context.log.info(f"{decision}: best candidate v{record['version']} ({record['library']}, CV RMSE {record['metrics']['rul_rmse']:.2f}); "
                     f"champion v{champion}")
    return dg.MaterializeResult(metadata={
        "decision": decision,
        "champion_version": str(champion),
        "champion_version_before": str(current),
        "challenger_version": record["version"],
        "challenger_library": record["library"],
        "challenger_cv_rul_rmse": float(record["metrics"]["rul_rmse"]),
        "champion_cv_rul_rmse": float(champion_cv),
    })
