"""`pm evaluate-policy`: the same simulated fleet run under each maintenance policy, where acting changes the future.

A model is trained with the platform's own feature, label and model code on the fleet's first
`history_days` (run to failure), then each day of the rest every policy picks its services at the day's
start from what it can know by then; a service renews the machine's life (`sources.policy_fleet`), so a
policy changes which failures happen. With `retrain_every`, the model-driven policies retrain on their
own fleet's history every so many days (the retraining loop, by the clock).
"""

import time
from dataclasses import dataclass, field

import numpy as np

from pm_assets.core.features import FeatureConfig, fit_feature_spec
from pm_assets.core.labels import LabelConfig
from pm_assets.core.latest_features import latest_features
from pm_assets.core.models import ModelBundle, TrainConfig, build_training_set, fit_bundle
from pm_assets.core.planning import PlanCosts, PlanInput, plan
from pm_assets.core.policies import POLICIES, PolicyOutcome, compared, pick_alerts, pick_fixed_interval, pick_oracle, tune_interval
from pm_assets.core.constants import FAILURE, REPAIR
from pm_assets.sources.policy_fleet import MachineRun, as_frames, simulate_machine
from pm_assets.sources.simulator import FleetConfig


@dataclass(frozen=True)
class Evaluation:
    fleet: FleetConfig
    history_days: int = 60
    costs: PlanCosts = field(default_factory=lambda: PlanCosts(capacity=3))
    retrain_every: int = 0  # days; 0: the model trained on the history serves throughout
    library: str = "lightgbm"
    iterations: int = TrainConfig.iterations

    def __post_init__(self) -> None:
        if not 14 <= self.history_days < self.fleet.n_days:
            raise ValueError(f"history_days must be >= 14 and leave days to evaluate (the fleet has {self.fleet.n_days}), "
                             f"got {self.history_days}")
        if self.retrain_every < 0:
            raise ValueError(f"retrain_every must be >= 0, got {self.retrain_every}")


def train(evaluation: Evaluation, runs: list[MachineRun], until: float) -> ModelBundle:
    telemetry, events = as_frames(evaluation.fleet, runs, until)
    spec = fit_feature_spec(telemetry, FeatureConfig(), seed=evaluation.fleet.seed)
    label_config = LabelConfig()
    training = build_training_set(telemetry, events, spec, label_config)
    bundle, _ = fit_bundle(evaluation.library, training, spec, label_config, TrainConfig(iterations=evaluation.iterations))
    return bundle


def observed_lives(runs: list[MachineRun], until: float) -> np.ndarray:
    """Days from a repair to the next failure, for lives wholly seen before `until`."""
    lives = []
    for run in runs:
        started = None
        for at, kind, _ in run.events:
            if at >= until:
                break
            if kind == FAILURE and started is not None:
                lives.append(at - started)
            if kind == REPAIR:
                started = at
    return np.array(lives)


def _scores(bundle: ModelBundle, runs: list[MachineRun], up: list[int], now: float, origin: np.datetime64):
    """RUL, failure probability and hours since the last reading of the running machines whose life can be scored."""
    scored, histories, gaps = [], [], []
    for i in up:
        history = runs[i].history(now, origin)
        if history is None:
            continue
        start = 0 if history.repairs is None else int(np.searchsorted(history.ts, history.repairs.max()))
        if len(history.ts) - start < bundle.feature_spec.min_readings:
            continue  # a life just begun: nothing to score yet
        scored.append(i)
        histories.append(history)
        gaps.append(now - runs[i].t[len(history.ts) - 1])
    if not scored:
        return np.array([], int), np.array([]), np.array([]), np.array([])
    rul, probability = bundle.predict(latest_features(bundle.feature_spec, histories), threads=1)
    return np.array(scored), rul, probability, np.array(gaps) * 24


def run_policy(evaluation: Evaluation, policy: str, bundle: ModelBundle | None, interval: float | None,
               history_runs: list[MachineRun], log=print) -> PolicyOutcome:
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {POLICIES}")
    fleet, costs = evaluation.fleet, evaluation.costs
    origin = np.datetime64(fleet.start_date, "us")
    runs = list(history_runs)
    services: list[list[float]] = [[] for _ in runs]
    first, end = evaluation.history_days, fleet.n_days
    for day in range(first, end):
        now = float(day)
        if bundle is not None and evaluation.retrain_every and day > first and (day - first) % evaluation.retrain_every == 0:
            started = time.perf_counter()
            bundle = train(evaluation, runs, now)
            log(f"    {policy}: retrained on its own fleet's days before {day} ({time.perf_counter() - started:.0f} s)")
        up = [i for i, run in enumerate(runs) if not run.down_at(now)]
        chosen: np.ndarray = np.array([], int)
        if policy == "fixed_interval":
            ages = np.array([now - (runs[i].last_renewal(now) or 0.0) for i in up])
            chosen = np.array(up)[pick_fixed_interval(ages, interval, costs.capacity)] if up else chosen
        elif policy == "oracle":
            left = np.array([min(runs[i].failures(since=now), default=np.inf) - now for i in up])
            chosen = np.array(up)[pick_oracle(left, costs.capacity)] if up else chosen
        elif policy in ("alert", "plan"):
            machines, rul, probability, hours = _scores(bundle, runs, up, now, origin)
            if len(machines) and policy == "alert":
                chosen = machines[pick_alerts(probability, bundle.threshold, costs.capacity)]
            elif len(machines):
                planned = plan(bundle.intervals, PlanInput([str(i) for i in machines], rul, hours, probability=probability), costs)
                chosen = machines[(planned["day_index"] == 0).fill_null(False).to_numpy()]
        for i in chosen:
            services[i].append(now)
            runs[i] = simulate_machine(fleet, int(i), tuple(services[i]))
    outcome = PolicyOutcome(policy, days=end - first, capacity=costs.capacity, life_used=[])
    for run in runs:
        outcome.failures += len(run.failures(since=first, until=end))
        for done in run.services:
            outcome.services += 1
            outcome.wasted_hours += 24 * done.wasted_days
            outcome.life_used.append(done.life_used)
    return outcome


def evaluate(evaluation: Evaluation, policies: tuple[str, ...] = POLICIES, log=print) -> list[dict]:
    """Every policy on the same fleet; one row of figures per policy (`core.policies.PolicyOutcome.row`)."""
    fleet = evaluation.fleet
    started = time.perf_counter()
    history_runs = [simulate_machine(fleet, i) for i in range(fleet.n_machines)]
    bundle = train(evaluation, history_runs, float(evaluation.history_days))
    interval = tune_interval(observed_lives(history_runs, evaluation.history_days), evaluation.costs)
    log(f"  trained {evaluation.library} on days 0..{evaluation.history_days - 1} of {fleet.n_machines} machines run to failure "
        f"({time.perf_counter() - started:.0f} s, CV RUL RMSE {bundle.metrics['rul_rmse']:.2f}, range coverage "
        f"{bundle.metrics['rul_interval_coverage']:.1%}); fixed interval tuned on the history: {interval:g} days")
    outcomes = {}
    for policy in policies:
        started = time.perf_counter()
        outcomes[policy] = run_policy(evaluation, policy, bundle if policy in ("alert", "plan") else None, interval, history_runs, log)
        log(f"  {policy}: {outcomes[policy].failures} failures, {outcomes[policy].services} services "
            f"({time.perf_counter() - started:.0f} s)")
    return compared(outcomes, evaluation.costs)
