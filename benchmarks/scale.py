"""The scale profile's parallel day: one day of a large fleet loaded as 1, 2 and 4 machine shards, 1 and 2 runs at once.

Starts the local stack (PostgreSQL, moto's S3, an MLflow server: `pm_assets.drivers.local_stack`), simulates one day
of a fleet (default 2,000 machines x 24 readings) and, for each shard count, loads the day into a lake of its own
(a new catalog database and data folder) as one `raw_telemetry raw_events` run per shard, each run in its own
process, at most `concurrency` at a time; then rebuilds the day's dbt marts once (the part of the day that is not
sharded). Prints, per configuration, the wall time of the shard runs' processes (start-up included) and rows/s over
it, the span of the runs on the instance (first start to last end) and the longest run, and the marts' wall time.

    python benchmarks/scale.py [--machines 2000 --readings-per-day 24 --shards 1 2 4 --concurrency 1 2]

Needs PostgreSQL's server binaries (Debian's postgresql-15); uses loopback only. On 2 cores the processes compete
for the same CPUs: the figures say what parallel shards cost and save here, not on a cluster.
"""

import argparse
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN_TAG = "pm/benchmark_config"
SHARD_RUN = ("import datetime as dt, sys; from pm_assets.drivers.runner import materialize; "
             "day = dt.date.fromisoformat(sys.argv[1]); "
             "materialize('raw_telemetry raw_events', (day, day), tags={'pm/benchmark_config': sys.argv[3]}, shard=int(sys.argv[2]) "
             "if sys.argv[2] != '-' else None)")


def run_python(code: str, *args: str, env: dict[str, str]) -> float:
    """Run `code` in a new process; return its wall seconds (exits on failure with its error)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"a benchmark process failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def run_times(config: str, env: dict[str, str]) -> tuple[float, float]:
    """First start to last end of the benchmark's runs of `config` on the instance, and the longest run."""
    os.environ.update(env)
    import dagster as dg

    from pm_assets.drivers.runner import instance

    records = instance().get_run_records(dg.RunsFilter(tags={RUN_TAG: config}, statuses=[dg.DagsterRunStatus.SUCCESS]))
    return max(r.end_time for r in records) - min(r.start_time for r in records), max(r.end_time - r.start_time for r in records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=2000)
    parser.add_argument("--readings-per-day", type=int, default=24)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    from pm_assets.core.constants import PARTITION_START
    from pm_assets.drivers import local_stack
    from pm_assets.sources.simulator import FleetConfig, simulate_fleet
    from pm_assets.storage import landing

    root = Path(tempfile.mkdtemp(prefix="pm-scale-bench-"))
    fleet = simulate_fleet(FleetConfig(n_machines=args.machines, n_days=1, readings_per_day=args.readings_per_day))
    rows = fleet.telemetry.height + fleet.events.height
    day = PARTITION_START.isoformat()
    results = []
    with local_stack.running_stack() as stack:
        print(f"local stack up; {args.machines:,} machines, one day: {fleet.telemetry.height:,} readings, {fleet.events.height} events")
        for shards in args.shards:
            for concurrency in sorted({min(c, shards) for c in args.concurrency}):
                config = f"s{shards}c{concurrency}"
                local_stack.create_database(stack.pg_port, f"lake_{config}")
                env = {**os.environ, **stack.environment(), "PM_SHARDS": str(shards), "PM_DATA_DIR": str(root / config),
                       "PM_LAKE_CATALOG": f"postgres:dbname=lake_{config} host=127.0.0.1 port={stack.pg_port} user=pm",
                       "PM_LAKE_DATA_PATH": f"s3://{local_stack.LAKE_BUCKET}/{config}/"}
                landing.land_dataset(fleet, root / config / "landing")
                run_python("from pm_assets.drivers.runner import materialize; materialize('machines')", env=env)
                start = time.perf_counter()
                with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
                    list(pool.map(lambda shard: run_python(SHARD_RUN, day, str(shard) if shards > 1 else "-", config, env=env),
                                  range(shards)))
                wall = time.perf_counter() - start
                span, longest = run_times(config, env)
                marts = run_python("import datetime as dt, sys; from pm_assets.drivers.runner import materialize; "
                                   "day = dt.date.fromisoformat(sys.argv[1]); materialize('dbt_models'); "
                                   "materialize('dbt_daily_models', (day, day))", day, env=env)
                results.append((shards, concurrency, wall, span, longest, rows / wall, marts))
                print(f"  {shards} shard(s), {concurrency} at a time: processes {wall:.1f}s, runs {span:.1f}s (longest {longest:.1f}s), "
                      f"marts {marts:.1f}s")
    print(f"\n{'shards':>6} {'at once':>7} {'processes (s)':>14} {'runs (s)':>9} {'longest run (s)':>16} {'rows/s':>9} {'marts (s)':>10}")
    for shards, concurrency, wall, span, longest, rate, marts in results:
        print(f"{shards:>6} {concurrency:>7} {wall:>14.1f} {span:>9.1f} {longest:>16.1f} {rate:>9,.0f} {marts:>10.1f}")


if __name__ == "__main__":
    main()
