"""`/metrics` in Prometheus' text format: every live worker's figures added up, never a dead worker's gauges, and
the fleet as the latest snapshot shows it.

With several workers (`PROMETHEUS_MULTIPROC_DIR`), each writes its samples to files named after its pid. A
worker that exits cleanly removes its live gauges (`mark_process_dead` in the app's lifespan); one that was
killed cannot, so before each scrape the files of pids no longer running are dropped the same way: its
`pm_model_version` line goes, while its counters stay in the totals (what it served was served). The fleet
gauges (`pm_fleet_*`) are read from the snapshot the answering worker holds when Prometheus scrapes, so they
cost a request nothing. `EXPORTED` names every metric the service publishes: the Grafana dashboards in
`deploy/grafana/` may query only these (a test holds both to it).
"""

import datetime as dt
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from litestar import Controller, Response, get
from litestar.datastructures import State
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pm_assets.core.models import RISK_LEVELS
from pm_assets.core.processes import alive
from pm_serving.fleet import Snapshot
from pm_serving.model import LoadedModel

#: Every metric name `/metrics` publishes (as Prometheus names them, with a histogram's or counter's suffixes).
EXPORTED = (
    "pm_requests_total", "pm_requests_in_progress",
    "pm_request_duration_seconds_bucket", "pm_request_duration_seconds_sum", "pm_request_duration_seconds_count",
    "pm_predictions_total", "pm_model_version",
    "pm_inference_log_written_total", "pm_inference_log_dropped_total", "pm_inference_log_write_errors_total",
    "pm_inference_log_files_shipped_total", "pm_inference_log_ship_errors_total",
    "pm_model_age_seconds",
    "pm_fleet_machines", "pm_fleet_snapshot_age_seconds", "pm_fleet_planned_services", "pm_fleet_plan_expected_cost_saved",
    "pm_fleet_matured_failures", "pm_fleet_live_rul_rmse", "pm_fleet_rul_range_coverage",
    "pm_fleet_drifted_sensor_share", "pm_fleet_prediction_psi",
)


class FleetCollector(Collector):
    """The fleet's gauges from a snapshot, and the serving model's age, computed when Prometheus scrapes."""

    def __init__(self, snapshot: Callable[[], Snapshot | None], model: Callable[[], LoadedModel | None]):
        self.snapshot, self.model = snapshot, model

    def collect(self) -> Iterator[Metric]:
        if (model := self.model()) is not None:  # days since the last retraining that won, as an operator reads it
            yield GaugeMetricFamily("pm_model_age_seconds", "Seconds since the model this worker serves was trained and registered",
                                    value=(dt.datetime.now(dt.UTC) - model.registered_at).total_seconds())
        snapshot = self.snapshot()
        if snapshot is None:  # no daily run has published scores yet: no fleet figures rather than zeros
            return
        machines = GaugeMetricFamily("pm_fleet_machines", "Machines in the latest fleet scores, by risk level", labels=["risk_level"])
        counts = Counter(score.risk_level for score in snapshot.ranked)
        for level in RISK_LEVELS:
            machines.add_metric([level], counts.get(level, 0))
        yield machines
        if snapshot.scored_at is not None:
            age = (dt.datetime.now(dt.UTC) - snapshot.scored_at).total_seconds()
            yield GaugeMetricFamily("pm_fleet_snapshot_age_seconds", "Seconds since the daily pipeline scored the fleet", value=age)
        plan = snapshot.plan
        if plan.first_day is not None:
            planned = GaugeMetricFamily("pm_fleet_planned_services", "Services in the latest maintenance plan, by day of the plan "
                                        "(1 is its first day)", labels=["plan_day"])
            by_day = Counter((s.planned_day - plan.first_day).days + 1 for s in plan.services)
            for day in sorted(by_day):
                planned.add_metric([str(day)], by_day[day])
            yield planned
            yield GaugeMetricFamily("pm_fleet_plan_expected_cost_saved", "Expected cost the latest plan saves against servicing "
                                    "no machine within its horizon", value=sum(s.expected_cost_saved for s in plan.services))
        yield from _figures(snapshot.figures)


def _figures(figures: dict[str, dict]) -> Iterator[Metric]:
    """The monitoring assets' latest figures: a figure not judged yet is absent (no sample), never a 0."""
    performance, drift = figures.get("performance", {}), figures.get("drift", {})
    if "failures_caught" in performance:
        failures = GaugeMetricFamily("pm_fleet_matured_failures", "Failures matured in model_performance's window, by whether the "
                                     "alert caught them in time", labels=["outcome"])
        failures.add_metric(["caught"], performance["failures_caught"])
        failures.add_metric(["missed"], performance["failures_missed"])
        yield failures
    for name, source, key, help_text in (
            ("pm_fleet_live_rul_rmse", performance, "live_rul_rmse", "Live RUL RMSE of the champion's matured predictions"),
            ("pm_fleet_rul_range_coverage", performance, "rul_range_coverage", "Share of matured RULs inside their predicted range"),
            ("pm_fleet_drifted_sensor_share", drift, "drifted_share", "Share of sensors drift_report found drifted on its latest day"),
            ("pm_fleet_prediction_psi", drift, "prediction_psi", "PSI of the champion's predictions on drift_report's latest day")):
        if key in source:
            yield GaugeMetricFamily(name, help_text, value=source[key])


def forget_dead_workers(folder: Path) -> list[int]:
    """Remove the live gauges of workers that are no longer running; return their pids."""
    pids = {int(found.group(1)) for f in folder.glob("*.db") if (found := re.search(r"_(\d+)\.db$", f.name))}
    dead = sorted(pid for pid in pids if not alive(pid))
    for pid in dead:
        multiprocess.mark_process_dead(pid, str(folder))
    return dead


class MetricsController(Controller):
    path = "/metrics"

    @get(summary="Prometheus metrics: requests, latency, predictions by risk, the model version each live worker serves, "
                 "the fleet by risk level and its maintenance plan")
    async def metrics(self, state: State) -> Response:
        registry = REGISTRY
        if folder := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            forget_dead_workers(Path(folder))
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        fleet = CollectorRegistry()
        fleet.register(FleetCollector(lambda: state.fleet.snapshot, lambda: state.holder.current))
        return Response(generate_latest(registry) + generate_latest(fleet), headers={"Content-Type": CONTENT_TYPE_LATEST})
