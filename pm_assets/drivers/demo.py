"""`pm demo`: the platform's story on a simulated fleet, each stage with its wall time.

History is landed and ingested, the first champion trained and promoted, then the last days stream one at a time
through the daily work and the retraining sensor, while a failure mode the champion never saw spreads. It ends with
the loop's summary, the last maintenance plan and the maintenance policies compared over the streamed days.
"""

import contextlib
import datetime as dt
import time
from collections.abc import Iterator

from pm_assets.core.policies import table
from pm_assets.drivers import loop
from pm_assets.drivers.plan_review import plan_against_alert, plan_lines, policies_over_stream
from pm_assets.drivers.runner import ingest_stages, run_stages, train_stages
from pm_assets.sources import simulation
from pm_assets.sources.simulator import FleetConfig
from pm_assets.storage import paths, registry


#: The demo's candidates cross-validate on 3 folds instead of 5: its fleet is small, and each training (the first
#: and every retraining) then takes about 40 % less, so the story is told in minutes. A real fleet keeps the default.
DEMO_CANDIDATES = {name: {"config": {"n_folds": 3}} for name in ("catboost_model", "lightgbm_model")}


@contextlib.contextmanager
def stage(title: str) -> Iterator[None]:
    """A stage: its title, then its wall time."""
    print(f"== {title}", flush=True)
    started = time.perf_counter()
    yield
    print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)


def run(config: FleetConfig, stream_days: int, cooldown_days: float) -> None:
    """The demo on the fleet `config`: its last `stream_days` days streamed, with a retraining cooldown of `cooldown_days`."""
    history = config.n_days - stream_days
    if history < 30 or stream_days < 1:
        raise ValueError("--days must leave at least 30 days of history before --stream-days (>= 1)")
    started = time.perf_counter()
    with stage(f"the platform on a simulated fleet (data in {paths.data_dir()})"):
        days, rows = simulation.land_days(config, 0, history - 1)
        print(f"simulated fleet of {config.n_machines} machines: landed {days[0]}..{days[-1]} ({rows:,} readings) -> {paths.landing_dir()}")
    with stage(f"ingesting {history} days of history"):
        run_stages(ingest_stages((days[0], days[-1])))
    with stage("training CatBoost and LightGBM, promoting the better one, scoring the fleet"):
        run_stages(train_stages((days[0], days[-1])), ops_config=DEMO_CANDIDATES)
    drift_start = config.drift and config.start_date + dt.timedelta(days=config.drift.start_day)
    with stage(f"streaming {stream_days} days, one at a time ({config.drift.name if config.drift else 'no'} drift"
               f"{f' from {drift_start}' if drift_start else ''})"):
        streamed, _ = simulation.land_days(config, history, config.n_days - 1)
        # the stream runs on the simulated clock: a short cooldown lets the demo show a second retraining
        summary = loop.stream(streamed, drift_start, retrain_config={"ops": DEMO_CANDIDATES}, cooldown_hours=cooldown_days * 24)
    print("== summary")
    for line in [*summary.describe(), *plan_lines(limit=5)]:
        print(f"  {line}")
    with stage("each maintenance policy over the streamed days, acting on the serving champions' logged predictions (crew 2/day)"):
        policies = policies_over_stream(summary)
        for line in [*table(policies).splitlines(), plan_against_alert(policies) or ""]:
            print(f"  {line}")
    print(f"demo done in {time.perf_counter() - started:.0f} s")
    print(f"written to {paths.demo_summary_path()}; MLflow: mlflow ui --backend-store-uri {registry.tracking_uri()}")
    print('fleet scores: pm sql "select * from scores.fleet_scores order by failure_probability desc limit 10"')
