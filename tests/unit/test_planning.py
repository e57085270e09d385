"""The maintenance plan: HiGHS's assignment respects the crew, services a machine once, and saves what it says."""

import numpy as np
import polars as pl
import pytest

from pm_assets.core.intervals import fit_intervals
from pm_assets.core.planning import PlanCosts, PlanInput, expected_costs, plan


@pytest.fixture(scope="module")
def intervals():
    rng = np.random.default_rng(0)
    pred = rng.uniform(0, 125, 20_000)
    return fit_intervals(np.clip(pred + rng.normal(0, 3 + pred / 6), 0, 125), pred, cap=125.0, beyond_cap=400.0)


def _fleet(n: int, seed: int = 1) -> PlanInput:
    rng = np.random.default_rng(seed)
    return PlanInput([f"M{i:04d}" for i in range(n)], rng.uniform(0, 125, n), rng.uniform(0, 24, n))


def test_the_plan_respects_capacity_and_services_a_machine_at_most_once(intervals):
    costs = PlanCosts(capacity=3, horizon_days=7)
    planned = plan(intervals, _fleet(300), costs)
    assert planned.height == 300 and planned["machine_id"].n_unique() == 300  # one row, so at most one day, per machine
    per_day = planned.filter("service").group_by("day_index").len()
    assert per_day["len"].max() <= 3 and per_day["day_index"].is_between(0, 6).all()
    assert planned.filter(service=True, day_index=0).height == 3  # many machines near failure: the first day is full
    assert (planned.filter("service")["expected_cost_saved"] > 0).all()


def test_a_booked_machine_keeps_its_day_and_takes_a_slot(intervals):
    fleet = _fleet(300)
    fleet = PlanInput(fleet.machine_ids, fleet.rul, fleet.hours_to_first_day, booked={"M0007": 1})
    planned = plan(intervals, fleet, PlanCosts(capacity=3, horizon_days=7))
    assert planned.filter(machine_id="M0007")["day_index"].item() == 1
    assert planned.filter(service=True, day_index=1).height == 3
    with pytest.raises(ValueError, match="booked on day 9"):
        plan(intervals, PlanInput(["A"], np.array([5.0]), np.array([1.0]), {"A": 9}), PlanCosts(horizon_days=7))


def test_machines_close_to_failure_go_first_and_healthy_ones_are_not_serviced(intervals):
    fleet = PlanInput(["soon", "later", "healthy"], np.array([10.0, 60.0, 125.0]), np.zeros(3))
    planned = plan(intervals, fleet, PlanCosts(capacity=1, horizon_days=3)).sort("machine_id")
    day = dict(zip(planned["machine_id"], planned["day_index"]))
    assert day["soon"] == 0 and day["healthy"] is None
    assert day["later"] is not None and day["later"] >= 1
    expected = expected_costs(intervals, np.array([10.0]), np.zeros(1), PlanCosts(horizon_days=7))
    assert (np.diff(expected.risk[0]) >= 0).all() and expected.saving[0, 0] > expected.saving[0, -1]


def test_a_machine_likely_down_before_the_first_day_is_weighed_as_if_the_crew_finds_it_running(intervals):
    # "overdue": half its failure-time distribution lies before the first day, and it fails within that day if it is
    # still running then; "due": a 75 % risk of failing within the day. Found running, "overdue" is the one to service;
    # found down, its failure cost the same whatever the plan said (and the crew takes another machine).
    fleet = PlanInput(["overdue", "due"], np.array([10.0, 20.0]), np.array([10.0, 0.0]))
    expected = expected_costs(intervals, fleet.rul, fleet.hours_to_first_day, PlanCosts(capacity=1, horizon_days=1))
    assert expected.risk[0, 0] > 0.4 and expected.saving[0, 0] > expected.saving[1, 0]
    planned = plan(intervals, fleet, PlanCosts(capacity=1, horizon_days=1))
    assert planned.filter("service")["machine_id"].to_list() == ["overdue"]


def test_a_wave_of_machines_failing_after_the_horizon_is_served_early_on_its_free_days(intervals):
    # eight machines likely to fail on days 4-5, one slot a day: left to those days, most would queue and fail
    wave = PlanInput([f"W{i}" for i in range(8)], np.linspace(90.0, 110.0, 8), np.zeros(8))
    blind = plan(intervals, wave, PlanCosts(capacity=1, horizon_days=2, lookahead_days=2))
    assert not blind["service"].any()  # each alone is worth more later: within 2 days it throws life away
    planned = plan(intervals, wave, PlanCosts(capacity=1, horizon_days=2))
    assert planned.filter("service")["day_index"].sort().to_list() == [0, 1]  # the horizon's idle slots are used
    assert planned.filter("service")["reason"].str.contains("serviced early").all()
    assert planned.filter("service")["rul_hours"].max() < planned.filter(~pl.col("service"))["rul_hours"].max()
    # a crew that can take the wave later keeps it there
    assert not plan(intervals, wave, PlanCosts(capacity=4, horizon_days=2))["service"].any()


@pytest.mark.parametrize("setting, value, message", [
    ("failure_cost", -1.0, "failure_cost must be a finite number >= 0"),
    ("service_cost", float("nan"), "service_cost must be a finite number >= 0"),
    ("capacity", 0, "capacity must be >= 1"),
    ("horizon_days", 0, "horizon_days must be >= 1"),
    ("lookahead_days", 0, "lookahead_days must be >= 1"),
    ("service_cost", 30_000.0, "must exceed service_cost"),
])
def test_bad_cost_settings_are_refused_naming_the_setting(setting, value, message):
    with pytest.raises(ValueError, match=message):
        PlanCosts(**{setting: value})
