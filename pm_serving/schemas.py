"""Request and response bodies (msgspec Structs: decoded and validated without pandas or pydantic)."""

import datetime as dt
from typing import Annotated

import msgspec

MachineId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Reading(msgspec.Struct, forbid_unknown_fields=True):
    ts: dt.datetime
    sensors: dict[str, float | None]  # sensor_01: 642.1, … (null for a missing value)
    settings: dict[str, float | None] = {}  # op_setting_1: 0.0021, …


class Event(msgspec.Struct, forbid_unknown_fields=True):
    ts: dt.datetime
    event_type: str  # repair or maintenance (failures are not needed to score)


class PredictRequest(msgspec.Struct, forbid_unknown_fields=True):
    machine_id: MachineId
    readings: Annotated[list[Reading], msgspec.Meta(min_length=1)]
    model_type: str | None = None
    events: list[Event] = []


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    machines: Annotated[list[PredictRequest], msgspec.Meta(min_length=1)]


class Prediction(msgspec.Struct):
    machine_id: str
    ts: dt.datetime
    rul_hours: float
    failure_probability: float
    risk_level: str
    top_sensors: list[str]
    model_version: str


class BatchResponse(msgspec.Struct):
    predictions: list[Prediction]
    model_version: str


class ModelInfo(msgspec.Struct):
    name: str
    version: str
    alias: str
    library: str
    metrics: dict[str, float]
    features: list[str]
    sensors: list[str]
    settings: list[str]
    model_types: list[str]
    min_readings: int
    threshold: float
    loaded_at: dt.datetime


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    ready: bool
    model_version: str | None
    last_load_error: str | None
