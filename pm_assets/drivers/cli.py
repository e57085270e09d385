"""`pm`: the platform's command line. Heavy imports happen inside the commands, so `pm --help` is quick."""

import argparse
import contextlib
import datetime as dt
import logging
import os
import signal
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def cmd_simulate(args: argparse.Namespace) -> None:
    from pm_assets.sources import simulation
    from pm_assets.sources.simulator import DriftScenario, FleetConfig
    from pm_assets.storage import paths

    if args.advance:
        config, landed = simulation.load_state()
        # --advance N moves the processed days on by N: a run killed after landing lands nothing more when re-run
        processed = _processed_days(config)
        target = (landed if args.land_only else processed) + args.advance
        first, last = landed, min(target, config.n_days) - 1
    else:
        drift = DriftScenario(args.drift, args.drift_start, args.drift_share) if args.drift else None
        config = FleetConfig(n_machines=args.machines, n_days=args.days, readings_per_day=args.readings_per_day,
                             n_sensors=args.sensors, seed=args.seed, drift=drift)
        first, last = 0, config.n_days - 1 if args.through is None else args.through
    if last >= first:
        start = time.perf_counter()
        days, rows = simulation.land_days(config, first, last)
        print(f"simulated fleet of {config.n_machines} machines: landed days {first}..{last} of {config.n_days} "
              f"({days[0]}..{days[-1]}, {rows:,} readings) in {time.perf_counter() - start:.1f}s -> {paths.landing_dir()}")
    if args.advance and not args.land_only:
        days = [config.start_date + dt.timedelta(days=i) for i in range(_processed_days(config), min(target, config.n_days))]
        if not days:
            sys.exit(f"pm: error: the simulated fleet has no days left to advance to (it has {config.n_days}): start a longer one")
        for line in _daily_work(days, config.drift and config.start_date + dt.timedelta(days=config.drift.start_day)).describe():
            print(f"  {line}")


def _processed_days(config) -> int:
    """How many of the simulated fleet's days the daily work has done."""
    from pm_assets.drivers.runner import last_daily_day

    last = last_daily_day()
    return 0 if last is None else (last - config.start_date).days + 1


def _daily_work(days: list[dt.date], drift_start: dt.date | None) -> "loop.LoopSummary":  # noqa: F821
    """What the daily schedule and the retraining sensor do, for each of `days`, printing each day's checks."""
    from pm_assets.drivers import loop

    print(f"daily work for {len(days)} day(s): ingest, rebuild marts and features, log predictions, check drift and matured "
          "accuracy, retrain if a check fails")
    return loop.stream(days, drift_start)


def cmd_daily(args: argparse.Namespace) -> None:
    from pm_assets.drivers.runner import last_daily_day

    if args.day:
        days = [args.day]
    else:
        last, landed_last = last_daily_day(), landed_range()[1]
        if last is None:
            sys.exit("pm: error: nothing trained yet: run `pm ingest` and `pm train` first")
        days = [last + dt.timedelta(days=i) for i in range(1, (landed_last - last).days + 1)]
        if not days:
            print(f"every landed day is done (the last is {landed_last}): land the next one first")
            return
    for line in _daily_work(days, None).describe():
        print(f"  {line}")


def cmd_load(args: argparse.Namespace) -> None:
    from pm_assets.storage import landing, paths

    if args.format == "cmapss":
        from pm_assets.sources.loaders.cmapss import load_cmapss

        data = load_cmapss(args.path, rul_path=args.rul, cycle_hours=args.cycle_hours)
    else:
        from pm_assets.sources.loaders.tabular import load_tabular

        data = load_tabular(args.path, args.mapping, source=args.source)
    days = landing.land_dataset(data, paths.landing_dir())
    print(f"landed {data.telemetry.height:,} readings of {data.machines.height} machines over {len(days)} days "
          f"({days[0]}..{days[-1]}) -> {paths.landing_dir()}")
    print("next: `pm ingest` loads them into the warehouse and builds the dbt models")


def landed_range() -> tuple[dt.date, dt.date]:
    from pm_assets.storage import landing, paths

    days = sorted(set(landing.landed_days(paths.landing_dir(), "telemetry")) | set(landing.landed_days(paths.landing_dir(), "events")))
    if not days:
        sys.exit(f"pm: error: no landing files under {paths.landing_dir()}: run `pm simulate` or `pm load` first")
    return days[0], days[-1]


def partition_end() -> str:
    """The day after the last landed one (`PM_PARTITION_END` for `make ui`), or nothing when nothing is landed."""
    from pm_assets.storage import landing, paths

    days = landing.landed_days(paths.landing_dir(), "telemetry")
    return (max(days) + dt.timedelta(days=1)).isoformat() if days else ""


def cmd_ingest(args: argparse.Namespace) -> None:
    from pm_assets.drivers.runner import ingest_stages, run_stages

    landed_first, landed_last = landed_range()
    first, last = args.start or landed_first, args.end or landed_last
    if first > last:
        sys.exit(f"pm: error: the range is reversed: start {first} is after end {last}")
    if last < landed_first or first > landed_last:
        sys.exit(f"pm: error: no landing files between {first} and {last} (the landed days are {landed_first}..{landed_last}): nothing to ingest")
    run_stages(ingest_stages((first, last)))
    from pm_assets.storage import lake, paths

    print(f"warehouse ready: DuckLake, data in {lake.data_path()}" if lake.configured() else f"warehouse ready: duckdb {paths.warehouse_path()}")


def cmd_train(args: argparse.Namespace) -> None:
    from pm_assets.drivers.runner import run_stages, train_stages

    run_stages(train_stages(landed_range()))


def cmd_demo(args: argparse.Namespace) -> None:
    from pm_assets.drivers import demo
    from pm_assets.sources.simulator import DriftScenario, FleetConfig

    drift = DriftScenario(args.drift, args.drift_start, args.drift_share) if args.drift else None
    config = FleetConfig(n_machines=args.machines, n_days=args.days, readings_per_day=args.readings_per_day,
                         n_sensors=args.sensors, seed=args.seed, drift=drift)
    demo.run(config, args.stream_days, args.cooldown_days)  # a bad --days stops in one line, as every ValueError


def cmd_plan(args: argparse.Namespace) -> None:
    from pm_assets.core.planning import PlanCosts
    from pm_assets.drivers.runner import last_daily_day, materialize

    given = {name: getattr(args, name) for name in ("failure_cost", "service_cost", "wasted_life_cost_per_hour", "capacity", "horizon_days")
             if getattr(args, name) is not None}
    PlanCosts(**given)  # a bad setting stops here, in one line that names it
    day = args.day or last_daily_day()
    if day is None:
        sys.exit("pm: error: no scored day to plan from: run `pm demo`, `pm train` or `pm daily` first")
    if bad := [b for b in args.book or [] if "=" not in b]:
        sys.exit(f"pm: error: --book {bad[0]!r}: expected MACHINE=DAY, e.g. M0007=2025-03-04")
    booked = dict(b.split("=", 1) for b in args.book or [])
    config = given | ({"booked": booked} if booked else {})
    materialize("maintenance_plan", (day, day), run_config={"ops": {"maintenance_plan": {"config": config}}} if config else None)
    from pm_assets.drivers.plan_review import plan_lines

    for line in plan_lines(limit=args.limit):
        print(line)


def cmd_evaluate_policy(args: argparse.Namespace) -> None:
    import json

    from pm_assets.core.planning import PlanCosts
    from pm_assets.core.policies import table
    from pm_assets.experiments.policy_evaluation import Evaluation, evaluate
    from pm_assets.sources.simulator import DriftScenario, FleetConfig
    from pm_assets.storage import paths
    from pm_assets.storage.atomic import write_atomic

    costs = PlanCosts(args.failure_cost, args.service_cost, args.wasted_life_cost_per_hour, args.capacity, args.horizon_days)
    drift = DriftScenario(args.drift, args.drift_start, args.drift_share) if args.drift else None
    fleet = FleetConfig(n_machines=args.machines, n_days=args.days, readings_per_day=args.readings_per_day, n_sensors=args.sensors,
                        seed=args.seed, drift=drift)
    evaluation = Evaluation(fleet, args.history_days, costs, args.retrain_every)
    print(f"== {args.machines} machines, days {args.history_days}..{args.days - 1} under each policy "
          f"({args.drift or 'no'} drift{f' from day {args.drift_start}' if args.drift else ''}; crew {costs.capacity}/day)")
    rows = evaluate(evaluation)
    print(table(rows))
    report = write_atomic(paths.policy_report_path(), json.dumps({"fleet": str(fleet), "costs": str(costs), "policies": rows}, indent=2))
    print(f"written to {report}")


def cmd_replay(args: argparse.Namespace) -> None:
    if args.quarters:
        if args.train or args.stream:
            sys.exit("pm: error: --quarters replays the four C-MAPSS training files of its folder: give no other files")
        from pm_assets.experiments import quarters
        from pm_assets.sources.replay import quarterly_plan

        plan = quarterly_plan(args.quarters, args.quarter_days, args.history_engines, args.mix, args.engines_per_subset)
        if args.report:
            quarters.report_saved(plan)
        else:
            quarters.run(plan, args.cooldown_days)
        return
    if not args.train or not args.stream:
        sys.exit("pm: error: give the first champion's file and the files to stream (or --quarters CMAPSS_DIR)")
    from pm_assets.drivers import replay

    replay.run(args.train, args.stream, args.units_per_day)


def cmd_benchmark(args: argparse.Namespace) -> None:
    from pm_assets.core.features import FeatureConfig
    from pm_assets.core.models import TrainConfig
    from pm_assets.experiments import cmapss_benchmark

    config = TrainConfig(seed=args.seed, **({"iterations": args.iterations} if args.iterations else {}))
    features = FeatureConfig(**({"windows": tuple(args.windows)} if args.windows else {}), life=not args.no_life,
                             deviations=not args.no_deviations)
    if args.test and args.subset == "all":
        raise ValueError("--test predicts one subset with the model of one --train subset, not all: name it, e.g. --train FD001 --test FD002")
    if args.transfer_matrix and args.test:
        raise ValueError("--transfer-matrix judges every ordered pair of subsets itself: drop --test")
    if args.transfer_matrix:
        print(cmapss_benchmark.matrix_table(cmapss_benchmark.transfer_matrix(args.data_dir, config, features)))
        return
    subsets = cmapss_benchmark.SUBSETS if args.subset == "all" else (args.subset,)
    results = {}
    for subset in subsets:
        result = results[subset] = cmapss_benchmark.run(args.data_dir, subset, config, features, test_subset=args.test)
        out = args.out if len(subsets) == 1 else args.out.with_name(f"{args.out.stem}_{subset}{args.out.suffix}")
        out.parent.mkdir(parents=True, exist_ok=True)
        result.predictions.write_csv(out)
        tested = args.test or subset
        print(f"{subset}: chosen by CV RMSE: {result.chosen}; {result.predictions.height} test units of {tested} -> {out}")
        if result.test_metrics:
            print(f"test {tested} against RUL_{tested}.txt: " + cmapss_benchmark._format(result.test_metrics))
    if len(subsets) > 1:
        print(cmapss_benchmark.table(results))
    if not any(r.test_metrics for r in results.values()):
        print(f"no RUL_FDxxx.txt in {args.data_dir}: the cross-validated figures above are the estimate")


def cmd_serve(args: argparse.Namespace) -> None:
    import shutil
    import tempfile

    import uvicorn

    from pm_serving.settings import Settings

    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be between 1 and 65535, got {args.port}")
    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    own_metrics_dir = args.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    if own_metrics_dir:
        # every worker's counters in one place, so /metrics adds them up whichever worker answers
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pm-serve-metrics-")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    print(f"serving the {settings.model_alias!r} model on http://{args.host}:{args.port} with {args.workers} worker(s) "
          f"(API key {'required' if settings.api_key else 'off'}; OpenAPI at /schema/openapi.json)")
    try:
        uvicorn.run("pm_serving.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                    log_level="warning", access_log=False)
    finally:
        if own_metrics_dir:
            shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)


def cmd_sql(args: argparse.Namespace) -> None:
    from pm_assets.storage import paths, warehouse

    with warehouse.connect(paths.warehouse_path(), read_only=True) as con:
        con.sql(args.query).show(max_rows=args.max_rows)


def cmd_lake_import(args: argparse.Namespace) -> None:
    from pm_assets.storage import lake, paths, warehouse

    if not lake.configured():
        sys.exit("pm: error: no lake to import into: set PM_LAKE_CATALOG and PM_LAKE_DATA_PATH (deploy/README.md)")
    source = Path(args.warehouse) if args.warehouse else paths.warehouse_path()
    if not source.exists():
        sys.exit(f"pm: error: no warehouse file at {source}")
    with contextlib.closing(lake.connect(read_only=False, memory_limit=warehouse.memory_limit())) as con:
        copied = warehouse.import_into_lake(con, source)
    for table, rows in copied.items():
        print(f"  {table}: {rows:,} rows")
    print(f"imported {len(copied)} tables from {source} into the lake; run `pm ingest` to build the dbt views on it")


def cmd_stack(args: argparse.Namespace) -> None:
    from pm_assets.drivers import local_stack

    with local_stack.running_stack() as stack:
        print("the scale profile's services run on loopback until Ctrl-C; in another shell:")
        for name, value in stack.environment().items():
            print(f"export {name}='{value}'")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


def _fleet_arguments(parser: argparse.ArgumentParser, drift: str | None, drift_start: int, machines: int = 50, days: int = 100,
                     drift_share: float = 0.5) -> None:
    parser.add_argument("--machines", type=int, default=machines)
    parser.add_argument("--days", type=int, default=days)
    parser.add_argument("--readings-per-day", type=int, default=24)
    parser.add_argument("--sensors", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--drift", choices=["recalibration", "new_regime", "new_failure_mode"], default=drift)
    parser.add_argument("--drift-start", type=int, default=drift_start, help="day (0-based) the drift begins")
    parser.add_argument("--drift-share", type=float, default=drift_share, help="share of machines the drift touches")


def _cost_arguments(parser: argparse.ArgumentParser, capacity: int | None) -> None:
    """The plan's costs and crew; without a value given, the plan's defaults (`core.planning.PlanCosts`)."""
    from pm_assets.core.planning import PlanCosts

    defaults = PlanCosts(capacity=capacity or PlanCosts.capacity)
    given = capacity is not None  # evaluate-policy fills every value; `pm plan` passes only what was typed
    parser.add_argument("--capacity", type=int, default=defaults.capacity if given else None,
                        help=f"services the crew can do per day (default {defaults.capacity})")
    parser.add_argument("--failure-cost", type=float, default=defaults.failure_cost if given else None,
                        help=f"cost of an unplanned failure: repair and downtime (default {defaults.failure_cost:g})")
    parser.add_argument("--service-cost", type=float, default=defaults.service_cost if given else None,
                        help=f"cost of a planned service (default {defaults.service_cost:g})")
    parser.add_argument("--wasted-life-cost-per-hour", type=float, default=defaults.wasted_life_cost_per_hour if given else None,
                        help=f"cost of each hour of useful life a service throws away (default {defaults.wasted_life_cost_per_hour:g})")
    parser.add_argument("--horizon-days", type=int, default=defaults.horizon_days if given else None,
                        help=f"days planned (default {defaults.horizon_days})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pm", description="Predictive-maintenance platform")
    parser.add_argument("--debug", action="store_true", default=os.environ.get("PM_DEBUG") == "1",
                        help="show the full traceback of an error (also PM_DEBUG=1)")
    parser.add_argument("--allow-quarantine", action="store_true",
                        help="exit 0 even when ingestion set aside more rows than max_quarantine_share, or whole files "
                             "(otherwise such a command exits with code 3)")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="the main job: history, first champion, a drifting stream, detection, retraining")
    # a failure mode the first champion never saw, on every machine: the drift that costs it most, and that retraining heals
    _fleet_arguments(demo, drift="new_failure_mode", drift_start=63, machines=80, days=80, drift_share=1.0)
    demo.add_argument("--stream-days", type=int, default=20, help="last days, streamed one by one after the first champion")
    demo.add_argument("--cooldown-days", type=float, default=5, help="retraining cooldown, in simulated days")
    demo.set_defaults(func=cmd_demo)

    simulate = commands.add_parser("simulate", help="land a simulated fleet's days; --advance lands the next ones and runs the daily work")
    _fleet_arguments(simulate, drift=None, drift_start=90)
    simulate.add_argument("--through", type=int, help="land days 0..THROUGH only (default: all); advance later")
    simulate.add_argument("--advance", type=int, default=0, metavar="N",
                          help="land the next N days of the fleet started before, then ingest, score and check each")
    simulate.add_argument("--land-only", action="store_true", help="with --advance: only land (the `daily` schedule does the rest)")
    simulate.set_defaults(func=cmd_simulate)

    load = commands.add_parser("load", help="convert external telemetry into landing files")
    formats = load.add_subparsers(dest="format", required=True)
    cmapss = formats.add_parser("cmapss", help="a NASA C-MAPSS train_/test_FDxxx.txt file")
    cmapss.add_argument("path", type=Path)
    cmapss.add_argument("--rul", type=Path, help="the matching RUL_FDxxx.txt, for test files")
    cmapss.add_argument("--cycle-hours", type=float, default=1.0, help="hours one cycle stands for")
    tabular = formats.add_parser("tabular", help="a folder of CSV/Parquet files with a YAML column mapping")
    tabular.add_argument("path", type=Path)
    tabular.add_argument("--mapping", type=Path, required=True)
    tabular.add_argument("--source", default="tabular", help="name of this source's landing files")
    for sub in (cmapss, tabular):
        sub.set_defaults(func=cmd_load)

    ingest = commands.add_parser("ingest", help="load landing files into DuckDB and build the dbt models")
    ingest.add_argument("--start", type=dt.date.fromisoformat, help="first day (default: first landed)")
    ingest.add_argument("--end", type=dt.date.fromisoformat, help="last day (default: last landed)")
    ingest.set_defaults(func=cmd_ingest)

    replay = commands.add_parser("replay", help="train on one C-MAPSS file, then stream others day by day through the monitoring "
                                                "(or --quarters: the drift plan over all four subsets)")
    replay.add_argument("train", type=Path, nargs="?", help="e.g. train_FD001.txt: the first champion's data")
    replay.add_argument("stream", type=Path, nargs="*", help="e.g. test_FD001.txt test_FD003.txt: replayed one after the other")
    replay.add_argument("--units-per-day", type=float, default=10, help="engines coming into service per day")
    replay.add_argument("--quarters", type=Path, metavar="CMAPSS_DIR",
                        help="the folder of train_FD001..4.txt: part of FD001 trains the first champion, then the rest of FD001, "
                             "FD002, FD003 and FD004 come into service quarter by quarter; a per-quarter report at the end")
    replay.add_argument("--quarter-days", type=int, default=10, help="with --quarters: days over which a quarter's engines come into service")
    replay.add_argument("--history-engines", type=int, default=50, help="with --quarters: FD001 engines the first champion trains on")
    replay.add_argument("--mix", type=int, default=5, help="with --quarters: engines of the next subset among each quarter's last ones")
    replay.add_argument("--engines-per-subset", type=int, help="with --quarters: only each file's first engines (a shorter replay)")
    replay.add_argument("--cooldown-days", type=float, default=3, help="with --quarters: retraining cooldown, in replayed days")
    replay.add_argument("--report", action="store_true",
                        help="with --quarters: the per-quarter table of a replay's finished days (stopped or complete), judged again "
                             "without streaming more (run without it, a stopped replay goes on where it stopped)")
    replay.set_defaults(func=cmd_replay)

    daily = commands.add_parser("daily", help="run the `daily` job (and the retraining sensor) for the landed days not done yet")
    daily.add_argument("--day", type=dt.date.fromisoformat, help="only this day (YYYY-MM-DD), e.g. to run it again")
    daily.set_defaults(func=cmd_daily)

    plan = commands.add_parser("plan", help="plan which machine to service on which day (crew capacity, costs) from the last scored day")
    _cost_arguments(plan, capacity=None)
    plan.add_argument("--book", action="append", metavar="MACHINE=DAY", help="a service already scheduled (repeatable), e.g. M0007=2025-03-04")
    plan.add_argument("--day", type=dt.date.fromisoformat, help="plan from this scored day (default: the last)")
    plan.add_argument("--limit", type=int, default=10, help="services printed")
    plan.set_defaults(func=cmd_plan)

    policy = commands.add_parser("evaluate-policy", help="run one simulated fleet under each maintenance policy (run to failure, "
                                                         "fixed interval, alert, the plan, an oracle) and compare their costs")
    _fleet_arguments(policy, drift=None, drift_start=75, machines=100, days=120, drift_share=1.0)
    policy.add_argument("--history-days", type=int, default=60, help="days run to failure that the model trains on")
    policy.add_argument("--retrain-every", type=int, default=0, help="days between retrainings of the model-driven policies (0: never)")
    _cost_arguments(policy, capacity=3)
    policy.set_defaults(func=cmd_evaluate_policy)

    train = commands.add_parser("train", help="train CatBoost and LightGBM on the warehouse, promote the better one, score the fleet")
    train.set_defaults(func=cmd_train)

    benchmark = commands.add_parser("benchmark", help="score the platform's models on a public benchmark")
    suites = benchmark.add_subparsers(dest="suite", required=True)
    cmapss_bench = suites.add_parser("cmapss", help="NASA C-MAPSS: train on train_FDxxx, predict test_FDxxx at the last cycle")
    cmapss_bench.add_argument("--data-dir", type=Path, required=True)
    cmapss_bench.add_argument("--subset", "--train", default="FD001", choices=["FD001", "FD002", "FD003", "FD004", "all"],
                              help="one subset, or all four in turn (then one table, and one predictions_FDxxx file each)")
    cmapss_bench.add_argument("--test", choices=["FD001", "FD002", "FD003", "FD004"],
                              help="predict this subset's test engines with the model trained on --train (transfer)")
    cmapss_bench.add_argument("--transfer-matrix", action="store_true",
                              help="every ordered pair of subsets: trained on A, RMSE on all labelled rows of B's training engines")
    cmapss_bench.add_argument("--out", type=Path, default=Path("predictions.csv"),
                              help="the predictions file; with --subset all, its stem gets _FDxxx")
    cmapss_bench.add_argument("--seed", type=int, default=42)
    cmapss_bench.add_argument("--iterations", type=int, help="boosting rounds (default: the platform's training default)")
    cmapss_bench.add_argument("--windows", type=int, nargs="+", metavar="READINGS",
                              help="rolling windows of the features, in cycles (default: the platform's)")
    cmapss_bench.add_argument("--no-life", action="store_true", help="without the features over each engine's life so far")
    cmapss_bench.add_argument("--no-deviations", action="store_true",
                              help="without the two features of how far all sensors moved from the life's baseline")
    cmapss_bench.set_defaults(func=cmd_benchmark)

    serve = commands.add_parser("serve", help="serve the champion over HTTP (set PM_API_KEY to require a key)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: the number of cores)")
    serve.set_defaults(func=cmd_serve)

    lake_import = commands.add_parser("lake-import", help="copy a single-machine warehouse file into the scale profile's DuckLake")
    lake_import.add_argument("warehouse", nargs="?", help="the DuckDB file (default: the data directory's warehouse.duckdb)")
    lake_import.set_defaults(func=cmd_lake_import)

    stack = commands.add_parser("stack", help="run the scale profile's services on this machine (PostgreSQL, S3 stand-in, MLflow server)")
    stack.set_defaults(func=cmd_stack)

    sql = commands.add_parser("sql", help="run a read-only SQL query on the warehouse")
    sql.add_argument("query")
    sql.add_argument("--max-rows", type=int, default=40)
    sql.set_defaults(func=cmd_sql)
    return parser


#: Commands that run Dagster jobs on the platform's instance (and so first clear runs a killed `pm` left open).
RUNS_JOBS = {"demo", "simulate", "ingest", "replay", "daily", "train", "plan"}
#: Commands that serve until stopped: their event loops handle the signals.
SERVERS = {"serve", "stack"}


#: Commands that write to the data directory: one at a time (`storage/writer_lock.py`).
WRITES = RUNS_JOBS | {"load", "lake-import"}


def _writing(command: str) -> contextlib.AbstractContextManager:
    if command not in WRITES:
        return contextlib.nullcontext()
    from pm_assets.storage.writer_lock import writer_lock

    return writer_lock()


def _one_line(error: BaseException) -> str:
    """A failure as one line: a failed Dagster step's own error, the type of anything not a user mistake."""
    inner = getattr(error, "user_exception", None) or error
    text = getattr(inner, "description", None) or str(inner)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    from_duckdb = type(inner).__module__.startswith(("duckdb", "_duckdb"))  # a query's error: its line and its hint
    expected = from_duckdb or isinstance(inner, (ValueError, OSError, RuntimeError, LookupError)) or type(inner).__module__.startswith("dagster")
    message = " ".join(lines[:2]) if from_duckdb else (lines[0] if lines else "")
    line = message if expected and message else f"{type(inner).__name__}: {message or 'no message'} (run with --debug for the traceback)"
    return line + _space_hint(inner, text)


#: How a full disk (or a file-size or quota limit) shows in errors from the OS, SQLite, DuckDB and Arrow.
_OUT_OF_SPACE = ("No space left", "disk I/O error", "File too large", "Disk quota", "database or disk is full")


def _space_hint(error: BaseException, text: str) -> str:
    """Where a write failed for want of space, and how full that disk is: such errors rarely name the file."""
    import errno
    import shutil

    if getattr(error, "errno", None) not in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) and not any(s in text for s in _OUT_OF_SPACE):
        return ""
    from pm_assets.storage import paths

    where = paths.data_dir()
    existing = next((p for p in (where, *where.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(existing).free / 1e9
    return (f" — a write under {where} failed: is its disk full ({free:.1f} GB free there)? Free space and run the same command "
            "again; it redoes what is missing")


def _clear_abandoned_runs() -> None:
    from pm_assets.drivers.runner import fail_abandoned_runs, instance

    if failed := fail_abandoned_runs(instance()):
        print(f"marked {len(failed)} run(s) failed that a killed or crashed `pm` left unfinished: {', '.join(failed)}")


def _report_runs(allow_quarantine: bool) -> None:
    """What the command's runs did, from their own results; exit 3 when data was set aside beyond the threshold."""
    from pm_assets.drivers import run_report

    for line in run_report.CURRENT.lines():
        print(line)
    if run_report.CURRENT.set_aside and not allow_quarantine:
        print("pm: data was set aside: more rows than max_quarantine_share, or whole files (above); fix them and land them "
              "again, or accept it with `pm --allow-quarantine ...`", file=sys.stderr)
        sys.exit(run_report.QUARANTINE_EXIT_CODE)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows as it happens, even through a pipe
    warnings.filterwarnings("ignore", message=".*currently in (beta|preview).*")
    # a day's run mixes single-run (ingestion) and per-day (monitoring) assets; one day satisfies both
    warnings.filterwarnings("ignore", message=".*varying BackfillPolicies.*")
    # its store and registration chatter (runs are in the MLflow UI); mlflow sets its loggers' level from this on import
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    # A SIGTERM (a service manager, `kill`) stops `pm` like Ctrl-C. SIGINT gets the same handler even when `pm` was started
    # with it ignored (`pm daily &` from a script): after each run Dagster copies SIGINT's handler onto SIGTERM, and an
    # ignored SIGINT would leave SIGTERM ignored from the first run on.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    watch = _watch_interrupts() if args.command not in SERVERS else None  # a server's event loop keeps its own
    try:
        if args.command in RUNS_JOBS:
            from pm_assets.drivers import run_report

            run_report.reset()
            _clear_abandoned_runs()
        with _writing(args.command):
            args.func(args)
        if watch is not None and _interrupt_arrived(watch):  # swallowed somewhere on the way: stop here, not silently
            _interrupted()
        if args.command in RUNS_JOBS:
            _report_runs(args.allow_quarantine)
    except KeyboardInterrupt:
        _interrupted()
    except Exception as error:
        if watch is not None and _interrupt_arrived(watch):  # DuckDB turns an interrupt during a query into an error of its own
            _interrupted()
        if args.debug:
            raise
        sys.exit(f"pm: error: {_one_line(error)}")
    except BaseException as error:
        dagster = sys.modules.get("dagster")  # Dagster's own signal handling inside a run (not loaded: not its error)
        if dagster is not None and isinstance(error, dagster.DagsterExecutionInterruptedError) and not args.debug:
            _interrupted()
        raise


def _interrupted() -> None:
    """Stop in one line, and leave no run of this process looking alive (a re-run redoes its work)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if "pm_assets.drivers.runner" in sys.modules:  # no run can have started before the runner was imported
        from pm_assets.drivers.runner import fail_own_runs, instance

        with contextlib.suppress(Exception):
            fail_own_runs(instance())
    sys.exit("pm: interrupted")


def _interrupt(signum: int, frame) -> None:
    raise KeyboardInterrupt


def _watch_interrupts() -> int:
    """A pipe the interpreter writes every signal number to, whichever handler then runs: Dagster maps SIGTERM to its
    own SIGINT handler during a run, and dagster-dbt's event stream has a bare `except:` around each event that
    swallows the interrupt raised there. Reading it at the end tells a command that was interrupted all the same."""
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    return read


def _interrupt_arrived(watch: int) -> bool:
    try:
        arrived = os.read(watch, 1024)
    except BlockingIOError:
        return False
    return signal.SIGTERM in arrived or signal.SIGINT in arrived


if __name__ == "__main__":
    main()
