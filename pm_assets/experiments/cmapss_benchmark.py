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

from pm_assets.core.features import FeatureConfig, build_features, fit_feature_spec
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


def run(data_dir: Path, subset: str = "FD001", config: TrainConfig = TrainConfig(),
        features: FeatureConfig = FeatureConfig(), log=print) -> BenchmarkResult:
    start = time.perf_counter()
    data_dir = Path(data_dir)
    train = load_cmapss(data_dir / f"train_{subset}.txt")
    test = load_cmapss(data_dir / f"test_{subset}.txt")
    label_config = LabelConfig()
    spec = fit_feature_spec(train.telemetry, features, seed=config.seed)
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
    rows = sample_rows(~np.isnan(rul), config.max_train_rows, config.seed)
    test_features = build_features(test.telemetry, spec).group_by("machine_id", maintain_order=True).tail(1).sort("machine_id")
    X_test = test_features.select(spec.feature_names).to_numpy()
    predicted = np.mean([make_estimator(lib, "rul", config).fit(X[rows], rul[rows]).predict(X_test) for lib in libraries], axis=0)
    predicted = np.clip(predicted, 0, label_config.rul_cap_hours)
    test_lower, test_upper = intervals.range(predicted)
    predictions = pl.DataFrame({
        "unit": test_features["machine_id"].str.split("-").list.last().cast(pl.Int64),
        "rul_pred": predicted.round(2),
        "rul_lower": test_lower.round(2),
        "rul_upper": test_upper.round(2),
    }).sort("unit")

    test_metrics = None
    truth = data_dir / f"RUL_{subset}.txt"
    if truth.exists():
        test_metrics = rul_metrics(read_rul(truth)[predictions["unit"].to_numpy() - 1], predictions["rul_pred"].to_numpy())
    return BenchmarkResult(predictions, cv_metrics, chosen, len(spec.regime_centers), test_metrics, time.perf_counter() - start)


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
