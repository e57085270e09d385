"""The simulated fleet under a policy: a planned service renews the life, and every policy sees the same machines."""

import numpy as np

from pm_assets.core.policies import pick_oracle, tune_interval
from pm_assets.core.planning import PlanCosts
from pm_assets.sources.policy_fleet import simulate_machine
from pm_assets.sources.simulator import FleetConfig

FLEET = FleetConfig(n_machines=5, n_days=120, seed=3)


def test_a_planned_service_renews_the_life_and_throws_away_what_was_left():
    untouched = simulate_machine(FLEET, 0)
    failure = untouched.failures()[0]
    serviced = simulate_machine(FLEET, 0, (failure - 3.0,))
    assert failure not in serviced.failures()  # the failure it was heading for does not happen
    [done] = serviced.services
    assert done.wasted_days == np.float64(3.0) or abs(done.wasted_days - 3.0) < 1e-9
    assert 0 < done.life_used < 1
    assert (failure - 3.0, "repair", None) in serviced.events  # lands as a renewal, so the features start a new life
    # up to the service, the readings are the same machine's
    before = untouched.t < failure - 3.0
    assert np.array_equal(untouched.sensors[before], serviced.sensors[: before.sum()], equal_nan=True)
    # the next life is the stream's next one: its failure comes a whole life after the service, not at the old time
    assert all(f > failure for f in serviced.failures())


def test_the_same_seed_gives_every_policy_the_same_fleet():
    assert [simulate_machine(FLEET, i).events for i in range(3)] == [simulate_machine(FLEET, i).events for i in range(3)]
    # servicing one machine changes nothing of another
    assert simulate_machine(FLEET, 1).events == simulate_machine(FLEET, 1, ()).events
    assert simulate_machine(FLEET, 0, (10.0,)).events != simulate_machine(FLEET, 0).events


def test_the_oracle_services_by_deadline_within_capacity_and_the_interval_is_tuned():
    picked = pick_oracle(np.array([0.5, 5.0, 1.5, 1.2, 9.0]), capacity=2)
    assert list(picked) == [0]  # the machines failing at 1.2 and 1.5 days both fit tomorrow's two slots
    assert list(pick_oracle(np.array([0.5, 1.1, 1.2, 1.5]), capacity=2)) == [0, 1]  # three due by day 2: one goes today
    assert len(pick_oracle(np.array([3.0, 4.0]), capacity=2)) == 0  # nothing must go today
    lives = np.full(50, 30.0)
    assert tune_interval(lives, PlanCosts()) == 30.0  # every (identical) life serviced as it ends, wasting nothing
