"""One day's run at growing history: does a day cost a day?

Simulates a fleet (default 2,000 machines x 24 readings a day), lands it, and measures the `daily` job
(`pm daily --day D`, in its own process) for the day after 30, 120 and 365 days of history, then
`pm train` at the longest history. Prints wall time per stage (from the Dagster run), wall time and
peak memory of each measured process. Targets: a day <= 30 s and <= 2 GB at every length, the
365-day figure <= 1.3 x the 30-day one; `pm train` <= 4 GB. The history's features are computed as backfills
(`machine_features` over each stretch of days, vectorised), measured too: a year of 2,000 machines <= 5 min, <= 4 GB.

    python benchmarks/daily.py [--machines 2000 --readings-per-day 24 --histories 30 120 365] [--featurise-only]

Runs in a temporary PM_DATA_DIR unless one is set; the set-up (ingesting and featurising the history
in bulk, and logging the 14 days of predictions before each measured day) is not measured, but for the feature backfills.
"""

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MONITORED_DAYS = 14  # predictions logged before a measured day: what the accuracy check and the gate read
#: The history's features as a backfill (`machine_features` over a range of days), in its own measured process.
FEATURISE = ("import datetime\nfrom pm_assets.drivers.runner import materialize\n"
             "materialize('machine_features', ({first}, {last}))")


def measured(command: list[str]) -> tuple[float, float, str]:
    """Run a `pm` command in its own process; return its wall seconds, peak memory (MB) and output."""
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds, int(result.stderr.strip().splitlines()[-1]) / 1024, result.stdout


def step_seconds(job: str) -> dict[str, float]:
    """Seconds per step of the latest run of `job` on the platform's instance, and of the whole run (`run`)."""
    import dagster as dg

    from pm_assets.drivers.runner import instance

    [run] = instance().get_runs(dg.RunsFilter(job_name=job), limit=1)
    stats = instance().get_run_stats(run.run_id)
    return {**{s.step_key: s.end_time - s.start_time for s in instance().get_run_step_stats(run.run_id)},
            "run": stats.end_time - stats.start_time}


def retrain_seconds(after: float) -> float:
    """Seconds of the `retrain` runs started after `after` (a timestamp): `pm daily` retrains when a watched check fails."""
    import dagster as dg

    from pm_assets.drivers.runner import instance

    runs = instance().get_runs(dg.RunsFilter(job_name="retrain", created_after=dt.datetime.fromtimestamp(after, dt.UTC)))
    return sum((lambda st: st.end_time - st.start_time)(instance().get_run_stats(r.run_id)) for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=2000)
    parser.add_argument("--readings-per-day", type=int, default=24)
    parser.add_argument("--histories", type=int, nargs="+", default=[30, 120, 365])
    parser.add_argument("--featurise-only", action="store_true", help="stop after the history's feature backfills")
    args = parser.parse_args()
    os.environ.setdefault("PM_DATA_DIR", tempfile.mkdtemp(prefix="pm-daily-"))
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    pm = str(Path(sys.executable).with_name("pm"))

    from pm_assets.core.constants import PARTITION_START
    from pm_assets.drivers.runner import ingest_stages, materialize, run_stages, train_stages
    from pm_assets.sources.simulator import FleetConfig, simulate_fleet
    from pm_assets.storage import landing, paths

    histories = sorted(args.histories)
    print(f"data dir: {paths.data_dir()}")
    start = time.perf_counter()
    fleet = simulate_fleet(FleetConfig(n_machines=args.machines, n_days=histories[-1] + 1, readings_per_day=args.readings_per_day))
    landing.land_dataset(fleet, paths.landing_dir())
    total_rows = fleet.telemetry.height
    del fleet
    print(f"simulated and landed {total_rows:,} readings in {time.perf_counter() - start:.0f}s")

    day = lambda i: PARTITION_START + dt.timedelta(days=i)  # noqa: E731
    results, backfills, done = [], [], 0
    for history in histories:
        start = time.perf_counter()
        run_stages(ingest_stages((day(done), day(history - 1))), log=lambda line: None)
        if done == 0:
            run_stages([("feature_spec", None)], log=lambda line: None)
        seconds, memory, _ = measured([sys.executable, "-c", FEATURISE.format(first=repr(day(done)), last=repr(day(history - 1)))])
        backfills.append((history - done, seconds, memory))
        print(f"  featurised days {done}-{history - 1} in one backfill: {seconds:.0f}s, peak {memory:,.0f} MB")
        if args.featurise_only:
            done = history
            continue
        if done == 0:
            run_stages(train_stages((day(0), day(history - 1))), log=lambda line: None)
        materialize("champion_predictions", (day(max(0, history - MONITORED_DAYS)), day(history - 1)))
        print(f"history of {history} days ready in {time.perf_counter() - start:.0f}s (not measured)")
        started = time.time()
        seconds, memory, _ = measured([pm, "daily", "--day", day(history).isoformat()])
        steps, retrained = step_seconds("daily"), retrain_seconds(started)
        results.append((history, seconds, memory, steps, retrained))
        print(f"  day {day(history)} after {history} days: {seconds:.1f}s, peak {memory:,.0f} MB"
              + (f" (of which a retraining a failed check asked for: {retrained:.0f}s)" if retrained else ""))
        materialize("raw_telemetry raw_events dbt_daily_models machine_features", (day(history), day(history)))
        done = history + 1

    days, seconds = sum(b[0] for b in backfills), sum(b[1] for b in backfills)
    print(f"history featurised as backfills of {', '.join(str(b[0]) for b in backfills)} days: {days} days of "
          f"{args.machines * args.readings_per_day * days:,} readings in {seconds:.0f}s, peak {max(b[2] for b in backfills):,.0f} MB "
          "(target: a year of 2,000 machines <= 300 s, <= 4,096 MB)")
    if args.featurise_only:
        return
    steps = [s for s in results[0][3] if s != "run"]
    print(f"\nfleet: {args.machines} machines x {args.readings_per_day} readings a day "
          f"({args.machines * args.readings_per_day:,} readings in the measured day)")
    print(f"{'stage (s)':<24}" + "".join(f"{f'{h} days':>12}" for h, *_ in results))
    for step in steps:
        print(f"{step:<24}" + "".join(f"{r[3].get(step, float('nan')):>12.1f}" for r in results))
    print(f"{'daily run (s)':<24}" + "".join(f"{r[3]['run']:>12.1f}" for r in results))
    print(f"{'retraining (s)':<24}" + "".join(f"{r[4]:>12.1f}" for r in results))
    print(f"{'pm daily wall (s)':<24}" + "".join(f"{r[1]:>12.1f}" for r in results))
    print(f"{'pm daily peak (MB)':<24}" + "".join(f"{r[2]:>12,.0f}" for r in results))
    # a retraining is another job, which the day's failed check asked for: the day's own cost is the wall without it
    own = [r[1] - r[4] for r in results]
    print(f"longest / shortest history, pm daily wall without a retraining: {own[-1] / own[0]:.2f}x (target <= 1.3)")

    seconds, memory, output = measured([pm, "train"])
    print(f"pm train on {histories[-1] + 1} days ({total_rows:,} readings landed): {seconds:.0f}s, peak {memory:,.0f} MB (target <= 4,096)")
    print("\n".join(f"  {line.strip()}" for line in output.splitlines() if line.lstrip().startswith(("[", "done"))))


if __name__ == "__main__":
    main()
