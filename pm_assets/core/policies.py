"""The usual maintenance policies beside the plan, and what a policy cost: the yardsticks `pm evaluate-policy` uses.

Each rule picks today's services among the machines that are running, at most `capacity` of them:

- run to failure: none;
- fixed interval: every machine whose time since its last renewal reached the interval, oldest first (the
  interval that minimises the cost per day over the lives seen in the history, renewal-reward style);
- alert: every machine whose failure probability is at or above the model's alert threshold, riskiest first;
- oracle: knows each failure time; services a machine on the last day it can without missing another
  machine's deadline (earliest deadline first), so it throws away less than a day of life per service. On
  recorded lives, where every life is known in advance, it is the least-cost schedule of all of them at once
  (`recorded_policies.oracle_schedule`).
"""

from dataclasses import dataclass

import numpy as np

from pm_assets.core.planning import PlanCosts

POLICIES = ("run_to_failure", "fixed_interval", "alert", "plan", "oracle")
ORACLE_LOOKAHEAD_DAYS = 14


def tune_interval(lives_days: np.ndarray, costs: PlanCosts, grid: np.ndarray | None = None) -> float:
    """The service interval (days since renewal) of least expected cost per day over the observed lives."""
    lives = np.asarray(lives_days, float)
    if len(lives) == 0:
        raise ValueError("tuning a service interval needs at least one observed life in the history")
    grid = np.arange(1.0, np.ceil(lives.max()) + 1) if grid is None else grid
    rates = []
    for interval in grid:
        fails = lives < interval
        cost = np.where(fails, costs.failure_cost,
                        costs.service_cost + costs.wasted_life_cost_per_hour * 24 * np.maximum(lives - interval, 0)).mean()
        rates.append(cost / np.minimum(lives, interval).mean())
    return float(grid[int(np.argmin(rates))])


def pick_fixed_interval(age_days: np.ndarray, interval: float, capacity: int) -> np.ndarray:
    due = np.flatnonzero(age_days >= interval)
    return due[np.argsort(-age_days[due], kind="stable")][:capacity]


def pick_alerts(probability: np.ndarray, threshold: float, capacity: int) -> np.ndarray:
    alerted = np.flatnonzero(probability >= threshold)
    return alerted[np.argsort(-probability[alerted], kind="stable")][:capacity]


def pick_oracle(days_to_failure: np.ndarray, capacity: int, horizon: int = ORACLE_LOOKAHEAD_DAYS) -> np.ndarray:
    """Earliest deadline first: service today the fewest machines that keep every failure within `horizon` days
    avoidable at `capacity` a day (a machine failing before tomorrow must go today)."""
    order = np.argsort(days_to_failure, kind="stable")
    deadlines = days_to_failure[order]
    need = 0
    for k in range(1, horizon + 1):  # machines failing by the start of day k must be serviced on one of the k days before
        due = int(np.sum(deadlines <= k))
        need = max(need, due - capacity * (k - 1))
    return order[:min(need, capacity)]


@dataclass
class PolicyOutcome:
    """What a policy cost over the evaluated days."""

    policy: str
    failures: int = 0
    services: int = 0
    wasted_hours: float = 0.0
    life_used: list[float] | None = None  # share of each serviced life used when serviced
    days: int = 0
    capacity: int = 1

    def cost(self, costs: PlanCosts) -> float:
        return self.failures * costs.failure_cost + self.services * costs.service_cost + self.wasted_hours * costs.wasted_life_cost_per_hour

    def row(self, costs: PlanCosts, run_to_failure: float, oracle: float) -> dict[str, float | str]:
        total = self.cost(costs)
        saved = run_to_failure - oracle
        return {
            "policy": self.policy,
            "total_cost": total,
            "unplanned_failures": self.failures,
            "planned_services": self.services,
            "mean_life_used_at_service": float(np.mean(self.life_used)) if self.life_used else float("nan"),
            "crew_utilisation": self.services / (self.capacity * self.days) if self.days else float("nan"),
            "share_of_oracle_savings": (run_to_failure - total) / saved if saved > 0 else float("nan"),
        }


def compared(outcomes: dict[str, PolicyOutcome], costs: PlanCosts) -> list[dict]:
    """One row of figures per policy, each judged against run-to-failure and the oracle (NaN where either is missing)."""
    cost_of = {name: outcome.cost(costs) for name, outcome in outcomes.items()}
    rtf, oracle = cost_of.get("run_to_failure", float("nan")), cost_of.get("oracle", float("nan"))
    return [outcome.row(costs, rtf, oracle) for outcome in outcomes.values()]


def table(rows: list[dict]) -> str:
    """The per-policy table, as printed."""
    header = f"{'policy':<16}{'total cost':>12}{'failures':>10}{'services':>10}{'life used':>11}{'crew use':>10}{'of oracle':>11}"
    lines = [header]
    for r in rows:
        life = r["mean_life_used_at_service"]  # none for a policy that never services
        lines.append(f"{r['policy']:<16}{r['total_cost']:>12,.0f}{r['unplanned_failures']:>10}{r['planned_services']:>10}"
                     f"{'-' if np.isnan(life) else f'{life:.0%}':>11}{r['crew_utilisation']:>10.0%}{r['share_of_oracle_savings']:>11.0%}")
    return "\n".join(lines)
