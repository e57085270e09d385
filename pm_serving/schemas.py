"""Request and response bodies (msgspec Structs: decoded and validated in one typed pass, without pandas or pydantic).

Timestamps may carry a UTC offset or none; readings without one are taken as UTC (the platform's own
timestamps are UTC), and every timestamp is converted to UTC before features are computed. Depth is
bounded by the types themselves: nothing here nests deeper than four levels, so deeper input fails
validation at the first level where it does not fit. Request Structs hold only plain values, never a cycle, so
they are kept out of the garbage collector (`gc=False`: a batch of 30,000 readings decodes ~15 % faster).
"""

import datetime as dt
from typing import Annotated, Literal

import msgspec

from pm_assets.core.constants import EVENT_TYPES

MachineId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
RiskLevel = Literal["low", "medium", "high", "unknown"]


class Reading(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    ts: dt.datetime
    sensors: dict[str, float | None]  # sensor_01: 642.1, … (null for a missing value)
    settings: dict[str, float | None] = {}  # op_setting_1: 0.0021, …


class Event(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    ts: dt.datetime
    event_type: Literal[EVENT_TYPES]  # repair or maintenance renew or reset what the features count (a failure changes nothing)


class PredictRequest(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    machine_id: MachineId
    readings: Annotated[list[Reading], msgspec.Meta(min_length=1)]
    model_type: str | None = None
    events: list[Event] = []
    explain: bool = False  # the sensors driving the risk even when it is low (always given for medium and high)


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    machines: Annotated[list[PredictRequest], msgspec.Meta(min_length=1)]


class MachineColumns(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One machine's readings as columns: `ts` and one equally long list per sensor and setting."""

    machine_id: MachineId
    ts: Annotated[list[dt.datetime], msgspec.Meta(min_length=1)]
    sensors: dict[str, list[float | None]]
    settings: dict[str, list[float | None]] = {}
    model_type: str | None = None
    events: list[Event] = []
    explain: bool = False


class ColumnarBatchRequest(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    machines: Annotated[list[MachineColumns], msgspec.Meta(min_length=1)]


class Prediction(msgspec.Struct):
    machine_id: str
    ts: dt.datetime  # the machine's last reading, in UTC
    rul_hours: float | None  # null when the risk is `unknown`
    failure_probability: float | None
    risk_level: RiskLevel
    top_sensors: list[str]  # the sensors driving the risk (medium and high risk, or `explain`)
    model_version: str
    problem: str | None = None  # why the risk is `unknown` (too little usable sensor data)
    rul_lower: float | None = None  # the RUL's calibrated range (the model's `interval_coverage`, 90 % by default)
    rul_upper: float | None = None


class BatchResponse(msgspec.Struct):
    predictions: list[Prediction]
    model_version: str


class MachineScore(msgspec.Struct):
    """A machine's latest score from the daily pipeline's fleet snapshot."""

    machine_id: str
    as_of: dt.datetime  # its last reading scored
    rul_hours: float
    failure_probability: float
    risk_level: RiskLevel
    top_sensors: list[str]
    model_version: str
    scored_at: dt.datetime
    rul_lower: float | None = None  # the RUL's calibrated range
    rul_upper: float | None = None
    planned_day: dt.date | None = None  # its service day in the latest maintenance plan (null: none planned)
    plan_reason: str | None = None  # why the plan services it that day, or does not (null: no plan yet)


class PlannedService(msgspec.Struct):
    machine_id: str
    planned_day: dt.date
    expected_cost_saved: float  # against not servicing it within the plan's horizon
    failure_risk: float  # probability it fails before its planned day
    rul_hours: float
    rul_lower: float | None
    rul_upper: float | None
    reason: str


class MachineTrend(msgspec.Struct):
    """A machine's last two weeks in six-hour steps: the RUL served and its range, and each sensor's distance from
    the machine's own life baseline, in standard deviations of its operating regime (0: as when its life began)."""

    machine_id: str
    ts: list[dt.datetime]
    rul_hours: list[float | None]
    rul_lower: list[float | None]
    rul_upper: list[float | None]
    sensors_from_baseline: dict[str, list[float | None]]


class MaintenancePlan(msgspec.Struct):
    """The services of the latest plan's first `days` days, day by day, the largest saving first within a day."""

    plan_date: dt.date | None  # the day whose data the plan was made from
    first_day: dt.date | None
    services: list[PlannedService]
    expected_cost_saved: float
    model_version: str | None


class Worklist(msgspec.Struct):
    machines: list[MachineScore]
    total: int  # machines matching the filter (the list holds at most `limit`)
    snapshot_scored_at: dt.datetime | None


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
    worker_pid: int
    watcher_checked_seconds_ago: float | None  # since the champion watcher last read the pointer
    problems: list[str]  # what is wrong even while predictions answer (e.g. the inference log cannot be written)
