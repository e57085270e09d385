"""Model metrics: RUL errors (with the NASA/PHM08 asymmetric score) and alerting quality."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, roc_auc_score

from pm_assets.core.labels import LabelConfig


class Judged(Protocol):
    """What judging a model's live predictions needs of it (a `core.models.ModelBundle`)."""

    threshold: float
    label_config: LabelConfig


def nasa_score(true_rul: np.ndarray, predicted_rul: np.ndarray) -> float:
    """PHM08 score: sum of exp(-d/13) - 1 for early predictions (d < 0), exp(d/10) - 1 for late ones.

    Late predictions (predicting more life than is left) cost more, as they would in a plant.
    """
    d = np.asarray(predicted_rul, float) - np.asarray(true_rul, float)
    return float(np.sum(np.where(d < 0, np.exp(-d / 13) - 1, np.exp(d / 10) - 1)))


def rul_metrics(true_rul: np.ndarray, predicted_rul: np.ndarray) -> dict[str, float]:
    error = np.asarray(predicted_rul, float) - np.asarray(true_rul, float)
    return {
        "rul_rmse": float(np.sqrt(np.mean(error**2))),
        "rul_mae": float(np.mean(np.abs(error))),
        "rul_nasa_score": nasa_score(true_rul, predicted_rul),
        "rul_n": float(len(error)),
    }


def choose_threshold(labels: np.ndarray, probability: np.ndarray, miss_cost: float, false_alarm_cost: float) -> float:
    """The alert threshold with the lowest total cost of missed failures and false alarms."""
    candidates = np.unique(np.quantile(probability, np.linspace(0, 1, 201)))
    positives = labels == 1
    costs = [miss_cost * np.sum(positives & (probability < t)) + false_alarm_cost * np.sum(~positives & (probability >= t)) for t in candidates]
    return float(candidates[int(np.argmin(costs))])


def classification_metrics(labels: np.ndarray, probability: np.ndarray, threshold: float) -> dict[str, float]:
    alert = probability >= threshold
    both = len(np.unique(labels)) == 2
    return {
        "failure_pr_auc": float(average_precision_score(labels, probability)) if both else float("nan"),
        "failure_roc_auc": float(roc_auc_score(labels, probability)) if both else float("nan"),
        "failure_precision": float(precision_score(labels, alert, zero_division=0)),
        "failure_recall": float(recall_score(labels, alert, zero_division=0)),
        "failure_f1": float(f1_score(labels, alert, zero_division=0)),
    }


def _alert_leads(hours_to_failure: np.ndarray, alert: np.ndarray, failure_id: np.ndarray, window_hours: float) -> tuple[np.ndarray, np.ndarray]:
    """Per failure: how long before it the first alert of its last `window_hours` fired (NaN: none fired), and whether
    its rows reach back over that whole window."""
    failures = np.unique(failure_id[failure_id >= 0])
    leads, covered = np.full(len(failures), np.nan), np.zeros(len(failures), bool)
    for i, failure in enumerate(failures):
        mine = failure_id == failure
        fired = hours_to_failure[mine & alert & (hours_to_failure <= window_hours)]
        if len(fired):
            leads[i] = fired.max()
        covered[i] = hours_to_failure[mine].max() >= window_hours
    return leads, covered


def mean_lead_time_hours(hours_to_failure: np.ndarray, alert: np.ndarray, failure_id: np.ndarray, window_hours: float) -> float:
    """Mean, over failures, of how long before the failure the first alert of its last `window_hours` fired.

    Failures with no alert in that window count as a lead time of 0 (missed).
    """
    leads, _ = _alert_leads(hours_to_failure, alert, failure_id, window_hours)
    return float(np.nan_to_num(leads).mean()) if len(leads) else float("nan")


def failure_catches(hours_to_failure: np.ndarray, alert: np.ndarray, failure_id: np.ndarray, window_hours: float,
                    min_lead_hours: float) -> tuple[int, int]:
    """(failures judged, failures caught). A failure is judged when the predictions reach back over its last
    `window_hours`, so a failure early in the checked window is not counted missed for alerts before it; it is
    caught when an alert of that window fired at least `min_lead_hours` before it.

    >>> failure_catches(np.array([30., 20., 5., 10., 2.]), np.array([0, 1, 1, 0, 1], bool), np.array([0, 0, 0, 1, 1]), 24, 6)
    (1, 1)
    """
    leads, covered = _alert_leads(hours_to_failure, alert, failure_id, window_hours)
    caught = covered & (leads >= min_lead_hours)  # NaN (no alert) compares false
    return int(covered.sum()), int(caught.sum())


TRUTH_BINS = 5  # below the cap, true RUL in this many equal bins; rows at the cap are one more


def _truth_bin(true_rul: np.ndarray, cap: float) -> np.ndarray:
    return np.where(true_rul >= cap, TRUTH_BINS, np.minimum((np.asarray(true_rul, float) / cap * TRUTH_BINS).astype(int), TRUTH_BINS - 1))


def rul_error_profile(true_rul: np.ndarray, predicted_rul: np.ndarray, cap: float) -> dict[str, float]:
    """Mean squared RUL error per bin of true RUL (`rul_mse_truth_<bin>`), from out-of-fold predictions.

    Errors depend on how close to failure a row is, and the rows live monitoring can judge early are
    mostly close to failure: comparing their RMSE with an overall CV figure would cry wolf.
    """
    bins = _truth_bin(true_rul, cap)
    error = (np.asarray(predicted_rul, float) - np.asarray(true_rul, float)) ** 2
    return {f"rul_mse_truth_{b}": float(error[bins == b].mean()) for b in range(TRUTH_BINS + 1) if (bins == b).any()}


def expected_rmse(profile: dict[str, float], true_rul: np.ndarray, cap: float) -> float:
    """The RMSE cross-validation predicts on rows with these true RULs (NaN if a bin was never seen).

    >>> expected_rmse({"rul_mse_truth_0": 400.0, "rul_mse_truth_5": 0.0}, np.array([5.0, 125.0, 125.0, 125.0]), 125.0)
    10.0
    """
    by_bin = np.array([profile.get(f"rul_mse_truth_{b}", np.nan) for b in range(TRUTH_BINS + 1)])
    bins = _truth_bin(true_rul, cap)
    return float(np.sqrt(np.mean(np.where(bins >= 0, by_bin[bins.clip(0)], np.nan))))


def matured_performance(rul: np.ndarray, rul_pred: np.ndarray, label: np.ndarray, probability: np.ndarray, threshold: float,
                        hours_to_failure: np.ndarray, failure_id: np.ndarray, lead_window_hours: float,
                        min_lead_hours: float = 0.0) -> dict[str, float]:
    """Live metrics of logged predictions whose truth is known (NaN labels are immature and left out), with the
    failures judged and the share of them alerted on `min_lead_hours` ahead (`failure_catches`).

    >>> nan = float("nan")
    >>> m = matured_performance(np.array([10., nan]), np.array([12., 50.]), np.array([1., nan]), np.array([.9, .1]), .5,
    ...                         np.array([10., nan]), np.array([0, -1]), 96)
    >>> m["rul_rows"], m["rul_rmse"], m["label_rows"], m["failure_recall"], m["mean_lead_time_hours"]
    (1, 2.0, 1, 1.0, 10.0)
    """
    known_rul = np.isfinite(rul)
    known_label = np.isfinite(label)
    alert = probability >= threshold
    result: dict[str, float] = {"rul_rows": int(known_rul.sum()), "label_rows": int(known_label.sum())}
    result["rul_rmse"] = rul_metrics(rul[known_rul], rul_pred[known_rul])["rul_rmse"] if known_rul.any() else float("nan")
    positives = known_label & (label == 1)
    result["failure_precision"] = float(np.sum(positives & alert) / max(np.sum(known_label & alert), 1))
    result["failure_recall"] = float(np.sum(positives & alert) / positives.sum()) if positives.any() else float("nan")
    hours = np.nan_to_num(hours_to_failure, nan=np.inf)
    result["mean_lead_time_hours"] = mean_lead_time_hours(hours, alert, failure_id, lead_window_hours)
    judged, caught = failure_catches(hours, alert, failure_id, lead_window_hours, min_lead_hours)
    result["failures_judged"] = judged
    result["failures_caught_share"] = caught / judged if judged else float("nan")
    return result


def live_metrics(rows: pl.DataFrame, bundle: Judged, min_lead_hours: float = 0.0) -> dict[str, float]:
    """Live RMSE, precision, recall and lead time of `bundle`'s matured predictions in `rows`, and the share of
    failures it alerted on `min_lead_hours` ahead within its alert window (twice the label horizon)."""
    column = lambda name: rows[name].cast(pl.Float64).fill_null(float("nan")).to_numpy()  # noqa: E731
    return matured_performance(column("rul"), column("predicted_rul"), column("fails_within_horizon"), column("failure_probability"),
                               bundle.threshold, column("hours_to_failure"), rows["failure_id"].to_numpy(),
                               2 * bundle.label_config.horizon_hours, min_lead_hours)
