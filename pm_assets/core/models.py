"""Model training and validation: CatBoost or LightGBM, a RUL regressor and a failure classifier.

Validation is machine-grouped cross-validation (no machine on both sides) with the C-MAPSS test
protocol: each held-out machine is cut at random points and the RUL is predicted there.
"""

import functools
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl
from sklearn.model_selection import GroupKFold

from pm_assets.core.features import FeatureSpec, build_features, sensor_of
from pm_assets.core.intervals import (DEFAULT_COVERAGE, RulIntervals, fit_intervals, interval_metrics, fit_risk, out_of_fold_ranges,
                                     validate_coverage)
from pm_assets.core.labels import LabelConfig, build_labels
from pm_assets.core.metrics import (
    choose_threshold,
    classification_metrics,
    mean_lead_time_hours,
    rul_error_profile,
    rul_metrics,
)
from pm_assets.core.symmetric_trees import SymmetricTrees

LIBRARIES = ("catboost", "lightgbm")
RISK_LEVELS = ("low", "medium", "high")
#: The RUL ranges are calibrated per band of predicted RUL and per level of failure probability cut at these quantiles.
RISK_QUANTILES = (0.5, 0.8, 0.95)
#: Below this many rows CatBoost's models are evaluated as numpy trees (its own predict's set-up costs more).
FEW_ROWS = 100


@dataclass(frozen=True)
class TrainConfig:
    n_folds: int = 5
    cuts_per_machine: int = 5  # random truncation points per held-out machine for RUL validation
    seed: int = 42
    iterations: int = 250
    learning_rate: float = 0.08
    max_train_rows: int = 60_000  # hourly readings are strongly autocorrelated: a sample learns as well
    miss_cost: float = 10.0  # cost of a missed failure, relative to…
    false_alarm_cost: float = 1.0  # …the cost of a false alarm
    interval_coverage: float = DEFAULT_COVERAGE  # share of true RULs the ranges are calibrated to hold

    def __post_init__(self) -> None:
        if self.n_folds < 2:
            raise ValueError(f"n_folds must be >= 2, got {self.n_folds}")
        validate_coverage(self.interval_coverage)
        if self.miss_cost <= 0 or self.false_alarm_cost <= 0:
            raise ValueError("miss_cost and false_alarm_cost must be > 0")


def make_estimator(library: str, task: str, config: TrainConfig) -> Any:
    if library == "catboost":
        from catboost import CatBoostClassifier, CatBoostRegressor

        cls = CatBoostRegressor if task == "rul" else CatBoostClassifier
        return cls(iterations=config.iterations, learning_rate=config.learning_rate, depth=6, border_count=32,
                   random_seed=config.seed, verbose=0, allow_writing_files=False, thread_count=-1)
    if library == "lightgbm":
        from lightgbm import LGBMClassifier, LGBMRegressor

        cls = LGBMRegressor if task == "rul" else LGBMClassifier
        return cls(n_estimators=config.iterations, learning_rate=config.learning_rate, num_leaves=31, min_child_samples=20,
                   subsample=0.8, subsample_freq=1, colsample_bytree=0.5, max_bin=63, random_state=config.seed,
                   verbose=-1, n_jobs=-1)
    raise ValueError(f"unknown library {library!r}; expected one of {LIBRARIES}")


@dataclass
class ModelBundle:
    """Everything needed to score: features spec, both models, the alert threshold, and how it was judged."""

    library: str
    feature_spec: FeatureSpec
    label_config: LabelConfig
    rul_model: Any
    failure_model: Any
    threshold: float
    metrics: dict[str, float] = field(default_factory=dict)
    feature_importance: dict[str, float] = field(default_factory=dict)
    intervals: RulIntervals | None = None  # None in bundles trained before RUL ranges existed

    def rul_range(self, rul: np.ndarray, probability: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The calibrated lower and upper RUL of each prediction, given its failure probability (NaN without calibration)."""
        if self.intervals is None:
            return np.full(len(rul), np.nan), np.full(len(rul), np.nan)
        return self.intervals.range(rul, probability=probability)

    @property
    def feature_names(self) -> list[str]:
        return self.feature_spec.feature_names

    def predict(self, features: np.ndarray, threads: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """Remaining useful life (hours, capped) and failure probability within the horizon.

        `threads=1` for a few rows: starting a thread pool costs more than it saves (a serving worker
        scoring one machine per request)."""
        if self.library == "lightgbm":  # the booster itself: the scikit-learn wrapper costs ~1 ms a call
            options = {} if threads < 1 else {"num_threads": threads}
            rul = self.rul_model.booster_.predict(features, **options)
            probability = self.failure_model.booster_.predict(features, **options)
        elif len(features) < FEW_ROWS and self._symmetric_trees:
            rul_trees, failure_trees = self._symmetric_trees
            rul, probability = rul_trees.raw(features), 1 / (1 + np.exp(-failure_trees.raw(features)))
        else:
            rul = self.rul_model.predict(features, thread_count=threads)
            probability = self.failure_model.predict_proba(features, thread_count=threads)[:, 1]
        return np.clip(rul, 0, self.label_config.rul_cap_hours), probability

    def risk_level(self, probability: np.ndarray) -> np.ndarray:
        """`high` at or above the alert threshold, `medium` above half of it, else `low`."""
        return np.where(probability >= self.threshold, "high", np.where(probability >= self.threshold / 2, "medium", "low"))

    def sensor_contributions(self, features: np.ndarray, threads: int = -1) -> tuple[list[str], np.ndarray]:
        """The failure model's own per-feature contributions (exact tree SHAP, log-odds), summed per sensor."""
        if self.library == "lightgbm":
            options = {} if threads < 1 else {"num_threads": threads}
            contributions = self.failure_model.booster_.predict(features, pred_contrib=True, **options)[:, :-1]
        else:
            from catboost import Pool

            contributions = self.failure_model.get_feature_importance(Pool(features), type="ShapValues", thread_count=threads)[:, :-1]
        sensors, mapping = self._sensor_mapping
        return sensors, contributions @ mapping

    def prepare_for_serving(self) -> None:
        """Build now what scoring a few rows uses (CatBoost's trees in numpy, the sensor mapping), not in a first request."""
        if self.library == "catboost":
            self._symmetric_trees  # noqa: B018 (a cached property)
        self._sensor_mapping  # noqa: B018

    @functools.cached_property
    def _symmetric_trees(self) -> tuple[SymmetricTrees, SymmetricTrees] | None:
        """Both CatBoost models as numpy trees (a request's few rows in ~0.02 ms, not CatBoost's ~0.3 ms), if they can be."""
        trees = (SymmetricTrees.of(self.rul_model), SymmetricTrees.of(self.failure_model))
        return trees if all(trees) and self.failure_model.get_all_params().get("loss_function") == "Logloss" else None

    @functools.cached_property
    def _sensor_mapping(self) -> tuple[list[str], np.ndarray]:
        """Sensors, and the features x sensors 0/1 matrix that sums feature contributions per sensor."""
        sensors = sorted({s for f in self.feature_names if (s := sensor_of(f))})
        return sensors, np.array([[sensor_of(f) == s for s in sensors] for f in self.feature_names], dtype=float)


def build_training_set(readings: pl.DataFrame, events: pl.DataFrame, spec: FeatureSpec, label_config: LabelConfig) -> pl.DataFrame:
    """Features joined to labels, one row per reading with any known label."""
    labels = build_labels(readings, events, label_config)
    features = build_features(readings, spec, events)
    joined = features.join(labels, on=["machine_id", "ts"], how="inner")
    return joined.filter(pl.col("rul").is_not_null() | pl.col("fails_within_horizon").is_not_null())


def _cut_points(frame: pl.DataFrame, per_machine: int, seed: int) -> np.ndarray:
    """Row indices of random truncation points of each machine (rows with a known RUL)."""
    rng = np.random.default_rng(seed)
    indexed = frame.with_row_index("_row").filter(pl.col("rul").is_not_null())
    picks = []
    for rows in indexed.group_by("machine_id", maintain_order=True).agg("_row")["_row"]:
        rows = rows.to_numpy()
        picks.append(rng.choice(rows, min(per_machine, len(rows)), replace=False))
    return np.sort(np.concatenate(picks)) if picks else np.array([], dtype=int)


def grouped_folds(machines: np.ndarray, n_folds: int):
    """(train, test) row indices per fold; all rows of a machine fall on one side."""
    n_folds = min(n_folds, len(np.unique(machines)))
    return GroupKFold(n_splits=n_folds).split(np.zeros(len(machines)), groups=machines)


def sample_rows(mask: np.ndarray, limit: int, seed: int) -> np.ndarray:
    rows = np.flatnonzero(mask)
    if len(rows) > limit:
        rows = np.sort(np.random.default_rng(seed).choice(rows, limit, replace=False))
    return rows


@dataclass
class Validation:
    metrics: dict[str, float]
    rul_predictions: pl.DataFrame  # machine_id, ts, rul, rul_pred at the cut points (out of fold)
    every_rul_prediction: pl.DataFrame  # the same on every row (out of fold)
    failure_predictions: pl.DataFrame  # machine_id, ts, label, probability on labelled rows (out of fold)
    threshold: float  # the alert threshold of least cost on the out-of-fold probabilities
    intervals: RulIntervals  # RUL ranges calibrated on every out-of-fold RUL


def cross_validate(library: str, training_set: pl.DataFrame, feature_names: list[str], config: TrainConfig,
                   label_config: LabelConfig, with_failure_model: bool = True) -> Validation:
    """Machine-grouped cross-validation of both tasks."""
    X = training_set.select(feature_names).to_numpy()
    rul = training_set["rul"].to_numpy()
    fail = training_set["fails_within_horizon"].to_numpy()
    machines = training_set["machine_id"].to_numpy()
    cuts = _cut_points(training_set, config.cuts_per_machine, config.seed)
    oof_rul = np.full(len(X), np.nan)
    oof_prob = np.full(len(X), np.nan)
    folds = np.zeros(len(X), dtype=int)
    for fold, (train_idx, test_idx) in enumerate(grouped_folds(machines, config.n_folds)):
        folds[test_idx] = fold
        train_mask = np.zeros(len(X), bool)
        train_mask[train_idx] = True
        rows = sample_rows(train_mask & ~np.isnan(rul), config.max_train_rows, config.seed + fold)
        oof_rul[test_idx] = make_estimator(library, "rul", config).fit(X[rows], rul[rows]).predict(X[test_idx])
        rows = sample_rows(train_mask & ~np.isnan(fail), config.max_train_rows, config.seed + fold)
        if with_failure_model and len(np.unique(fail[rows])) == 2:
            oof_prob[test_idx] = make_estimator(library, "failure", config).fit(X[rows], fail[rows]).predict_proba(X[test_idx])[:, 1]
    oof_rul = np.clip(oof_rul, 0, label_config.rul_cap_hours)
    metrics = rul_metrics(rul[cuts], oof_rul[cuts])
    # every row with a known RUL, by how close to failure it was: live monitoring's baseline
    labelled = ~np.isnan(rul)
    metrics |= rul_error_profile(rul[labelled], oof_rul[labelled], label_config.rul_cap_hours)
    known = ~np.isnan(fail) & ~np.isnan(oof_prob)
    threshold = 0.5
    if known.any() and len(np.unique(fail[known])) == 2:
        threshold = choose_threshold(fail[known], oof_prob[known], config.miss_cost, config.false_alarm_cost)
        metrics |= classification_metrics(fail[known], oof_prob[known], threshold)
        hours = training_set["hours_to_failure"].to_numpy()
        failure_id = training_set["failure_id"].to_numpy()
        metrics["failure_mean_lead_time_hours"] = mean_lead_time_hours(
            np.nan_to_num(hours, nan=np.inf)[known], (oof_prob >= threshold)[known], failure_id[known], 2 * label_config.horizon_hours
        )
    intervals, lower, upper = _calibrate(training_set, rul, oof_rul, oof_prob if known.any() else None, folds,
                                         label_config.rul_cap_hours, config.interval_coverage)
    if known.any() and len(np.unique(fail[known])) == 2:
        to_failure = np.nan_to_num(training_set["hours_to_failure"].to_numpy(), nan=np.inf)
        intervals = replace(intervals, **fit_risk(oof_prob[known], np.where(fail[known] == 1, to_failure[known], np.inf),
                                                  label_config.horizon_hours))
    metrics |= interval_metrics(rul, lower, upper)
    metrics |= {f"{k}_cuts": v for k, v in interval_metrics(rul[cuts], lower[cuts], upper[cuts]).items()}
    with_oof = training_set.select("machine_id", "ts", "rul").with_columns(
        pl.Series("rul_pred", oof_rul), pl.Series("rul_lower", lower), pl.Series("rul_upper", upper), pl.Series("fold", folds))
    rul_predictions = with_oof[cuts]
    failure_predictions = training_set.filter(pl.Series(known)).select(
        "machine_id", "ts", pl.col("fails_within_horizon").alias("label")).with_columns(pl.Series("probability", oof_prob[known]))
    return Validation(metrics, rul_predictions, with_oof, failure_predictions, threshold, intervals)


def _calibrate(training_set: pl.DataFrame, rul: np.ndarray, oof_rul: np.ndarray, oof_prob: np.ndarray | None, folds: np.ndarray, cap: float, coverage: float) -> tuple[RulIntervals, np.ndarray, np.ndarray]:
    """RUL ranges calibrated on every out-of-fold RUL (per risk level where the failure model is known), and each row's
    range calibrated without its own fold (to judge their coverage)."""
    labelled = ~np.isnan(rul)
    to_failure = training_set["hours_to_failure"].to_numpy() if "hours_to_failure" in training_set.columns else np.array([])
    past_cap = to_failure[np.isfinite(to_failure) & (to_failure >= cap)]
    risk = {}
    if oof_prob is not None and np.isfinite(oof_prob[labelled]).any():
        # levels of the failure probability by its own quantiles: the alert threshold is tuned for a rare event and puts
        # nearly every row above it, while the top few percent hold the machines failing sooner than their RUL says
        edges = tuple(np.unique(np.nanquantile(oof_prob[labelled], RISK_QUANTILES)))
        risk = {"probability": oof_prob[labelled], "risk_edges": edges}
    intervals = fit_intervals(rul[labelled], oof_rul[labelled], cap, coverage, beyond_cap=float(past_cap.mean()) if len(past_cap) else None,
                              **risk)
    lower, upper = np.full(len(rul), np.nan), np.full(len(rul), np.nan)
    lower[labelled], upper[labelled] = out_of_fold_ranges(rul[labelled], oof_rul[labelled], folds[labelled], cap, coverage, **risk)
    return intervals, lower, upper


def fit_bundle(library: str, training_set: pl.DataFrame, spec: FeatureSpec, label_config: LabelConfig,
               config: TrainConfig) -> tuple[ModelBundle, Validation]:
    """Cross-validate, then fit both models on all labelled rows (sampled) of `training_set`."""
    validation = cross_validate(library, training_set, spec.feature_names, config, label_config)
    X = training_set.select(spec.feature_names).to_numpy()
    rul = training_set["rul"].to_numpy()
    fail = training_set["fails_within_horizon"].to_numpy()
    rows = sample_rows(~np.isnan(rul), config.max_train_rows, config.seed)
    rul_model = make_estimator(library, "rul", config).fit(X[rows], rul[rows])
    rows = sample_rows(~np.isnan(fail), config.max_train_rows, config.seed)
    if len(np.unique(fail[rows])) < 2:
        raise ValueError("the training set has no failures within the horizon (or only failures): cannot train the failure model")
    failure_model = make_estimator(library, "failure", config).fit(X[rows], fail[rows])
    importance = dict(zip(spec.feature_names, np.asarray(rul_model.feature_importances_, float).tolist()))
    bundle = ModelBundle(library, spec, label_config, rul_model, failure_model, validation.threshold, validation.metrics, importance,
                         validation.intervals)
    return bundle, validation
