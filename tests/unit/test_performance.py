"""Delayed ground truth: only predictions whose labels have matured are judged."""

import datetime as dt

import numpy as np
import polars as pl

from pm_assets.core.labels import LabelConfig, build_labels
from pm_assets.core.metrics import matured_performance

T0 = dt.datetime(2025, 1, 1)


def _as_of(hours: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Machine A fails at hour 100; machine B runs on without failing. Readings hourly until `hours`."""
    readings = pl.DataFrame({"machine_id": ["A"] * 101 + ["B"] * (hours + 1),
                             "ts": [T0 + dt.timedelta(hours=h) for h in [*range(101), *range(hours + 1)]]})
    events = pl.DataFrame({"machine_id": ["A"], "ts": [T0 + dt.timedelta(hours=100)], "event_type": ["failure"]})
    return readings, events


def _judged(hours: int, predicted_rul: float) -> dict[str, float]:
    readings, events = _as_of(hours)
    labels = build_labels(readings, events, LabelConfig(rul_cap_hours=125, horizon_hours=48))
    column = lambda name: labels[name].cast(pl.Float64).fill_null(float("nan")).to_numpy()  # noqa: E731
    n = labels.height
    return matured_performance(column("rul"), np.full(n, predicted_rul), column("fails_within_horizon"), np.full(n, 0.9), 0.5,
                               column("hours_to_failure"), labels["failure_id"].to_numpy(), 96)


def test_immature_predictions_are_left_out_and_mature_as_time_passes():
    early, later = _judged(150, predicted_rul=0.0), _judged(200, predicted_rul=0.0)
    # A's 101 rows are known (it failed); B's rows are known once watched for the 125 h cap
    assert early["rul_rows"] == 101 + (150 - 125 + 1)
    assert later["rul_rows"] == 101 + (200 - 125 + 1)
    # the horizon label matures sooner (48 h): more rows judged for alerts than for RUL
    assert early["label_rows"] == 101 + (150 - 48 + 1)


def test_live_metrics_measure_the_logged_predictions():
    perfect_for_b = _judged(200, predicted_rul=125.0)
    assert perfect_for_b["rul_rmse"] > 0  # A's rows are wrong: it failed
    assert perfect_for_b["failure_recall"] == 1.0 and perfect_for_b["mean_lead_time_hours"] == 96.0
    assert perfect_for_b["failure_precision"] < 1.0  # alerts on B, which did not fail, are false alarms
