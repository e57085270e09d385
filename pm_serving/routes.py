"""HTTP routes: liveness, readiness, model card, predictions from readings, the fleet's latest scores, trends and
maintenance plan, and the planner's page over them.

`/predict` (one machine, at most `max_readings` readings) is decoded and scored on the event loop:
it costs about a millisecond. Batches are decoded and scored in a worker thread, so a body of many
megabytes does not hold up `/health` or the other requests.
"""

import asyncio
import datetime as dt
import os
import time
from importlib import resources
from typing import Annotated

from litestar import Controller, MediaType, Response, get, post
from litestar.datastructures import State
from litestar.dto import DTOData
from litestar.exceptions import NotFoundException
from litestar.params import Parameter
from prometheus_client import Counter

from pm_assets.storage import registry
from pm_serving import request_scoring
from pm_serving.body import LazyBody, TypedBody, decode_batch
from pm_serving.errors import Unavailable
from pm_serving.fleet import Snapshot
from pm_serving.model import LoadedModel, ModelHolder
from pm_serving.schemas import (
    BatchRequest,
    BatchResponse,
    ColumnarBatchRequest,
    Health,
    MachineColumns,
    MachineTrend,
    MaintenancePlan,
    ModelInfo,
    Prediction,
    PredictRequest,
    Readiness,
    RiskLevel,
    Worklist,
)

PREDICTIONS = Counter("pm_predictions", "Predictions served, by risk level", ["risk_level"])
#: The planner's page: one file, no build step, nothing fetched from elsewhere (it works offline).
PLANNER_PAGE = resources.files("pm_serving").joinpath("static/planner.html").read_bytes()


def _model(state: State) -> LoadedModel:
    model = state.holder.current
    if model is None:
        raise Unavailable(f"no model loaded: {state.holder.last_error or 'waiting for a champion'}")
    return model


def _served(state: State, predictions: list[Prediction]) -> None:
    state.inference_log.append(predictions)
    for prediction in predictions:
        PREDICTIONS.labels(prediction.risk_level).inc()


def _score_batch(state: State, model: LoadedModel, raw: bytes, shape: type[BatchRequest | ColumnarBatchRequest]) -> list[Prediction]:
    columnar = shape is ColumnarBatchRequest
    settings = state.holder.settings
    batch = decode_batch(raw, shape, MachineColumns if columnar else PredictRequest, settings.max_batch_machines)
    convert = request_scoring.from_columns if columnar else request_scoring.from_readings
    sent = [convert(model, m, f"body.machines[{i}]", settings.max_readings) for i, m in enumerate(batch.machines)]
    return request_scoring.predict(model, request_scoring.checked(model, sent))


@get("/", media_type=MediaType.HTML, include_in_schema=False)
async def planner_page() -> Response[bytes]:
    """The page itself holds no data: it asks the routes below, with the API key when one is set."""
    return Response(PLANNER_PAGE, media_type=MediaType.HTML, headers={"Cache-Control": "no-cache"})


@get("/health", summary="Liveness: the process answers")
async def health() -> Health:
    return Health(status="ok")


class ScoringController(Controller):
    @get("/ready", summary="Readiness of this worker: a model is loaded and its watcher is current (503 otherwise)")
    async def ready(self, state: State) -> Readiness:
        holder: ModelHolder = state.holder
        stale = holder.staleness()
        shipping = state.shipper and state.shipper.problem()
        problems = [p for p in (stale, holder.pointer_problem, state.inference_log.problem(), shipping, state.fleet.staleness()) if p]
        body = Readiness(ready=holder.current is not None and stale is None, model_version=holder.current and holder.current.version,
                         last_load_error=holder.last_error, worker_pid=os.getpid(), problems=problems,
                         watcher_checked_seconds_ago=None if holder.last_check is None else round(time.monotonic() - holder.last_check, 1))
        if holder.current is None:
            raise Unavailable(f"not ready: {holder.last_error or 'no model loaded yet'}", body)
        if stale:
            raise Unavailable(f"not ready: {stale}", body)
        return body

    @get("/model", summary="The model serving: version, metrics, features, alert threshold")
    async def model(self, state: State) -> ModelInfo:
        model = _model(state)
        bundle, spec = model.bundle, model.bundle.feature_spec
        return ModelInfo(name=registry.MODEL_NAME, version=model.version, alias=state.holder.settings.model_alias,
                         library=bundle.library, metrics={k: float(v) for k, v in bundle.metrics.items() if v == v},
                         features=spec.feature_names, sensors=spec.sensors, settings=spec.settings,
                         model_types=spec.model_types, min_readings=spec.min_readings, threshold=bundle.threshold,
                         loaded_at=model.loaded_at)

    @post("/predict", status_code=200, dto=TypedBody[PredictRequest], return_dto=None, summary="Score one machine from its recent readings")
    async def predict(self, data: PredictRequest, state: State) -> Prediction:
        model = _model(state)
        sent = request_scoring.from_readings(model, data, "body", state.holder.settings.max_readings)
        [prediction] = request_scoring.predict(model, request_scoring.checked(model, [sent]))
        _served(state, [prediction])
        return prediction

    @post("/predict/batch", status_code=200, dto=TypedBody[BatchRequest], return_dto=None, summary="Score many machines, each a list of readings")
    async def predict_batch(self, data: DTOData[BatchRequest], state: State) -> BatchResponse:
        return await self._batch(data, state, BatchRequest)

    @post("/predict/columns", status_code=200, dto=TypedBody[ColumnarBatchRequest], return_dto=None,
          summary="Score many machines, each as columns (a list of timestamps and one list per sensor): the cheapest to decode")
    async def predict_columns(self, data: DTOData[ColumnarBatchRequest], state: State) -> BatchResponse:
        return await self._batch(data, state, ColumnarBatchRequest)

    async def _batch(self, data: LazyBody, state: State, shape: type) -> BatchResponse:
        model = _model(state)
        predictions = await asyncio.to_thread(_score_batch, state, model, data.raw, shape)
        _served(state, predictions)
        return BatchResponse(predictions=predictions, model_version=model.version)


class MachinesController(Controller):
    path = "/machines"

    @get("/{machine_id:str}", summary="A machine's latest score from the daily pipeline (404 if unknown)")
    async def machine(self, machine_id: str, state: State) -> Response[bytes]:
        encoded = _snapshot(state).encoded.get(machine_id)
        if encoded is None:
            raise NotFoundException(f"no score for machine {_shown(machine_id)} in the fleet snapshot")
        return Response(encoded, media_type="application/json")

    @get("/{machine_id:str}/trend", summary="A machine's last two weeks: the RUL served and its range, and each sensor against "
                                            "its life baseline (404 if unknown)")
    async def trend(self, machine_id: str, state: State) -> MachineTrend:
        trend = _snapshot(state).trends.of(machine_id)
        if trend is None:
            raise NotFoundException(f"no trend for machine {_shown(machine_id)} in the fleet snapshot (the daily job's machine_trends "
                                    "publishes them)")
        return trend

    @get("/", summary="The maintenance worklist: machines most urgent first, optionally of one risk level")
    async def worklist(self, state: State, risk: RiskLevel | None = None,
                       limit: Annotated[int, Parameter(ge=1, le=10_000)] = 50) -> Worklist:
        snapshot = _snapshot(state)
        matching = snapshot.ranked if risk is None else [s for s in snapshot.ranked if s.risk_level == risk]
        return Worklist(machines=matching[:limit], total=len(matching), snapshot_scored_at=snapshot.scored_at)


@get("/plan", summary="The latest maintenance plan: which machine to service on which day, for the next `days` days")
async def maintenance_plan(state: State, days: Annotated[int, Parameter(ge=1, le=366)] = 7) -> MaintenancePlan:
    plan = _snapshot(state).plan
    if plan.first_day is None:
        raise NotFoundException("no maintenance plan yet: the daily job's maintenance_plan publishes it (`pm plan` makes one now)")
    until = plan.first_day + dt.timedelta(days=days)
    services = [s for s in plan.services if s.planned_day < until]
    return MaintenancePlan(plan_date=plan.plan_date, first_day=plan.first_day, services=services,
                           expected_cost_saved=float(sum(s.expected_cost_saved for s in services)), model_version=plan.model_version)


def _shown(machine_id: str) -> str:
    return repr(machine_id) if len(machine_id) <= 100 else f"{machine_id[:100]!r}… ({len(machine_id)} characters)"


def _snapshot(state: State) -> Snapshot:
    snapshot = state.fleet.snapshot
    if snapshot is None:
        raise Unavailable(f"no fleet scores yet: {state.fleet.staleness() or f'{state.fleet.source} does not exist'} "
                           "(the daily job's fleet_scores publishes it)")
    return snapshot

