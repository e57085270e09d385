"""The maintenance policies judged on recorded lives: what each would have cost had it acted on the predictions logged.

A recorded life runs from its start to its failure (or to the end of the record, censored). Each day,
at its start, a policy picks services among the lives running, from the last prediction logged before
then; a service ends the life there, throwing away what was left of it (to the end of the record, a
lower bound, when the life was censored); a life that reaches its failure unserviced is a failure.
The record cannot say what a serviced machine would have done next, so its next recorded life starts
when the record says. This is the C-MAPSS comparison (each engine a life) and the demo's over its
streamed days; on the simulated fleet, where acting changes the future, `experiments.policy_evaluation`
runs the fleet again instead.
"""

from dataclasses import dataclass

import numpy as np
import polars as pl

from pm_assets.core.intervals import RulIntervals
from pm_assets.core.planning import PlanCosts, PlanInput, plan, solve
from pm_assets.core.policies import POLICIES, PolicyOutcome, pick_alerts, pick_fixed_interval


@dataclass(frozen=True)
class Life:
    machine_id: str
    start: float  # days since the record's origin
    end: float  # its failure, or the end of the record
    failed: bool


@dataclass(frozen=True)
class Model:
    """What the model-driven policies need of the model that made a prediction."""

    intervals: RulIntervals
    threshold: float


def lives_from_events(events: pl.DataFrame, first_seen: dict[str, float], until: float) -> list[Life]:
    """Lives between renewals (repairs) from events with a `day` column (days since the origin), up to `until`, by machine
    id: the policies break ties (machines of the same age, say) by this order, so it must not depend on how
    `first_seen` was read (an unordered GROUP BY moved the demo's fixed-interval cost by 6 %)."""
    lives = []
    for machine, start in sorted(first_seen.items()):
        rows = events.filter(pl.col("machine_id") == machine).sort("day")
        for day, kind in zip(rows["day"].to_list(), rows["event_type"].to_list()):
            if day >= until:
                break
            if kind == "failure" and start is not None:
                lives.append(Life(machine, start, day, True))
                start = None
            elif kind == "repair":
                start = day
        if start is not None and start < until:
            lives.append(Life(machine, start, until, False))
    return lives


def evaluate(lives: list[Life], predictions: pl.DataFrame, models: dict[str, Model], days: range, costs: PlanCosts,
             interval: float) -> dict[str, PolicyOutcome]:
    """Every policy over `days` (integer days since the origin). `predictions`: machine_id, day, rul_pred, probability,
    model_version (whose entry in `models` judges it)."""
    logged = {key[0]: (g["day"].to_numpy(), g) for key, g in predictions.sort("day").group_by("machine_id")}
    outcomes, schedule = {}, oracle_schedule(lives, days, costs)
    for policy in POLICIES:
        outcome = PolicyOutcome(policy, days=len(days), capacity=costs.capacity, life_used=[])
        serviced: set[int] = set()
        for day in days:
            now = float(day)
            running = [k for k, life in enumerate(lives) if k not in serviced and life.start <= now < life.end]
            latest = [_latest(logged.get(lives[k].machine_id), lives[k].start, now) for k in running]
            chosen = ([j for j, k in enumerate(running) if schedule.get(k) == day] if policy == "oracle" else
                      _pick(policy, [lives[k] for k in running], latest, models, now, costs, interval))
            for j in chosen:
                life = lives[running[j]]
                serviced.add(running[j])
                outcome.services += 1
                outcome.wasted_hours += 24 * (life.end - now)
                outcome.life_used.append((now - life.start) / (life.end - life.start) if life.failed else np.nan)
        outcome.failures = sum(1 for k, life in enumerate(lives)
                               if life.failed and k not in serviced and days.start <= life.end < days.stop)
        outcome.life_used = [u for u in outcome.life_used if np.isfinite(u)]
        outcomes[policy] = outcome
    return outcomes


def oracle_schedule(lives: list[Life], days: range, costs: PlanCosts) -> dict[int, int]:
    """The oracle on recorded lives: knowing every failure time, including those of lives not yet begun, the service
    day of each life (index into `lives`) that saves the most in total with the crew's capacity each day (HiGHS,
    `planning.solve`). A life not failing within `days` needs no service."""
    saving = np.zeros((len(lives), len(days)))
    for k, life in enumerate(lives):
        if life.failed and days.start <= life.end < days.stop:
            for d, day in enumerate(days):
                if life.start <= day < life.end:
                    saving[k, d] = costs.failure_cost - costs.service_cost - costs.wasted_life_cost_per_hour * 24 * (life.end - day)
    chosen = solve(saving, np.full(len(days), costs.capacity, dtype=float))
    return {k: days[d] for k, d in enumerate(chosen) if d >= 0}


def _latest(logged: tuple[np.ndarray, pl.DataFrame] | None, since: float, now: float) -> dict | None:
    if logged is None:
        return None
    days, frame = logged
    k = int(np.searchsorted(days, now)) - 1
    return frame.row(k, named=True) if k >= 0 and days[k] >= since else None


def _pick(policy: str, running: list[Life], latest: list[dict | None], models: dict[str, Model], now: float,
          costs: PlanCosts, interval: float) -> list[int]:
    if policy == "run_to_failure" or not running:
        return []
    if policy == "fixed_interval":
        return list(pick_fixed_interval(np.array([now - life.start for life in running]), interval, costs.capacity))
    scored = [j for j, row in enumerate(latest) if row is not None and row["model_version"] in models]
    if not scored:
        return []
    if policy == "alert":  # each prediction against its own model's threshold: how far above it, riskiest first
        margin = np.array([_number(latest[j]["probability"]) - models[latest[j]["model_version"]].threshold for j in scored])
        return [scored[i] for i in pick_alerts(np.nan_to_num(margin, nan=-1.0), 0.0, costs.capacity)]
    plans = []  # the plan, one per model version serving (their machines share the crew in order of expected saving)
    for version in dict.fromkeys(latest[j]["model_version"] for j in scored):
        members = [j for j in scored if latest[j]["model_version"] == version]
        hours = np.array([24 * (now - latest[j]["day"]) for j in members])
        planned = plan(models[version].intervals, PlanInput([str(j) for j in members], np.array([latest[j]["rul_pred"] for j in members]),
                                                            hours, probability=np.array([_number(latest[j]["probability"]) for j in members])),
                       costs)
        today = planned.with_row_index("k").filter(pl.col("day_index") == 0)
        plans += [(saving, members[k]) for k, saving in zip(today["k"], today["expected_cost_saved"])]
    return [j for _, j in sorted(plans, reverse=True)][:costs.capacity]


def _number(value: float | None) -> float:
    return np.nan if value is None else float(value)
