"""The maintenance plan's figures: planning speed, the policies on both simulated fleets, and on C-MAPSS's recorded lives.

    .venv/bin/python benchmarks/policy.py [--cmapss ../shared/data/cmapss] [--machines 100] [--seeds 0 1 2 3] [--capacity 3] [--skip-fleets]

1. `core.planning.plan` on 2,000 machines x 7 days, and x the default 2 days with its 7-day backlog (target <= 2 s).
2. `pm evaluate-policy` on the default fleet and on the `new_failure_mode` fleet, seeds 0-3 each and their sums (acting
   on the plan changes the future), and the plan's cost minus each other policy's per seed with its paired interval.
3. C-MAPSS (each training file a fleet): LightGBM out-of-fold predictions of every cycle (engine-grouped CV, so no
   engine is judged by a model that saw it), the 90 % ranges' coverage and width, then the same policies on the
   recorded lives: engines come into service over the first days (24 cycles a day), a service ends an engine's
   trajectory (the life thrown away is its true remaining cycles), and reaching the end of it unserviced is a failure.
"""

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats

from pm_assets.core.features import fit_feature_spec
from pm_assets.core.intervals import fit_intervals
from pm_assets.core.labels import LabelConfig
from pm_assets.core.models import TrainConfig, build_training_set, cross_validate
from pm_assets.core.planning import PlanCosts, PlanInput, plan
from pm_assets.core.policies import compared, table, tune_interval
from pm_assets.core.recorded_policies import Life, Model, evaluate as evaluate_recorded
from pm_assets.experiments.policy_evaluation import Evaluation, evaluate
from pm_assets.sources.loaders.cmapss import load_cmapss
from pm_assets.sources.simulator import DriftScenario, FleetConfig

CYCLES_PER_DAY = 24


def planning_speed() -> None:
    rng = np.random.default_rng(0)
    pred = rng.uniform(0, 125, 20_000)
    intervals = fit_intervals(np.clip(pred + rng.normal(0, 3 + pred / 5), 0, 125), pred, 125.0)
    n = 2000
    machines = PlanInput([f"M{i:04d}" for i in range(n)], rng.uniform(0, 125, n), rng.uniform(0, 24, n))
    for capacity, horizon in ((20, 7), (100, 7), (20, PlanCosts.horizon_days)):  # the default: its backlog to 7 days too
        started = time.perf_counter()
        costs = PlanCosts(capacity=capacity, horizon_days=horizon)
        planned = plan(intervals, machines, costs)
        print(f"plan: {n} machines x {horizon} days (look-ahead {costs.lookahead_end}), capacity {capacity}/day: "
              f"{time.perf_counter() - started:.2f} s, {int(planned['service'].sum())} services")


def recorded_lives(subset_dir: Path, subset: str, costs: PlanCosts, engines_per_day: float, log=print) -> list[dict]:
    """The policies on one C-MAPSS training file's engines, from out-of-fold predictions of every cycle."""
    data = load_cmapss(subset_dir / f"train_{subset}.txt")
    label_config = LabelConfig(rul_cap_hours=125.0, horizon_hours=48.0)
    spec = fit_feature_spec(data.telemetry, seed=42)
    training = build_training_set(data.telemetry, data.events, spec, label_config)
    validation = cross_validate("lightgbm", training, spec.feature_names, TrainConfig(), label_config)
    m = validation.metrics
    log(f"{subset}: 90 % ranges, engine-grouped CV: coverage {m['rul_interval_coverage']:.1%} on every cycle "
        f"({m['rul_interval_coverage_cuts']:.1%} at the cut points), mean width {m['rul_interval_width']:.1f}, "
        f"true RUL <= 30: {m['rul_interval_width_near_failure']:.1f}")
    lengths = data.telemetry.group_by("machine_id").len().sort("machine_id")
    start = {e: k / engines_per_day for k, e in enumerate(lengths["machine_id"])}  # the day each engine comes into service
    lives = [Life(e, start[e], start[e] + n / CYCLES_PER_DAY, True) for e, n in lengths.iter_rows()]
    predictions = validation.every_rul_prediction.join(
        validation.failure_predictions.select("machine_id", "ts", "probability"), on=["machine_id", "ts"], how="left"
    ).with_columns(
        (pl.col("machine_id").replace_strict(start, return_dtype=pl.Float64)
         + pl.col("ts").rank("ordinal").over("machine_id") / CYCLES_PER_DAY).alias("day"),  # the end of the cycle predicted
        pl.lit("cv").alias("model_version"),
    )
    interval = tune_interval(np.array([life.end - life.start for life in lives]), costs)
    days = range(0, int(np.ceil(max(life.end for life in lives))) + 1)
    outcomes = evaluate_recorded(lives, predictions, {"cv": Model(validation.intervals, validation.threshold)}, days, costs, interval)
    return compared(outcomes, costs)


def fleet_policies(name: str, fleet: FleetConfig, retrain: int, capacity: int) -> list[dict]:
    started = time.perf_counter()
    print(f"== {name}: {fleet.n_machines} machines, days 60..119 under each policy, crew {capacity}/day"
          + (f", model retrained every {retrain} days" if retrain else ""))
    rows = evaluate(Evaluation(fleet, 60, PlanCosts(capacity=capacity), retrain_every=retrain))
    print(table(rows))
    print(f"({time.perf_counter() - started:.0f} s)")
    return rows


def seeds_summed(name: str, fleet: FleetConfig, seeds: list[int], retrain: int, capacity: int) -> None:
    """The policies on the same fleet under several seeds: one fleet's 60 days turn on a few failures (one is 20,000),
    so a policy is judged on the sum."""
    totals: dict[str, list[float]] = {}
    for seed in seeds:
        for row in fleet_policies(f"{name}, seed {seed}", dataclasses.replace(fleet, seed=seed), retrain, capacity):
            totals.setdefault(row["policy"], []).append(row["total_cost"])
    if len(seeds) > 1:
        print(f"== {name}, total cost per seed {list(seeds)} and summed")
        for policy, costs in totals.items():
            print(f"{policy:<16}" + "".join(f"{c:>12,.0f}" for c in costs) + f"{sum(costs):>14,.0f}")
        print(paired_gaps(totals))


def paired_gaps(totals: dict[str, list[float]], confidence: float = 0.9) -> str:
    """The plan's cost minus each other policy's, seed by seed: its mean and the paired t-interval of the mean. A sum
    that differs by less than a seed's noise does not rank two policies; the interval says whether it does."""
    lines = [f"plan minus each policy, mean per seed ({confidence:.0%} paired t-interval):"]
    for policy, costs in totals.items():
        if policy != "plan" and "plan" in totals:
            gap = np.subtract(totals["plan"], costs)
            low, high = stats.ttest_rel(totals["plan"], costs).confidence_interval(confidence)
            verdict = "plan cheaper" if high < 0 else "plan dearer" if low > 0 else "not told apart"
            lines.append(f"  {policy:<16}{gap.mean():>+12,.0f}  ({low:+,.0f} to {high:+,.0f}: {verdict})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cmapss", type=Path, help="folder of train_FD00X.txt (skipped when absent)")
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--retrain-every", type=int, default=15, help="the drifting fleet's retraining period, days")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3], help="the default fleet's seeds (none: skip it)")
    parser.add_argument("--drift-seeds", type=int, nargs="*", default=[0, 1, 2, 3], help="the new_failure_mode fleet's seeds (none: skip it)")
    parser.add_argument("--capacity", type=int, default=3, help="the crew's services a day (3 keeps up with the 100-machine fleet)")
    parser.add_argument("--skip-fleets", action="store_true")
    args = parser.parse_args()
    planning_speed()
    if not args.skip_fleets:
        seeds_summed("default fleet", FleetConfig(n_machines=args.machines, n_days=120), args.seeds, 0, args.capacity)
        seeds_summed("new_failure_mode fleet", FleetConfig(n_machines=args.machines, n_days=120,
                                                          drift=DriftScenario("new_failure_mode", 75, 1.0)), args.drift_seeds, args.retrain_every,
                     args.capacity)
    if args.cmapss and args.cmapss.exists():
        for subset in ("FD001", "FD002", "FD003", "FD004"):
            started = time.perf_counter()
            rows = recorded_lives(args.cmapss, subset, PlanCosts(capacity=args.capacity), engines_per_day=2)
            print(f"== C-MAPSS {subset}: engines come into service 2 a day, crew {args.capacity}/day")
            print(table(rows))
            print(f"({time.perf_counter() - started:.0f} s)")
    elif args.cmapss:
        print(f"C-MAPSS skipped: {args.cmapss} does not exist")


if __name__ == "__main__":
    main()
