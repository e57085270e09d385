"""`/metrics` in Prometheus' text format: every live worker's figures added up, never a dead worker's gauges.

With several workers (`PROMETHEUS_MULTIPROC_DIR`), each writes its samples to files named after its pid. A
worker that exits cleanly removes its live gauges (`mark_process_dead` in the app's lifespan); one that was
killed cannot, so before each scrape the files of pids no longer running are dropped the same way: its
`pm_model_version` line goes, while its counters stay in the totals (what it served was served).
"""

import os
import re
from pathlib import Path

from litestar import Controller, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from pm_assets.core.processes import alive


def forget_dead_workers(folder: Path) -> list[int]:
    """Remove the live gauges of workers that are no longer running; return their pids."""
    pids = {int(found.group(1)) for f in folder.glob("*.db") if (found := re.search(r"_(\d+)\.db$", f.name))}
    dead = sorted(pid for pid in pids if not alive(pid))
    for pid in dead:
        multiprocess.mark_process_dead(pid, str(folder))
    return dead


class MetricsController(Controller):
    path = "/metrics"

    @get(summary="Prometheus metrics: requests, latency, predictions by risk, the model version each live worker serves")
    async def metrics(self) -> Response:
        registry = REGISTRY
        if folder := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            forget_dead_workers(Path(folder))
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
