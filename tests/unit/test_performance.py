"""Delayed ground truth: only predictions whose labels have matured are judged."""

import datetime as dt

import numpy as np
import polars as pl
import pydantic
import pytest

from pm_assets.core.labels import LabelConfig, build_labels
from pm_assets.core.metrics import matured_performance
from pm_assets.defs.assets.monitoring import DriftConfig
from pm_assets.defs.assets.performance import PerformanceConfig

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


def _catches(alert_hours_ahead: float | None, logged_from_hour: int = 0) -> dict[str, float]:
    """Machine A fails at hour 100; its predictions are logged from `logged_from_hour` and alert from
    `alert_hours_ahead` before the failure (None: never)."""
    readings, events = _as_of(200)
    readings = readings.filter((pl.col("machine_id") == "B") | (pl.col("ts") >= T0 + dt.timedelta(hours=logged_from_hour)))
    labels = build_labels(readings, events, LabelConfig(rul_cap_hours=125, horizon_hours=48))
    column = lambda name: labels[name].cast(pl.Float64).fill_null(float("nan")).to_numpy()  # noqa: E731
    to_failure = column("hours_to_failure")
    probability = np.where(np.nan_to_num(to_failure, nan=np.inf) <= (alert_hours_ahead or -1), 0.9, 0.1)
    return matured_performance(column("rul"), np.zeros(labels.height), column("fails_within_horizon"), probability, 0.5,
                               to_failure, labels["failure_id"].to_numpy(), 96, min_lead_hours=12)


def test_a_failure_counts_as_caught_only_when_the_alert_came_in_time():
    assert (_catches(40)["failures_judged"], _catches(40)["failures_caught_share"]) == (1, 1.0)
    assert _catches(5)["failures_caught_share"] == 0.0  # alerted, but 5 h ahead: too late to act
    assert _catches(None)["failures_caught_share"] == 0.0
    # predictions logged from 50 h before the failure do not cover its 96 h alert window: not judged
    assert _catches(None, logged_from_hour=50)["failures_judged"] == 0


@pytest.mark.parametrize(("config", "setting", "value"), [
    (PerformanceConfig, "min_new_failures", 0), (PerformanceConfig, "min_caught_share", 1.5),
    (PerformanceConfig, "max_coverage_shortfall", -0.1), (PerformanceConfig, "window_days", 0),
    (DriftConfig, "min_unknown_readings", 0), (DriftConfig, "psi_threshold", 0.0),
])
def test_a_check_setting_out_of_its_range_is_refused_by_name(config, setting, value):
    """A zero minimum would retrain on every cooldown; a share above 1 could never pass."""
    with pytest.raises(pydantic.ValidationError, match=setting):
        config(**{setting: value})
