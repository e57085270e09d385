"""From request bodies to predictions, with the platform's own feature code (no training/serving skew)."""

import math

import numpy as np

from pm_assets.core.constants import REPAIR, SERVICE_EVENTS
from pm_assets.core.latest_features import MachineHistory, latest_features
from pm_assets.core.scoring import top_sensors
from pm_serving.errors import InputError
from pm_serving.model import LoadedModel
from pm_serving.schemas import Prediction, PredictRequest


def _column(readings, attribute: str, names: list[str], where: str) -> np.ndarray:
    """Readings x names array of one attribute (`sensors` or `settings`); NaN where a value is null."""
    nan = math.nan
    values = np.array([[nan if (v := getattr(r, attribute).get(n)) is None else v for n in names] for r in readings], dtype=float)
    if np.isinf(values).any():
        i, j = np.argwhere(np.isinf(values))[0]
        raise InputError(f"{where}.readings[{i}].{attribute}.{names[j]}", f"must be a finite number, got {values[i, j]}")
    return values.reshape(len(readings), len(names))


def history(model: LoadedModel, request: PredictRequest, where: str) -> MachineHistory:
    """Check one machine's request against what the model knows, and turn it into arrays."""
    spec = model.bundle.feature_spec
    if request.model_type is not None and spec.model_types and request.model_type not in spec.model_types:
        raise InputError(f"{where}.model_type", f"unknown machine type {request.model_type!r}; the model knows {spec.model_types}")
    if len(request.readings) < spec.min_readings:
        raise InputError(f"{where}.readings", f"needs at least {spec.min_readings} readings for the feature windows, got {len(request.readings)}")
    known = set(spec.input_sensors or spec.sensors)
    sent = set().union(*(r.sensors.keys() for r in request.readings))
    if unknown := sorted(sent - known):
        raise InputError(f"{where}.readings.sensors", f"unknown sensors {unknown}; the model knows {sorted(known)}")
    if missing := sorted(set(spec.sensors) - sent):
        raise InputError(f"{where}.readings.sensors", f"missing sensors {missing} that the model needs")
    if missing := sorted(set(spec.settings) - set().union(*(r.settings.keys() for r in request.readings))):
        raise InputError(f"{where}.readings.settings", f"missing operating settings {missing} that the model needs")
    readings = sorted(request.readings, key=lambda r: r.ts)
    ts = np.array([r.ts.replace(tzinfo=None) for r in readings], dtype="datetime64[us]")
    events = [(np.datetime64(e.ts.replace(tzinfo=None), "us"), e.event_type) for e in request.events]
    return MachineHistory(
        ts=ts,
        settings=_column(readings, "settings", spec.settings, where),
        sensors=_column(readings, "sensors", spec.sensors, where),
        repairs=np.array([t for t, kind in events if kind == REPAIR], dtype="datetime64[us]"),
        services=np.array([t for t, kind in events if kind in SERVICE_EVENTS], dtype="datetime64[us]"),
    )


def predict(model: LoadedModel, requests: list[PredictRequest], where: str = "body") -> list[Prediction]:
    histories = [history(model, r, where if len(requests) == 1 else f"{where}.machines[{i}]") for i, r in enumerate(requests)]
    bundle = model.bundle
    X = latest_features(bundle.feature_spec, histories)
    rul, probability = bundle.predict(X)
    sensors, contributions = bundle.sensor_contributions(X)
    drivers = top_sensors(sensors, contributions)
    risk = bundle.risk_level(probability)
    return [
        Prediction(machine_id=r.machine_id, ts=max(x.ts for x in r.readings), rul_hours=float(rul[i]),
                   failure_probability=float(probability[i]), risk_level=str(risk[i]), top_sensors=drivers[i],
                   model_version=model.version)
        for i, r in enumerate(requests)
    ]
