"""The maintenance plan's figures: planning speed, the policies on both simulated fleets, and on C-MAPSS's recorded lives.

    .venv/bin/python benchmarks/policy.py [--cmapss ../shared/data/cmapss] [--machines 100] [--skip-fleets]

1. `core.planning.plan` on 2,000 machines x 7 days (target <= 2 s).
2. `pm evaluate-policy` on the default fleet and on the `new_failure_mode` fleet (acting on the plan changes the future).
3. C-MAPSS (each training file a fleet): LightGBM out-of-fold predictions of every cycle (engine-grouped CV, so no
   engine is judged by a model that saw it), the 90 % ranges' coverage and width, then the same policies on the
   recorded lives: engines come into service over the first days (24 cycles a day), a service ends an engine's
   trajectory (the life thrown away is its true remaining cycles), and reaching the end of it unserviced is a failure.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from pm_assets.core.features import fit_feature_spec
from pm_assets.core.intervals import fit_intervals
from pm_assets.core.labels import LabelConfig
from pm_assets.core.models import TrainConfig, build_training_set, cross_validate
from pm_assets.core.planning import PlanCosts, PlanInput, plan
from pm_assets.core.policies import POLICIES, PolicyOutcome, pick_alerts, pick_fixed_interval, pick_oracle, table, tune_interval
from pm_assets.drivers.policy_evaluation import Evaluation, evaluate
from pm_assets.sources.loaders.cmapss import load_cmapss
from pm_assets.sources.simulator import DriftScenario, FleetConfig

CYCLES_PER_DAY = 24


def planning_speed() -> None:
    rng = np.random.default_rng(0)
    pred = rng.uniform(0, 125, 20_000)
    intervals = fit_intervals(np.clip(pred + rng.normal(0, 3 + pred / 5), 0, 125), pred, 125.0)
    n = 2000
    machines = PlanInput([f"M{i:04d}" for i in range(n)], rng.uniform(0, 125, n), rng.uniform(0, 24, n))
    for capacity in (20, 100):
        started = time.perf_counter()
        planned = plan(intervals, machines, PlanCosts(capacity=capacity, horizon_days=7))
        print(f"plan: {n} machines x 7 days, capacity {capacity}/day: {time.perf_counter() - started:.2f} s, "
              f"{int(planned['service'].sum())} services")


def recorded_lives(subset_dir: Path, subset: str, costs: PlanCosts, engines_per_day: float, log=print) -> list[dict]:
    data = load_cmapss(subset_dir / f"train_{subset}.txt")
    label_config = LabelConfig(rul_cap_hours=125.0, horizon_hours=48.0)
    spec = fit_feature_spec(data.telemetry, seed=42)
    training = build_training_set(data.telemetry, data.events, spec, label_config)
    validation = cross_validate("lightgbm", training, spec.feature_names, TrainConfig(), label_config)
    m = validation.metrics
    log(f"{subset}: 90 % ranges, engine-grouped CV: coverage {m['rul_interval_coverage']:.1%} on every cycle "
        f"({m['rul_interval_coverage_cuts']:.1%} at the cut points), mean width {m['rul_interval_width']:.1f}, "
        f"true RUL <= 30: {m['rul_interval_width_near_failure']:.1f}")
    every = validation.every_rul_prediction.join(
        validation.failure_predictions.select("machine_id", "ts", "probability"), on=["machine_id", "ts"], how="left")
    lengths = data.telemetry.group_by("machine_id").len().sort("machine_id")
    engines = lengths["machine_id"].to_list()
    life = dict(zip(engines, lengths["len"].to_list()))  # cycles; the last one is the failure
    start = {e: k / engines_per_day for k, e in enumerate(engines)}  # the day each engine comes into service
    frame = every.with_columns(pl.col("ts").rank("ordinal").over("machine_id").alias("cycle"))
    by_engine = {key[0]: g.sort("cycle") for key, g in frame.group_by("machine_id")}
    lives = np.array([life[e] / CYCLES_PER_DAY for e in engines])
    interval = tune_interval(lives, costs)
    end_day = int(np.ceil(max(start[e] + life[e] / CYCLES_PER_DAY for e in engines))) + 1
    outcomes = {}
    for policy in POLICIES:
        outcome = PolicyOutcome(policy, days=end_day, capacity=costs.capacity, life_used=[])
        done: set[str] = set()
        for day in range(end_day):
            active = [e for e in engines if e not in done and start[e] <= day]
            cycles = np.array([int((day - start[e]) * CYCLES_PER_DAY) for e in active])
            failed = [e for e, c in zip(active, cycles) if c >= life[e]]
            outcome.failures += len(failed)
            done |= set(failed)
            keep = [k for k, e in enumerate(active) if e not in failed and cycles[k] >= 1]
            active, cycles = [active[k] for k in keep], cycles[keep]
            if not active:
                continue
            rows = [by_engine[e].row(min(c, by_engine[e].height) - 1, named=True) for e, c in zip(active, cycles)]
            if policy == "fixed_interval":
                chosen = pick_fixed_interval(cycles / CYCLES_PER_DAY, interval, costs.capacity)
            elif policy == "oracle":
                chosen = pick_oracle(np.array([(life[e] - c) / CYCLES_PER_DAY for e, c in zip(active, cycles)]), costs.capacity)
            elif policy == "alert":
                chosen = pick_alerts(np.array([r["probability"] if r["probability"] is not None else 0.0 for r in rows]),
                                     validation.threshold, costs.capacity)
            elif policy == "plan":
                planned = plan(validation.intervals, PlanInput(active, np.array([r["rul_pred"] for r in rows]), np.zeros(len(active))), costs)
                chosen = np.flatnonzero((planned["day_index"] == 0).fill_null(False).to_numpy())
            else:
                chosen = np.array([], int)
            for k in chosen:
                e, c = active[k], int(cycles[k])
                outcome.services += 1
                outcome.wasted_hours += life[e] - c  # a cycle stands for an hour
                outcome.life_used.append(c / life[e])
                done.add(e)
        outcomes[policy] = outcome
    rtf, oracle = outcomes["run_to_failure"].cost(costs), outcomes["oracle"].cost(costs)
    return [o.row(costs, rtf, oracle) for o in outcomes.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cmapss", type=Path, help="folder of train_FD00X.txt (skipped when absent)")
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--retrain-every", type=int, default=10, help="the drifting fleet's retraining period, days")
    parser.add_argument("--skip-fleets", action="store_true")
    args = parser.parse_args()
    planning_speed()
    if not args.skip_fleets:
        for name, drift, retrain in (("default fleet", None, 0),
                                     ("new_failure_mode fleet", DriftScenario("new_failure_mode", 75, 1.0), args.retrain_every)):
            started = time.perf_counter()
            print(f"== {name}: {args.machines} machines, days 60..119 under each policy, crew 3/day"
                  + (f", model retrained every {retrain} days" if retrain else ""))
            rows = evaluate(Evaluation(FleetConfig(n_machines=args.machines, n_days=120, drift=drift), 60, PlanCosts(capacity=3),
                                       retrain_every=retrain))
            print(table(rows))
            print(f"({time.perf_counter() - started:.0f} s)")
    if args.cmapss and args.cmapss.exists():
        for subset in ("FD001", "FD002", "FD003", "FD004"):
            started = time.perf_counter()
            rows = recorded_lives(args.cmapss, subset, PlanCosts(capacity=3), engines_per_day=10)
            print(f"== C-MAPSS {subset}: engines come into service 10 a day, crew 3/day")
            print(table(rows))
            print(f"({time.perf_counter() - started:.0f} s)")
    elif args.cmapss:
        print(f"C-MAPSS skipped: {args.cmapss} does not exist")


if __name__ == "__main__":
    main()
