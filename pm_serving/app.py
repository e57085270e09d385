"""The scoring service: `create_app(settings)`, served by `pm serve` (uvicorn, `--workers N` processes).

Each worker is a whole service: it loads the champion, watches the pointer and the fleet snapshot,
and writes its own inference log (copied to shared storage with `PM_INFERENCE_LOG_URL`). With several workers `/metrics` adds up every worker's counters
(prometheus_client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`, which `pm serve` sets), while
`/ready` reports the worker that answered.
"""

import asyncio
import contextlib
import gc
import hmac
import os
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig

from pm_serving import errors, routes
from pm_serving.fleet import FleetScores
from pm_serving.inference_log import InferenceLog
from pm_serving.log_shipping import LogShipper
from pm_serving.metrics import MetricsController
from pm_serving.model import ModelHolder
from pm_serving.settings import Settings

OPEN_PATHS = {"/health", "/"}  # the page holds no data: what it shows comes from routes that ask for the key


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    api_key = settings.api_key.encode() if settings.api_key else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        holder, fleet = ModelHolder(settings), FleetScores(settings)
        await asyncio.gather(asyncio.to_thread(holder.try_check), asyncio.to_thread(fleet.try_check))
        app.state.holder, app.state.fleet = holder, fleet
        app.state.inference_log = InferenceLog(settings.inference_log_dir, settings.log_queue_size)
        app.state.shipper = LogShipper(settings.inference_log_dir, settings.inference_log_url) if settings.inference_log_url else None
        watchers = [asyncio.create_task(holder.watch()), asyncio.create_task(fleet.watch())]
        # what start-up loaded (libraries, the model, the snapshot) lives as long as the worker: out of the collector's
        # way, a full collection no longer walks ~400 k objects in the middle of a request
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            for task in watchers:
                task.cancel()
            await asyncio.to_thread(app.state.inference_log.close)  # every served prediction written before exit
            if app.state.shipper:
                await asyncio.to_thread(app.state.shipper.close)  # and copied to shared storage
            if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(os.getpid())

    def require_api_key(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        if api_key is None or connection.scope["path"] in OPEN_PATHS:
            return
        sent = connection.headers.get("x-api-key", "").encode()
        if not hmac.compare_digest(sent, api_key):  # constant time: the comparison does not leak how much matched
            raise NotAuthorizedException("missing or wrong API key: send it in the X-API-Key header")

    prometheus = PrometheusConfig(app_name="pm_serving", prefix="pm", group_path=True)
    return Litestar(
        route_handlers=[routes.planner_page, routes.health, routes.maintenance_plan, routes.ScoringController, routes.MachinesController, MetricsController],
        lifespan=[lifespan],
        guards=[require_api_key],
        middleware=[prometheus.middleware],
        exception_handlers=errors.EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="pm-platform scoring service", version="1.0.0", path="/schema"),
    )
