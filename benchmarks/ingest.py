"""Simulate ~10 million readings, land them, ingest them into DuckDB and build the dbt models.

Prints rows/s for each stage and the peak memory. Target: the whole of it under 2 minutes on 2 cores.

    python benchmarks/ingest.py [--machines 1000 --days 100 --readings-per-day 100]

Runs in a temporary PM_DATA_DIR unless one is set.
"""

import argparse
import os
import resource
import tempfile
import time


def peak_memory_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--readings-per-day", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("PM_DATA_DIR", tempfile.mkdtemp(prefix="pm-bench-"))
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

    from pm_assets.drivers.runner import ingest_stages, run_stages
    from pm_assets.sources.simulator import FleetConfig, simulate_fleet
    from pm_assets.storage import landing, paths

    print(f"data dir: {paths.data_dir()}")
    total_start = time.perf_counter()
    start = time.perf_counter()
    config = FleetConfig(n_machines=args.machines, n_days=args.days, readings_per_day=args.readings_per_day)
    fleet = simulate_fleet(config)
    rows = fleet.telemetry.height
    simulate_s = time.perf_counter() - start

    start = time.perf_counter()
    landing.write_machines(fleet.machines, paths.landing_dir(), fleet.source)
    days = landing.write_daily(fleet.telemetry, paths.landing_dir(), "telemetry", fleet.source)
    landing.write_daily(fleet.events, paths.landing_dir(), "events", fleet.source)
    land_s = time.perf_counter() - start
    del fleet

    stage_s = run_stages(ingest_stages((days[0], days[-1])), log=lambda line: None)
    total_s = time.perf_counter() - total_start

    print(f"telemetry rows: {rows:,} ({args.machines} machines x {args.days} days x {args.readings_per_day}/day)")
    print(f"{'stage':<40}{'seconds':>10}{'rows/s':>14}")
    print(f"{'simulate':<40}{simulate_s:>10.1f}{rows / simulate_s:>14,.0f}")
    print(f"{'write landing parquet':<40}{land_s:>10.1f}{rows / land_s:>14,.0f}")
    for names, seconds in stage_s.items():
        print(f"{names:<40}{seconds:>10.1f}{rows / seconds:>14,.0f}")
    print(f"{'total':<40}{total_s:>10.1f}{rows / total_s:>14,.0f}")
    print(f"peak memory: {peak_memory_mb():,.0f} MB (largest of this process and its dbt subprocesses)")


if __name__ == "__main__":
    main()
