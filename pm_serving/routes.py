"""HTTP routes: liveness, readiness, model card, single and batch predictions."""

from litestar import Controller, get, post
from litestar.datastructures import State
from prometheus_client import Counter

from pm_assets.storage import registry
from pm_serving import scoring
from pm_serving.errors import InputError, NoModelError
from pm_serving.model import LoadedModel, ModelHolder
from pm_serving.schemas import BatchRequest, BatchResponse, Health, ModelInfo, Prediction, PredictRequest, Readiness

PREDICTIONS = Counter("pm_predictions", "Predictions served, by risk level", ["risk_level"])


def _model(state: State) -> LoadedModel:
    model = state.holder.current
    if model is None:
        raise NoModelError(f"no model loaded: {state.holder.last_error or 'waiting for a champion'}")
    return model


def _served(state: State, predictions: list[Prediction]) -> None:
    state.inference_log.append(predictions)
    for prediction in predictions:
        PREDICTIONS.labels(prediction.risk_level).inc()


@get("/health", summary="Liveness: the process answers")
async def health() -> Health:
    return Health(status="ok")


class ScoringController(Controller):
    @get("/ready", summary="Readiness: a model is loaded (503 otherwise)")
    async def ready(self, state: State) -> Readiness:
        holder: ModelHolder = state.holder
        body = Readiness(ready=holder.current is not None, model_version=holder.current and holder.current.version,
                         last_load_error=holder.last_error)
        if holder.current is None:
            raise NoModelError(f"not ready: {holder.last_error or 'no model loaded yet'}")
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

    @post("/predict", status_code=200, summary="Score one machine from its recent readings")
    async def predict(self, data: PredictRequest, state: State) -> Prediction:
        model = _model(state)
        if len(data.readings) > state.holder.settings.max_readings:
            raise InputError("body.readings", f"at most {state.holder.settings.max_readings} readings per machine")
        [prediction] = scoring.predict(model, [data])
        _served(state, [prediction])
        return prediction

    @post("/predict/batch", status_code=200, summary="Score many machines in one call")
    async def predict_batch(self, data: BatchRequest, state: State) -> BatchResponse:
        model = _model(state)
        if len(data.machines) > state.holder.settings.max_batch_machines:
            raise InputError("body.machines", f"at most {state.holder.settings.max_batch_machines} machines per batch, got {len(data.machines)}")
        predictions = scoring.predict(model, data.machines)
        _served(state, predictions)
        return BatchResponse(predictions=predictions, model_version=model.version)
