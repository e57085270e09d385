"""The maintenance plan: which machine to service on which of the next days, at least expected cost, under crew capacity.

Each machine's RUL distribution (its prediction plus its band's calibrated residual quantiles,
`core.intervals`) gives, for a service at the start of day ``d`` (``t_d`` hours from its last reading):

    cost(service on d) = P(T < t_d) · failure_cost + P(T >= t_d) · (service_cost + wasted_life_cost_per_hour · E[T - t_d | T >= t_d])
    cost(no service)   = P(T < t_H) · failure_cost + P(T >= t_H) · service_cost

(a machine not serviced within the horizon is serviced later, at best wasting nothing), each ``P`` given that the
machine still runs when the first day starts (``T >= t_0``): a failure before then costs the same whatever the
plan says, and a crew finding the machine down services another; unconditioned, a machine likely to fail before
the first day looked less worth a slot than one that will surely fail on it if still running. The saving of
each (machine, day) is ``cost(no service) - cost(service on d)``; HiGHS (`scipy.optimize.milp`) picks
the set of positive savings with the largest total such that each machine is serviced at most once
and no day holds more services than the crew can do (machines already booked take their day's slot).

"Serviced later" needs a free slot later. The days after the horizon, up to `lookahead_days`, are
counted as a backlog: a machine left to them takes, of the crew's slots up to each of those days, its
risk of failing by then (``P(T < t_k) - P(T < t_H)``), and without a slot it fails with ``P(T < t_K)``.
While the slots suffice this changes nothing; when the machines expected to fail in those days
outnumber them (a wave of machines near the end of their lives), the plan services some of them
within its horizon, on days that would otherwise go unused, rather than let them queue for the same
slots and fail.
The plan is made again every day, so only its first day is final.
"""

import math
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from pm_assets.core.intervals import RulIntervals


@dataclass(frozen=True)
class PlanCosts:
    """What a failure, a service and thrown-away life cost, and what the crew can do."""

    failure_cost: float = 20_000.0  # an unplanned failure: repair and downtime
    service_cost: float = 2_000.0  # a planned service
    wasted_life_cost_per_hour: float = 10.0  # each hour of useful life a service throws away
    capacity: int = 2  # services the crew can do per day
    # Days planned. The plan is made again each day and only its first day is acted on; the further ahead, the wider the
    # RUL ranges and the earlier the plan services (`pm evaluate-policy`, 100 machines x 60 days, seeds 0-3 summed: horizon
    # 1, 2 days cost 1,648, 1,611 k; docs/maintenance-plan.md), so the default looks two days ahead; `--horizon-days 7`
    # shows a week.
    horizon_days: int = 2
    # Days whose slots a machine not serviced within the horizon competes for (at least the horizon; see the module's
    # docstring): a wave of machines failing in them is served early instead of queueing.
    lookahead_days: int = 7

    def __post_init__(self) -> None:
        for name in ("failure_cost", "service_cost", "wasted_life_cost_per_hour"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.failure_cost <= self.service_cost:
            raise ValueError(f"failure_cost ({self.failure_cost:g}) must exceed service_cost ({self.service_cost:g}): "
                             "otherwise no service ever pays")
        for name in ("capacity", "horizon_days", "lookahead_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def lookahead_end(self) -> int:
        """The day (index) the backlog's look-ahead ends: never before the horizon's."""
        return max(self.horizon_days, self.lookahead_days)


@dataclass(frozen=True)
class PlanInput:
    """Machines to plan: their point RUL (hours) and the hours from their last reading to the plan's first day."""

    machine_ids: list[str]
    rul: np.ndarray
    hours_to_first_day: np.ndarray
    booked: dict[str, int] = field(default_factory=dict)  # machine -> day index (0-based) it is already scheduled on
    probability: np.ndarray | None = None  # the failure model's probability: picks each machine's risk level's distribution


@dataclass(frozen=True)
class Backlog:
    """The days after the horizon: what a slot in them saves each machine, how much of the slots up to each day it
    needs (its risk of failing by then), and how many slots there are up to each day."""

    saving: np.ndarray  # (n,)
    need: np.ndarray  # (n, days)
    slots: np.ndarray  # (days,) cumulative


@dataclass(frozen=True)
class ExpectedCosts:
    """What the solver weighs, per machine (and day of the horizon)."""

    saving: np.ndarray  # (n, H): of a service on each day, against a service after the horizon that wastes nothing
    risk: np.ndarray  # (n, H): P(failure before each day)
    risk_within_horizon: np.ndarray  # (n,)
    cost_without_service: np.ndarray  # (n,): within the horizon, serviced after it with a free slot; given it runs at the first day
    backlog: Backlog


def expected_costs(intervals: RulIntervals, rul: np.ndarray, hours_to_first_day: np.ndarray, costs: PlanCosts,
                   probability: np.ndarray | None = None) -> ExpectedCosts:
    """Per machine and day, the expected saving of a service that day and P(failure before it); per machine, the
    cost of no service within the horizon; and the backlog after it."""
    values = intervals.distribution(rul, probability)  # (n, levels) RUL quantiles
    values = np.clip(values, 0.0, None)
    # a quantile at the cap means "at least the cap": the life it throws away is the training lives' mean past the cap
    remaining = np.where(values >= intervals.cap - 1e-6, max(intervals.beyond_cap or intervals.cap, intervals.cap), values)
    h, k = costs.horizon_days, costs.lookahead_end
    days = np.arange(k + 1)
    t = hours_to_first_day[:, None] + 24.0 * days[None, :]  # (n, H + 1)
    # Past the cap the quantiles know nothing more: a failure there is as likely as at the cap (a lower bound).
    t_seen = np.minimum(t, intervals.cap - 1e-9)
    alive = values[:, :, None] >= t_seen[:, None, :]  # (n, levels, H + 1)
    p_fail = 1.0 - alive.mean(axis=1)
    if probability is not None:  # the failure model, calibrated, knows sudden declines the RUL model misses
        p_fail = np.maximum(p_fail, intervals.near_term_risk(probability[:, None], t))
    wasted = np.where(alive, remaining[:, :, None] - t[:, None, :], 0.0).sum(axis=1) / np.maximum(alive.sum(axis=1), 1)
    wasted = np.maximum(wasted, 0.0)
    # weighed given the machine still runs when the first day starts (the module's docstring)
    first = p_fail[:, :1]
    given = np.clip((p_fail - first) / np.maximum(1.0 - first, 1e-9), 0.0, 1.0)
    service = given * costs.failure_cost + (1 - given) * (costs.service_cost + costs.wasted_life_cost_per_hour * wasted)
    defer = given[:, h] * costs.failure_cost + (1 - given[:, h]) * costs.service_cost
    # the backlog counts the failures the model can see: none past the cap, where its quantiles know nothing more
    seen = np.maximum.accumulate(np.where(t < intervals.cap, given, 0.0), axis=1)
    need = np.maximum(seen[:, h + 1:] - given[:, [h]], 0.0)
    backlog = Backlog(saving=np.maximum(seen[:, k] - given[:, h], 0.0) * (costs.failure_cost - costs.service_cost), need=need,
                      slots=costs.capacity * np.arange(1.0, k - h + 1))
    return ExpectedCosts(defer[:, None] - service[:, :h], p_fail[:, :h], p_fail[:, h], defer, backlog)


def solve(saving: np.ndarray, capacity: np.ndarray, backlog: Backlog | None = None) -> np.ndarray:
    """Day index per machine (-1: none) maximising the total saving; at most `capacity[d]` machines on day d. With a
    `backlog`, `saving` is against no service before its end, and a machine not serviced may take its slots instead."""
    n, days = saving.shape
    rows, cols = np.nonzero(saving > 1e-9)  # a non-positive saving is never worth a slot
    later = np.flatnonzero(backlog.saving > 1e-9) if backlog is not None else np.array([], int)
    chosen = np.full(n, -1)
    if len(rows) == 0:
        return chosen
    x, y = np.arange(len(rows)), len(rows) + np.arange(len(later))
    size = len(rows) + len(later)
    once = coo_matrix((np.ones(size), (np.r_[rows, later], np.r_[x, y])), shape=(n, size))
    per_day = coo_matrix((np.ones(len(rows)), (cols, x)), shape=(days, size))
    constraints = [LinearConstraint(once, 0, 1), LinearConstraint(per_day, 0, capacity)]
    objective = -saving[rows, cols]
    if len(later):
        need = backlog.need[later]  # (machines, later days): row j of the constraint is the slots needed up to day j
        later_days = np.tile(np.arange(need.shape[1]), len(later))
        constraints.append(LinearConstraint(coo_matrix((need.ravel(), (later_days, np.repeat(y, need.shape[1]))), shape=(need.shape[1], size)),
                                            0, backlog.slots))
        objective = np.r_[objective, -backlog.saving[later]]
    result = milp(objective, integrality=np.ones(size), bounds=Bounds(0, 1), constraints=constraints, options={"time_limit": 60})
    if result.x is None:
        raise RuntimeError(f"the plan's solver found no solution: {result.message}")
    picked = result.x[:len(rows)] > 0.5
    chosen[rows[picked]] = cols[picked]
    return chosen


def plan(intervals: RulIntervals, machines: PlanInput, costs: PlanCosts) -> pl.DataFrame:
    """One row per machine: whether and on which day (index) to service it, what that is expected to save, and why."""
    expected = expected_costs(intervals, machines.rul, machines.hours_to_first_day, costs, machines.probability)
    saving, p_fail, defer = expected.saving, expected.risk, expected.cost_without_service
    booked = np.array([machines.booked.get(m, -1) for m in machines.machine_ids])
    if (bad := booked >= costs.horizon_days).any():
        raise ValueError(f"machine {machines.machine_ids[int(np.argmax(bad))]} is booked on day {booked[bad][0]}, "
                         f"past the {costs.horizon_days}-day horizon")
    capacity = np.full(costs.horizon_days, costs.capacity, dtype=float)
    np.subtract.at(capacity, booked[booked >= 0], 1)
    if (capacity < 0).any():
        raise ValueError(f"more machines are booked on day {int(np.argmin(capacity))} than the crew's capacity ({costs.capacity})")
    open_saving = np.where(booked[:, None] >= 0, 0.0, saving)
    backlog = replace(expected.backlog, saving=np.where(booked >= 0, 0.0, expected.backlog.saving))  # a booked machine keeps its day
    day = solve(open_saving + backlog.saving[:, None], capacity, backlog)
    day = np.where(booked >= 0, booked, day)
    service = day >= 0
    at = np.where(service, day, 0)
    rows = np.arange(len(day))
    chosen_saving = np.where(service, saving[rows, at], 0.0)
    chosen_risk = np.where(service, p_fail[rows, at], expected.risk_within_horizon)
    lower, upper = intervals.range(machines.rul, probability=machines.probability)
    worth = open_saving.max(axis=1) > 1e-9
    early = service & (booked < 0) & (chosen_saving <= 1e-9)  # taken within the horizon for the backlog's sake alone
    reason = [_reason(s, b, e, w, d, r, p, costs) for s, b, e, w, d, r, p in
              zip(service, booked >= 0, early, worth, day, machines.rul, chosen_risk)]
    return pl.DataFrame({
        "machine_id": machines.machine_ids,
        "service": service,
        "day_index": pl.Series(np.where(service, day, None).tolist(), dtype=pl.Int32),
        "expected_cost_saved": chosen_saving,  # against a later service wasting nothing: below 0 when taken early (reason)
        "failure_risk": chosen_risk,  # before the planned day, or within the horizon when none is planned
        "cost_without_service": defer,
        "rul_hours": machines.rul,
        "rul_lower": lower,
        "rul_upper": upper,
        "reason": reason,
    })


def _reason(service: bool, booked: bool, early: bool, worth: bool, day: int, rul: float, risk: float, costs: PlanCosts) -> str:
    horizon = costs.horizon_days
    if booked:
        return f"already booked on day {day + 1}"
    if early:
        return (f"RUL {rul:.0f} h: serviced early, on day {day + 1}: more machines are expected to fail in the next "
                f"{costs.lookahead_end} days than the crew can service then")
    if service:
        return f"RUL {rul:.0f} h: {risk:.0%} risk of failing before day {day + 1}; the saving is largest that day within capacity"
    if worth:
        return f"RUL {rul:.0f} h: {risk:.0%} risk of failing within {horizon} days, but the crew's slots go to machines that save more"
    return f"RUL {rul:.0f} h: {risk:.0%} risk of failing within {horizon} days, less than a service costs"
