"""Model metrics: RUL errors (with the NASA/PHM08 asymmetric score) and alerting quality."""

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, roc_auc_score


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


def mean_lead_time_hours(hours_to_failure: np.ndarray, alert: np.ndarray, failure_id: np.ndarray, window_hours: float) -> float:
    """Mean, over failures, of how long before the failure the first alert of its last `window_hours` fired.

    Failures with no alert in that window count as a lead time of 0 (missed).
    """
    leads = []
    for failure in np.unique(failure_id[failure_id >= 0]):
        mine = (failure_id == failure) & (hours_to_failure <= window_hours)
        fired = hours_to_failure[mine & alert]
        leads.append(float(fired.max()) if len(fired) else 0.0)
    return float(np.mean(leads)) if leads else float("nan")


def should_promote(challenger: float, champion: float | None, margin: float = 0.0) -> bool:
    """Promote when there is no champion, or the challenger's error is lower by more than `margin` (a fraction)."""
    if not np.isfinite(challenger):
        return False
    return champion is None or not np.isfinite(champion) or challenger < champion * (1 - margin)
