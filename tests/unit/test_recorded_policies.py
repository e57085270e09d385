"""The policies judged on recorded lives: a service ends a life and counts what it threw away; a missed end is a failure."""

import numpy as np
import polars as pl

from pm_assets.core.intervals import fit_intervals
from pm_assets.core.planning import PlanCosts
from pm_assets.core.recorded_policies import Life, Model, evaluate, lives_from_events


def _exact_model() -> Model:
    rng = np.random.default_rng(0)
    pred = rng.uniform(0, 125, 5000)
    return Model(fit_intervals(pred + rng.normal(0, 2, 5000), pred, cap=125.0, beyond_cap=300.0), threshold=0.5)


def test_each_policy_on_three_recorded_lives():
    lives = [Life("A", 0.0, 5.5, True), Life("B", 0.0, 9.5, True), Life("C", 0.0, 30.0, False)]
    # the model's RUL is exact (hours to the end of each failing life), logged at the end of every day
    rows = [(m, float(d), 24 * (end - d), 0.9 if end - d < 2 else 0.0, "v") for m, end in (("A", 5.5), ("B", 9.5), ("C", 99.0))
            for d in range(0, int(min(end, 30)))]
    predictions = pl.DataFrame(rows, schema=["machine_id", "day", "rul_pred", "probability", "model_version"], orient="row")
    costs = PlanCosts(capacity=1)
    outcomes = evaluate(lives, predictions, {"v": _exact_model()}, range(0, 30), costs, interval=3.0)
    assert outcomes["run_to_failure"].failures == 2 and outcomes["run_to_failure"].services == 0
    assert outcomes["oracle"].failures == 0 and outcomes["oracle"].services == 2
    assert max(outcomes["oracle"].wasted_hours / 2, 0) < 24  # each serviced within its last day
    assert outcomes["plan"].failures == 0 and outcomes["plan"].services == 2  # acts before each failure, leaves C alone
    assert outcomes["plan"].cost(costs) < outcomes["alert"].cost(costs) or outcomes["alert"].failures == 0
    fixed = outcomes["fixed_interval"]  # at 3 days of age, one a day (crew 1): A on day 3, B on 4, the healthy C on 5
    assert fixed.failures == 0 and fixed.services == 3 and fixed.wasted_hours == 24 * (2.5 + 5.5 + 25)


def test_lives_run_from_repair_to_failure_and_the_last_one_is_censored():
    events = pl.DataFrame({"machine_id": ["A"] * 4, "day": [3.0, 4.0, 9.0, 10.0], "event_type": ["failure", "repair", "failure", "repair"]})
    lives = lives_from_events(events, {"A": 0.0}, until=20.0)
    assert lives == [Life("A", 0.0, 3.0, True), Life("A", 4.0, 9.0, True), Life("A", 10.0, 20.0, False)]
