"""RUL ranges hold their stated coverage, widen where the model errs more, and narrow near failure."""

from dataclasses import replace

import numpy as np
import pytest

from pm_assets.core.intervals import fit_intervals, interval_metrics, out_of_fold_ranges, fit_risk
from pm_assets.core.planning import PlanCosts, expected_costs


def _noisy(seed: int, n: int = 30_000):
    """Predictions whose error grows with the RUL (sd 1 + pred / 8), as a RUL model's does."""
    rng = np.random.default_rng(seed)
    pred = rng.uniform(0, 125, n)
    return pred, pred + rng.normal(0, 1 + pred / 8)


@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_ranges_hold_their_coverage_on_new_rows_with_known_noise(coverage):
    pred, truth = _noisy(0)
    ranges = fit_intervals(truth, pred, cap=1e9, coverage=coverage)
    new_pred, new_truth = _noisy(1)
    lower, upper = ranges.range(new_pred)
    held = np.mean((new_truth >= lower) & (new_truth <= upper))
    assert abs(held - coverage) < 0.01
    # the same within each end of the RUL scale, not just on average (the bands adapt to the noise)
    for part in (new_pred < 30, new_pred > 95):
        assert abs(np.mean((new_truth[part] >= lower[part]) & (new_truth[part] <= upper[part])) - coverage) < 0.03


def test_ranges_narrow_near_failure_and_out_of_fold_coverage_is_honest():
    pred, truth = _noisy(2)
    folds = np.arange(len(pred)) % 5
    lower, upper = out_of_fold_ranges(truth, pred, folds, cap=1e9)
    metrics = interval_metrics(truth, lower, upper, near_failure=30)
    assert abs(metrics["rul_interval_coverage"] - 0.9) < 0.01
    assert metrics["rul_interval_width_near_failure"] < metrics["rul_interval_width"] / 2


def test_skewed_errors_get_the_narrowest_range_that_holds_the_coverage():
    """Near failure the truth cannot fall below 0 and a model's misses run long: the equal-tailed range wastes width."""
    rng = np.random.default_rng(6)
    pred = rng.uniform(0, 40, 60_000)
    truth = pred + rng.exponential(4.0, len(pred)) - 2.0  # errors with a long upper tail
    ranges = fit_intervals(truth[:30_000], pred[:30_000], cap=125)
    lower, upper = ranges.range(pred[30_000:])
    held = np.mean((truth[30_000:] >= lower) & (truth[30_000:] <= upper))
    assert abs(held - 0.9) < 0.01
    equal_tailed = np.quantile(truth[:30_000] - pred[:30_000], [0.05, 0.95])
    assert np.mean(upper - lower) < 0.85 * (equal_tailed[1] - equal_tailed[0])
    assert (lower >= 0).all() and (upper >= pred[30_000:]).all() and (lower <= pred[30_000:]).all()


def test_a_single_constant_error_gives_a_narrow_range_and_too_few_rows_are_refused():
    pred = np.linspace(0, 100, 1000)
    ranges = fit_intervals(pred + 2.0, pred, cap=125)
    lower, upper = ranges.range(np.array([50.0]))
    assert lower[0] == pytest.approx(50.0) and upper[0] == pytest.approx(52.0)  # the truth, and the prediction it holds
    with pytest.raises(ValueError, match="at least 20"):
        fit_intervals(pred[:5], pred[:5], cap=125)
    with pytest.raises(ValueError, match="coverage"):
        ranges.range(pred, coverage=1.0)


def test_the_plan_s_failure_risk_follows_the_distribution():
    pred, truth = _noisy(3)
    ranges = fit_intervals(truth, pred, cap=125)
    # risk of failing before the start of each planned day: at 20 and 44 h for a RUL of 20, at 40 and 64 h for 100
    p = expected_costs(ranges, np.array([20.0, 100.0]), np.array([20.0, 40.0]), PlanCosts(horizon_days=2)).risk
    assert (np.diff(p, axis=1) >= 0).all()  # more likely to have failed the longer the wait
    assert p[0, 0] == pytest.approx(0.5, abs=0.05) and p[0, 1] > 0.99 and p[1, 0] < 0.01


def test_an_overconfident_failure_probability_is_calibrated_into_the_plan_s_near_term_risk():
    rng = np.random.default_rng(4)
    true_share = rng.uniform(0, 0.5, 50_000)
    hours = np.where(rng.random(len(true_share)) < true_share, rng.uniform(0, 48, len(true_share)), np.inf)
    said = true_share ** 3  # a boosted model's probabilities, pushed towards 0
    pred, truth = _noisy(5)
    ranges = replace(fit_intervals(truth, pred, cap=125), **fit_risk(said, hours, horizon=48.0))
    probe = np.array([0.1, 0.3, 0.45]) ** 3
    assert ranges.near_term_risk(probe, np.full(3, 48.0)) == pytest.approx([0.1, 0.3, 0.45], abs=0.03)
    # the failures come evenly over the horizon here: half of them by its middle; none at no wait; held beyond it
    within = ranges.near_term_risk(np.full(5, 0.3 ** 3), np.array([0.0, 18.0, 24.0, 48.0, 96.0]))
    assert within[0] == 0 and within[1] == pytest.approx(0.3 * 18 / 48, abs=0.03)
    assert within[2] == pytest.approx(0.15, abs=0.03) and within[3] == within[4]
    # the plan takes the larger of the two risks: a machine far from failure by its RUL but failing by its probability
    p_with = expected_costs(ranges, np.array([100.0]), np.array([0.0]), PlanCosts(horizon_days=2), probe[2:]).risk
    p_without = expected_costs(replace(ranges, risk_table=None), np.array([100.0]), np.array([0.0]), PlanCosts(horizon_days=2),
                               probe[2:]).risk
    assert p_without[0, 1] < 0.01 and p_with[0, 1] == pytest.approx(0.45 / 2, abs=0.03)
