"""NASA C-MAPSS benchmark: train on train_FDxxx.txt with the platform's own feature, label and model
code, predict the RUL of every test_FDxxx.txt unit at its last cycle.

Judged by machine-grouped cross-validation on the training file (truncated trajectories, as the test
units are cut); when RUL_FDxxx.txt sits beside the files, the test predictions are scored too.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from pm_assets.core.features import FeatureConfig, FeatureSpec, build_features, fit_feature_spec, regimes_changed
from pm_assets.core.intervals import fit_intervals, interval_metrics, out_of_fold_ranges
from pm_assets.core.labels import LabelConfig
from pm_assets.core.metrics import rul_metrics
from pm_assets.core.models import (
    LIBRARIES,
    TrainConfig,
    build_training_set,
    cross_validate,
    make_estimator,
    sample_rows,
)
from pm_assets.sources.loaders.cmapss import load_cmapss, read_rul

ENSEMBLE = "mean of " + " and ".join(LIBRARIES)
SUBSETS = ("FD001", "FD002", "FD003", "FD004")


@dataclass
class BenchmarkResult:
    predictions: pl.DataFrame  # unit, rul_pred, rul_lower, rul_upper
    cv_metrics: dict[str, dict[str, float]]  # per model, and for their mean
    chosen: str
    regimes: int
    test_metrics: dict[str, float] | None
    seconds: float


def served_spec(training: pl.DataFrame, served: pl.DataFrame, features: FeatureConfig, seed: int) -> FeatureSpec:
    """The feature spec as the platform keeps it (the `feature_spec` asset): fitted on the training engines, and fitted
    again on every reading it has, the served engines' too (unlabelled), when those run in operating regimes the spec
    does not know, so regimes and their normalisers cover conditions no training engine ran in. No label of the
    served engines is used."""
    spec = fit_feature_spec(training, features, seed=seed)
    every = pl.concat([training, served.with_columns(("served-" + pl.col("machine_id")).alias("machine_id"))], how="diagonal_relaxed")
    return fit_feature_spec(every, features, seed=seed, previous=spec) if regimes_changed(spec, every, seed) else spec


def run(data_dir: Path, subset: str = "FD001", config: TrainConfig = TrainConfig(),
        features: FeatureConfig = FeatureConfig(), log=print, test_subset: str | None = None) -> BenchmarkResult:
    """Train on `subset`'s training engines and predict the test engines of `test_subset` (by default the same
    subset; another one measures transfer to new operating conditions or fault modes)."""
    start = time.perf_counter()
    data_dir = Path(data_dir)
    test_subset = test_subset or subset
    train = load_cmapss(data_dir / f"train_{subset}.txt")
    test = load_cmapss(data_dir / f"test_{test_subset}.txt")
    label_config = LabelConfig()
    spec = served_spec(train.telemetry, test.telemetry, features, config.seed)
    training = build_training_set(train.telemetry, train.events, spec, label_config)
    log(f"{subset}: {train.machines.height} training units, {training.height:,} rows, {len(spec.feature_names)} features, "
        f"windows {spec.config.windows}{' and the whole life' if spec.config.life else ''}, {len(spec.regime_centers)} operating regime(s), sensors {', '.join(spec.sensors)}")

    cv_metrics, oof, every = {}, {}, {}
    for library in LIBRARIES:
        validation = cross_validate(library, training, spec.feature_names, config, label_config, with_failure_model=False)
        cv_metrics[library], oof[library], every[library] = validation.metrics, validation.rul_predictions, validation.every_rul_prediction
        log(f"  {library:<9} CV at {len(validation.rul_predictions)} cut points: " + _format(validation.metrics))
    mean = np.mean([oof[lib]["rul_pred"].to_numpy() for lib in LIBRARIES], axis=0)
    cv_metrics[ENSEMBLE] = rul_metrics(oof[LIBRARIES[0]]["rul"].to_numpy(), mean)
    log(f"  {'mean':<9} CV at {len(mean)} cut points: " + _format(cv_metrics[ENSEMBLE]))
    chosen = min(cv_metrics, key=lambda name: cv_metrics[name]["rul_rmse"])
    # the chosen model's RUL ranges: calibrated on its out-of-fold RUL of every row, judged with each fold left out
    labelled = every[LIBRARIES[0]].filter(pl.col("rul").is_not_null())
    truth, folds = labelled["rul"].to_numpy(), labelled["fold"].to_numpy()
    libraries = LIBRARIES if chosen == ENSEMBLE else (chosen,)
    oof_chosen = np.mean([every[lib].filter(pl.col("rul").is_not_null())["rul_pred"].to_numpy() for lib in libraries], axis=0)
    intervals = fit_intervals(truth, oof_chosen, label_config.rul_cap_hours, config.interval_coverage)
    lower, upper = out_of_fold_ranges(truth, oof_chosen, folds, label_config.rul_cap_hours, config.interval_coverage)
    cv_metrics[chosen] |= interval_metrics(truth, lower, upper)
    log(f"  {chosen}: {config.interval_coverage:.0%} RUL ranges hold {cv_metrics[chosen]['rul_interval_coverage']:.1%} of every "
        f"cycle's true RUL out of fold; mean width {cv_metrics[chosen]['rul_interval_width']:.1f}, "
        f"{cv_metrics[chosen]['rul_interval_width_near_failure']:.1f} where the true RUL is <= 30")

    X = training.select(spec.feature_names).to_numpy()
    rul = training["rul"].to_numpy()
    test_features = build_features(test.telemetry, spec).group_by("machine_id", maintain_order=True).tail(1).sort("machine_id")
    predicted = _predict(_fit(libraries, X, rul, config), test_features.select(spec.feature_names).to_numpy(), label_config)
    test_lower, test_upper = intervals.range(predicted)
    predictions = pl.DataFrame({
        "unit": test_features["machine_id"].str.split("-").list.last().cast(pl.Int64),
        "rul_pred": predicted.round(2),
        "rul_lower": test_lower.round(2),
        "rul_upper": test_upper.round(2),
    }).sort("unit")

    test_metrics = None
    truth = data_dir / f"RUL_{test_subset}.txt"
    if truth.exists():
        test_metrics = rul_metrics(read_rul(truth)[predictions["unit"].to_numpy() - 1], predictions["rul_pred"].to_numpy())
    return BenchmarkResult(predictions, cv_metrics, chosen, len(spec.regime_centers), test_metrics, time.perf_counter() - start)


def _fit(libraries: tuple[str, ...], X: np.ndarray, rul: np.ndarray, config: TrainConfig) -> list:
    """Each library's RUL model on a sample of the labelled rows."""
    rows = sample_rows(~np.isnan(rul), config.max_train_rows, config.seed)
    return [make_estimator(lib, "rul", config).fit(X[rows], rul[rows]) for lib in libraries]


def _predict(models: list, X: np.ndarray, label_config: LabelConfig) -> np.ndarray:
    return np.clip(np.mean([model.predict(X) for model in models], axis=0), 0, label_config.rul_cap_hours)


def transfer_rmse(trained_on, judged_on, spec: FeatureSpec, config: TrainConfig = TrainConfig(),
                  libraries: tuple[str, ...] = LIBRARIES) -> float:
    """RUL RMSE over every labelled row of `judged_on`'s engines for a model (the mean of `libraries`) trained on
    `trained_on`'s engines, both featurised with `spec` (loaded C-MAPSS files: `.telemetry`, `.events`)."""
    label_config = LabelConfig()
    trained = build_training_set(trained_on.telemetry, trained_on.events, spec, label_config)
    models = _fit(libraries, trained.select(spec.feature_names).to_numpy(), trained["rul"].to_numpy(), config)
    judged = build_training_set(judged_on.telemetry, judged_on.events, spec, label_config).filter(pl.col("rul").is_not_null())
    predicted = _predict(models, judged.select(spec.feature_names).to_numpy(), label_config)
    return rul_metrics(judged["rul"].to_numpy(), predicted)["rul_rmse"]


def transfer_matrix(data_dir: Path, config: TrainConfig = TrainConfig(), features: FeatureConfig = FeatureConfig(),
                    subsets: tuple[str, ...] = SUBSETS, log=print) -> dict[tuple[str, str], float]:
    """RUL RMSE over every labelled row of B's training engines for a model (the mean of both libraries) trained on A's
    training engines, for every ordered pair; on the diagonal, B's own engine-grouped CV over the same rows (the
    yardstick: B's failures are never used to fit A's model). Each pair's feature spec is A's, refitted on A's and B's
    readings where B runs in regimes A's spec does not know (`served_spec`): B's readings, not its labels, as the
    platform has them when it serves B."""
    label_config = LabelConfig()
    data = {name: load_cmapss(Path(data_dir) / f"train_{name}.txt") for name in subsets}
    rmse: dict[tuple[str, str], float] = {}
    for a in subsets:
        started = time.perf_counter()
        spec = fit_feature_spec(data[a].telemetry, features, seed=config.seed)
        training = build_training_set(data[a].telemetry, data[a].events, spec, label_config)
        every = [cross_validate(lib, training, spec.feature_names, config, label_config, with_failure_model=False).every_rul_prediction
                 for lib in LIBRARIES]
        own = every[0].filter(pl.col("rul").is_not_null())
        oof = np.mean([e.filter(pl.col("rul").is_not_null())["rul_pred"].to_numpy() for e in every], axis=0)
        rmse[a, a] = rul_metrics(own["rul"].to_numpy(), oof)["rul_rmse"]
        for b in subsets:
            if b == a:
                continue
            rmse[a, b] = transfer_rmse(data[a], data[b], served_spec(data[a].telemetry, data[b].telemetry, features, config.seed), config)
        log(f"trained on {a} ({len(spec.regime_centers)} regime(s)): " + ", ".join(
            f"{b} {rmse[a, b]:.2f}" + (" (own CV)" if b == a else "") for b in subsets) + f"  ({time.perf_counter() - started:.0f} s)")
    return rmse


def matrix_table(rmse: dict[tuple[str, str], float], subsets: tuple[str, ...] = SUBSETS) -> str:
    """Rows: trained on; columns: judged on (every labelled row of the training engines); each cell's RMSE and its ratio
    to the judged subset's own CV."""
    lines = ["RUL RMSE on every labelled row of the judged subset's training engines (ratio to its own engine-grouped CV)",
             f"{'trained on':<11}" + "".join(f"{b:>16}" for b in subsets)]
    for a in subsets:
        lines.append(f"{a:<11}" + "".join(
            f"{rmse[a, b]:>9.2f}" + ("(own)" if a == b else f"({rmse[a, b] / rmse[b, b]:.1f}x)").rjust(7) for b in subsets))
    return "\n".join(lines)


def _format(metrics: dict[str, float]) -> str:
    per_100 = metrics["rul_nasa_score"] / metrics["rul_n"] * 100
    return f"RMSE {metrics['rul_rmse']:.2f}  MAE {metrics['rul_mae']:.2f}  NASA score {metrics['rul_nasa_score']:.0f} ({per_100:.0f} per 100 units)"


def table(results: dict[str, BenchmarkResult]) -> str:
    """One line per subset: regimes found, the cross-validated RMSE of each model and of their mean, the chosen one and
    its ranges' out-of-fold coverage and mean width (overall, and where the true RUL is <= 30)."""
    models = list(next(iter(results.values())).cv_metrics)
    width = max(map(len, models)) + 2
    header = (f"{'subset':<7}{'regimes':>8}" + "".join(f"{name:>{width}}" for name in models) + f"{'NASA/100 (chosen)':>20}"
              f"{'coverage':>10}{'width':>7}{'<=30':>6}  chosen")
    lines = [header]
    for subset, result in results.items():
        chosen = result.cv_metrics[result.chosen]
        lines.append(f"{subset:<7}{result.regimes:>8}" + "".join(f"{result.cv_metrics[m]['rul_rmse']:>{width}.2f}" for m in models)
                     + f"{chosen['rul_nasa_score'] / chosen['rul_n'] * 100:>20.0f}{chosen['rul_interval_coverage']:>10.1%}"
                     f"{chosen['rul_interval_width']:>7.1f}{chosen['rul_interval_width_near_failure']:>6.1f}  {result.chosen}")
    return "CV RUL RMSE (engine-grouped, random cut points)\n" + "\n".join(lines)
