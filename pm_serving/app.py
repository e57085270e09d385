"""The scoring service: `create_app(settings)`, served by `pm serve` (uvicorn, one worker)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

from pm_serving import errors, routes
from pm_serving.inference_log import InferenceLog
from pm_serving.model import ModelHolder
from pm_serving.settings import Settings

OPEN_PATHS = {"/health"}


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        holder = ModelHolder(settings)
        await asyncio.to_thread(holder.refresh)
        app.state.holder = holder
        app.state.inference_log = InferenceLog(settings.inference_log_dir)
        watcher = asyncio.create_task(holder.watch())
        flusher = asyncio.create_task(_flush_every_second(app.state.inference_log))
        try:
            yield
        finally:
            watcher.cancel()
            flusher.cancel()
            app.state.inference_log.close()

    def require_api_key(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        if settings.api_key and connection.url.path not in OPEN_PATHS and connection.headers.get("x-api-key") != settings.api_key:
            raise NotAuthorizedException("missing or wrong API key: send it in the X-API-Key header")

    prometheus = PrometheusConfig(app_name="pm_serving", prefix="pm", group_path=True)
    return Litestar(
        route_handlers=[routes.health, routes.ScoringController, PrometheusController],
        lifespan=[lifespan],
        guards=[require_api_key],
        middleware=[prometheus.middleware],
        exception_handlers=errors.EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="pm-platform scoring service", version="1.0.0", path="/schema"),
    )


async def _flush_every_second(log: InferenceLog) -> None:
    while True:
        await asyncio.sleep(1)
        log.flush()
