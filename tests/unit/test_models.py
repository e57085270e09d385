import numpy as np
import pytest

from pm_assets.core.features import fit_feature_spec
from pm_assets.core.labels import LabelConfig
from pm_assets.core.metrics import choose_threshold, mean_lead_time_hours, nasa_score
from pm_assets.core.models import FEW_ROWS, TrainConfig, build_training_set, fit_bundle, grouped_folds
from pm_assets.sources.simulator import FleetConfig, simulate_fleet


def test_grouped_folds_never_put_a_machine_on_both_sides():
    machines = np.repeat([f"M{i}" for i in range(23)], np.arange(1, 24))
    seen_in_test = []
    for train, test in grouped_folds(machines, 5):
        assert not set(machines[train]) & set(machines[test])
        seen_in_test += list(set(machines[test]))
    assert sorted(seen_in_test) == sorted(set(machines))


def test_nasa_score_punishes_late_predictions_more():
    assert nasa_score(np.array([50]), np.array([60])) > nasa_score(np.array([50]), np.array([40])) > 0
    assert nasa_score(np.array([50]), np.array([50])) == 0


def test_threshold_follows_the_costs():
    labels = np.array([0] * 90 + [1] * 10)
    probability = np.concatenate([np.linspace(0, 0.6, 90), np.linspace(0.3, 1, 10)])
    cautious = choose_threshold(labels, probability, miss_cost=100, false_alarm_cost=1)
    relaxed = choose_threshold(labels, probability, miss_cost=1, false_alarm_cost=100)
    assert cautious <= 0.3 < relaxed


def test_lead_time_counts_the_first_alert_before_each_failure():
    hours = np.array([10, 5, 1, 20, 3, np.inf])
    alert = np.array([False, True, True, False, False, True])
    failure = np.array([0, 0, 0, 1, 1, -1])
    assert mean_lead_time_hours(hours, alert, failure, window_hours=24) == pytest.approx(2.5)  # 5 h and a miss (0)


def test_same_data_gives_the_same_model():
    fleet = simulate_fleet(FleetConfig(n_machines=8, n_days=40, seed=4, fault_rate=0))
    readings = fleet.telemetry.sort("machine_id", "ts")
    spec = fit_feature_spec(readings)
    training = build_training_set(readings, fleet.events, spec, LabelConfig())
    config = TrainConfig(iterations=20, n_folds=3)
    a, _ = fit_bundle("lightgbm", training, spec, LabelConfig(), config)
    b, _ = fit_bundle("lightgbm", training, spec, LabelConfig(), config)
    X = training.select(spec.feature_names).to_numpy()[:200]
    assert np.array_equal(a.predict(X)[0], b.predict(X)[0])
    assert a.metrics == b.metrics
    assert {"rul_rmse", "rul_nasa_score", "failure_pr_auc", "failure_f1", "failure_mean_lead_time_hours"} <= set(a.metrics)


def test_a_few_rows_of_catboost_score_as_catboost_scores_them():
    """The service's numpy trees (fewer than FEW_ROWS rows) give CatBoost's own RUL and failure probability, also for
    values exactly on a split's border and for missing ones."""
    fleet = simulate_fleet(FleetConfig(n_machines=8, n_days=40, seed=5))
    readings = fleet.telemetry.sort("machine_id", "ts")
    spec = fit_feature_spec(readings)
    training = build_training_set(readings, fleet.events, spec, LabelConfig())
    bundle, _ = fit_bundle("catboost", training, spec, LabelConfig(), TrainConfig(iterations=30, n_folds=2))
    rows = training.select(spec.feature_names).to_numpy()[::40][:FEW_ROWS - 1].copy()
    trees, _ = bundle._symmetric_trees
    rows[0, trees.columns[:10]] = trees.borders[:10]  # on the border: not greater, so the split is false
    rows[1, trees.columns[10:20]] = np.nan
    rul, probability = bundle.predict(rows, threads=1)
    np.testing.assert_allclose(rul, np.clip(bundle.rul_model.predict(rows), 0, LabelConfig().rul_cap_hours), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(probability, bundle.failure_model.predict_proba(rows)[:, 1], rtol=1e-12, atol=1e-12)
    assert len(np.unique(rul)) > 10 and 0 < probability.min() < probability.max() < 1
