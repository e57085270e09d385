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


def test_fixed_interval_does_not_depend_on_the_order_machines_were_read_in():
    # four machines of the same age, crew 1: which is serviced first is a tie, broken by machine id (A and B, failing on
    # days 6 and 6.5, then come first; read C and D first, and both would fail)
    events = pl.DataFrame({"machine_id": ["A", "B"], "day": [6.0, 6.5], "event_type": ["failure"] * 2})
    outcomes = []
    for order in (["A", "B", "C", "D"], ["D", "C", "B", "A"], ["B", "D", "A", "C"]):
        lives = lives_from_events(events, {m: 0.0 for m in order}, until=12.0)
        assert [life.machine_id for life in lives] == ["A", "B", "C", "D"]
        fixed = evaluate(lives, pl.DataFrame(schema={"machine_id": pl.String, "day": pl.Float64}), {}, range(0, 12), PlanCosts(capacity=1), 5.0)["fixed_interval"]
        outcomes.append((fixed.failures, fixed.services, fixed.wasted_hours))
    assert outcomes[0] == outcomes[1] == outcomes[2] and outcomes[0][:2] == (0, 4)


def test_the_oracle_makes_room_for_lives_not_begun_yet():
    # X runs alone until day 8, when Y and Z begin; all three fail at 9.5. A crew of one a day can save them all only
    # by servicing X before Y and Z arrive: knowing what is to come, the oracle does; deadline-first on the lives
    # running could not.
    lives = [Life("X", 0.0, 9.5, True), Life("Y", 8.0, 9.5, True), Life("Z", 8.0, 9.5, True)]
    predictions = pl.DataFrame(schema={"machine_id": pl.String, "day": pl.Float64, "rul_pred": pl.Float64,
                                       "probability": pl.Float64, "model_version": pl.String})
    costs = PlanCosts(capacity=1)
    outcomes = evaluate(lives, predictions, {}, range(0, 12), costs, interval=50.0)
    oracle = outcomes["oracle"]
    assert oracle.failures == 0 and oracle.services == 3
    assert oracle.wasted_hours == 24 * (2.5 + 1.5 + 0.5)  # X on day 7 (the latest that leaves room), Y and Z on days 8 and 9
    assert all(oracle.cost(costs) <= outcome.cost(costs) for outcome in outcomes.values())
