"""From request bodies to predictions, with the platform's own feature code (no training/serving skew).

Both request shapes (a list of readings, or columns) become the same arrays (`from_readings`, `from_columns`:
the request's shape checked), `checked` runs the value rules over every machine of a request at once, and
`predict` scores them as one matrix. A machine whose recent readings lack too much of what the model
needs gets risk `unknown` with the reason, never a confident `low` computed from filled-in gaps. The
sensors driving the risk (exact tree
SHAP values of the failure model, its costliest step: ~0.3 ms a row for LightGBM, ~20 ms a call
for CatBoost) are computed only for medium and high risk, or when a request asks (`explain`).
"""

import datetime as dt
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter

import numpy as np

from pm_assets.core.constants import MAX_ABS_READING, REPAIR, SERVICE_EVENTS, SETTING_COLUMNS
from pm_assets.core.latest_features import MachineHistory, latest_features
from pm_assets.core.reading_ranges import bounds, outside
from pm_assets.core.scoring import driving_sensors
from pm_serving.errors import InputError
from pm_serving.model import LoadedModel
from pm_serving.schemas import Event, MachineColumns, Prediction, PredictRequest

#: Below this share of the needed sensor values in a machine's last `min_readings` readings, its risk is `unknown`.
MIN_USABLE_SHARE = 0.5
#: A reading may be this far ahead of the service's clock (clocks drift); later ones are refused.
MAX_CLOCK_AHEAD = dt.timedelta(hours=1)
NAN = math.nan


@dataclass
class Machine:
    """One machine of a request, checked and as arrays."""

    machine_id: str
    history: MachineHistory
    explain: bool
    problem: str | None  # why it cannot be scored reliably


_EPOCH, _US = dt.datetime(1970, 1, 1), dt.timedelta(microseconds=1)


def _times(values: list[dt.datetime]) -> np.ndarray:
    """datetime64[us] in UTC (numpy's own conversion of datetime objects costs ~5x more): an offset is converted, a
    timestamp without one is taken as UTC."""
    return np.array([((t if t.tzinfo is None else t.astimezone(dt.UTC).replace(tzinfo=None)) - _EPOCH) // _US for t in values],
                    dtype=np.int64).view("datetime64[us]")


def _floats(rows: list[list[float | None]]) -> np.ndarray:
    """A 2-d float array, NaN for None (the fast path when nothing is missing)."""
    try:
        return np.array(rows, dtype=float)
    except TypeError:
        return np.array([[NAN if v is None else v for v in row] for row in rows], dtype=float)


def _field(where: str, columns: bool, i: int, attribute: str, name: str | None = None) -> str:
    """Where reading `i`'s `attribute` (`ts`, or a sensor or setting `name`) is in the request's shape."""
    if columns:
        return f"{where}.{attribute}{f'.{name}' if name else ''}[{i}]"
    return f"{where}.readings[{i}].{attribute}{f'.{name}' if name else ''}"


def _possible(values: np.ndarray, where: str, columns: bool, names: list[str], attribute: str) -> np.ndarray:
    """The platform's one rule for any reading (ingestion quarantines the same): finite and within ±MAX_ABS_READING."""
    impossible = np.abs(values) > MAX_ABS_READING  # infinities too; a missing value (NaN) is not impossible
    if impossible.any():
        i, j = np.argwhere(impossible)[0]
        raise InputError(_field(where, columns, int(i), attribute, names[j]),
                         f"must be a finite number within ±{MAX_ABS_READING:g}, got {values[i, j]:g}")
    return values


def _distinct_times(times: np.ndarray, min_readings: int, where: str, columns: bool) -> np.ndarray | slice:
    """Which readings count, in time order: of readings sent twice with one timestamp the first sent counts (as
    staging keeps one per timestamp), and the minimum is counted after that; a timestamp in the future is refused."""
    stamps = times.view(np.int64)
    if (np.diff(stamps) > 0).all():  # in order and distinct, the usual request: nothing to sort or copy
        kept, last = slice(None), len(times) - 1
    else:
        order = np.argsort(stamps, kind="stable")
        kept = order[np.r_[True, np.diff(stamps[order]) != 0]]
        if len(kept) < min_readings:
            raise InputError(f"{where}.{'ts' if columns else 'readings'}",
                             f"needs at least {min_readings} readings with distinct timestamps, got {len(kept)} "
                             f"({len(times) - len(kept)} repeat an earlier timestamp)")
        last = int(kept[-1])
    if stamps[last] > time.time_ns() // 1000 + MAX_CLOCK_AHEAD // _US:
        raise InputError(_field(where, columns, last, "ts"),
                         f"{times[last]} UTC is in the future (more than {MAX_CLOCK_AHEAD} ahead of the service's clock)")
    return kept


def _check(model: LoadedModel, where: str, model_type: str | None, n: int, sensors: set[str], settings: set[str],
           max_readings: int) -> None:
    """What the model needs is there: a known machine type, enough readings, its sensors and settings."""
    spec = model.bundle.feature_spec
    if model_type is not None and spec.model_types and model_type not in spec.model_types:
        raise InputError(f"{where}.model_type", f"unknown machine type {model_type!r}; the model knows {spec.model_types}")
    if n < spec.min_readings:
        raise InputError(f"{where}.readings", f"needs at least {spec.min_readings} readings for the feature windows, got {n}")
    if n > max_readings:
        raise InputError(f"{where}.readings", f"at most {max_readings} readings per machine, got {n}")
    known = set(spec.input_sensors or spec.sensors)
    if unknown := sorted(sensors - known):
        raise InputError(f"{where}.readings.sensors", f"unknown sensors {unknown}; the model knows {sorted(known)}")
    if unknown := sorted(settings - set(SETTING_COLUMNS)):
        raise InputError(f"{where}.readings.settings", f"unknown operating settings {unknown}; the platform knows {list(SETTING_COLUMNS)}")
    if missing := sorted(set(spec.sensors) - sensors):
        raise InputError(f"{where}.readings.sensors", f"missing sensors {missing} that the model needs")
    if missing := sorted(set(spec.settings) - settings):
        raise InputError(f"{where}.readings.settings", f"missing operating settings {missing} that the model needs")


def _usability(sensors: np.ndarray, names: list[str], recent: int) -> str | None:
    """Why the last `recent` readings cannot be trusted for a score, or None."""
    tail = np.isnan(sensors[-recent:])
    if not tail.any():
        return None
    if dead := [names[j] for j in np.flatnonzero(tail.all(axis=0))]:
        return f"no value of {', '.join(dead)} in the last {recent} readings"
    if (share := 1 - tail.mean()) < MIN_USABLE_SHARE:
        return f"only {share:.0%} of the sensor values in the last {recent} readings are present (at least {MIN_USABLE_SHARE:.0%} needed)"
    return None


@dataclass
class Sent:
    """One machine of a request as sent, in arrays: its shape checked, its values not yet."""

    machine_id: str
    ts: np.ndarray  # datetime64[us], UTC, in the order sent
    settings: np.ndarray  # rows x spec.settings, NaN where missing
    sensors: np.ndarray  # rows x spec.sensors
    events: list[Event]
    explain: bool
    where: str  # where it is in the request (`body`, `body.machines[3]`)
    columns: bool  # sent as columns (for naming a field)


def from_readings(model: LoadedModel, request: PredictRequest, where: str, max_readings: int) -> Sent:
    """A machine sent as a list of readings."""
    spec = model.bundle.feature_spec
    readings = request.readings
    _check(model, where, request.model_type, len(readings), set().union(*(r.sensors.keys() for r in readings)),
           set().union(*(r.settings.keys() for r in readings)), max_readings)

    try:  # every reading sends every value: C-level lookups, one list of settings and sensors per reading
        settings_of, sensors_of = _picker(spec.settings), _picker(spec.sensors)
        rows = [settings_of(r.settings) + sensors_of(r.sensors) for r in readings]
    except KeyError:
        rows = [[r.settings.get(n) for n in spec.settings] + [r.sensors.get(n) for n in spec.sensors] for r in readings]
    values = _floats(rows).reshape(len(readings), len(spec.settings) + len(spec.sensors))
    return Sent(request.machine_id, _times([r.ts for r in readings]), values[:, :len(spec.settings)],
                values[:, len(spec.settings):], request.events, request.explain, where, columns=False)


def _picker(names: list[str]) -> Callable[[dict], tuple]:
    """A function giving a dict's values of `names` as a tuple (KeyError if one is missing)."""
    if len(names) == 1:
        name = names[0]
        return lambda values: (values[name],)
    return itemgetter(*names) if names else lambda values: ()


def from_columns(model: LoadedModel, request: MachineColumns, where: str, max_readings: int) -> Sent:
    """A machine sent as columns: `ts` and a list per sensor and setting, all of the same length."""
    spec = model.bundle.feature_spec
    n = len(request.ts)
    for kind, columns in (("sensors", request.sensors), ("settings", request.settings)):
        if uneven := sorted(name for name, values in columns.items() if len(values) != n):
            raise InputError(f"{where}.{kind}", f"{', '.join(uneven)} must have one value per timestamp ({n})")
    _check(model, where, request.model_type, n, set(request.sensors), set(request.settings), max_readings)

    def matrix(columns: dict[str, list[float | None]], names: list[str]) -> np.ndarray:
        if not names:
            return np.empty((n, 0))
        return _floats([columns[name] for name in names]).T

    return Sent(request.machine_id, _times(request.ts), matrix(request.settings, spec.settings),
                matrix(request.sensors, spec.sensors), request.events, request.explain, where, columns=True)


def checked(model: LoadedModel, sent: Sequence[Sent]) -> list[Machine]:
    """The value checks of every machine of a request, over all their readings at once.

    An impossible value or a timestamp in the future refuses the request (naming the first machine, in request
    order, with one); a machine outside the model's experience or with too little usable data gets its `problem`.
    One pass over the readings of all machines stacked finds the usual ones (every value present and within what
    the model has seen, timestamps rising, none ahead of the clock); only the machines with an unusual reading
    go through the rules one by one (for the message, or to sort and de-duplicate their readings)."""
    spec = model.bundle.feature_spec
    starts = np.cumsum(np.array([0] + [len(m.ts) for m in sent[:-1]]))
    stack = (lambda arrays: arrays[0]) if len(sent) == 1 else np.concatenate
    values = np.concatenate([stack([m.settings for m in sent]), stack([m.sensors for m in sent])], axis=1)
    stamps = stack([m.ts for m in sent]).view(np.int64)
    low, high = bounds(spec.reading_ranges, spec.settings + spec.sensors)
    unusual = ~((values >= np.maximum(low, -MAX_ABS_READING)) & (values <= np.minimum(high, MAX_ABS_READING))).all(axis=1)
    back = stamps[1:] <= stamps[:-1]
    back[starts[1:] - 1] = False  # from one machine's last reading to the next one's first
    unusual[1:] |= back
    unusual |= stamps > time.time_ns() // 1000 + MAX_CLOCK_AHEAD // _US
    flagged = np.flatnonzero(np.logical_or.reduceat(unusual, starts)) if unusual.any() else ()
    looked_at: dict[int, Machine] = {}
    for k in flagged:  # in request order: the first machine with an error refuses the request
        m = sent[k]
        _possible(m.settings, m.where, m.columns, spec.settings, "settings")
        _possible(m.sensors, m.where, m.columns, spec.sensors, "sensors")
        history = _history(m, _distinct_times(m.ts, spec.min_readings, m.where, m.columns))
        problem = (outside(spec.reading_ranges, spec.sensors, history.sensors) or outside(spec.reading_ranges, spec.settings, history.settings)
                   or _usability(history.sensors, spec.sensors, spec.min_readings))
        looked_at[k] = Machine(m.machine_id, history, m.explain, problem)
    return [looked_at.get(k) or Machine(m.machine_id, _history(m, slice(None)), m.explain, None) for k, m in enumerate(sent)]


def _history(m: Sent, rows: np.ndarray | slice) -> MachineHistory:
    return MachineHistory(
        ts=m.ts[rows], settings=m.settings[rows], sensors=m.sensors[rows],
        repairs=_times([e.ts for e in m.events if e.event_type == REPAIR]) if m.events else None,
        services=_times([e.ts for e in m.events if e.event_type in SERVICE_EVENTS]) if m.events else None,
    )


def predict(model: LoadedModel, machines: Sequence[Machine]) -> list[Prediction]:
    """Score checked machines: RUL, failure probability, risk, and the driving sensors where they matter."""
    bundle = model.bundle
    scored = [k for k, m in enumerate(machines) if m.problem is None]
    last = np.array([m.history.ts[-1] for m in machines], dtype="datetime64[us]").tolist()
    predictions: list[Prediction | None] = [None] * len(machines)
    if scored:
        X = latest_features(bundle.feature_spec, [machines[k].history for k in scored])
        threads = 1 if len(scored) < 100 else -1
        rul, probability = bundle.predict(X, threads)
        lower, upper = bundle.rul_range(rul, probability)
        risk = bundle.risk_level(probability)
        driving = driving_sensors(bundle, X, risk, np.array([machines[k].explain for k in scored]), threads)
        # (NaN is no JSON number: a range without calibration is null)
        lower, upper = np.where(np.isnan(lower), None, lower).tolist(), np.where(np.isnan(upper), None, upper).tolist()
        for k, rul_k, p_k, risk_k, driving_k, lower_k, upper_k in zip(scored, rul.tolist(), probability.tolist(), risk.tolist(),
                                                                     driving, lower, upper):
            predictions[k] = Prediction(machine_id=machines[k].machine_id, ts=last[k].replace(tzinfo=dt.UTC), rul_hours=rul_k,
                                        failure_probability=p_k, risk_level=risk_k, top_sensors=driving_k,
                                        model_version=model.version, rul_lower=lower_k, rul_upper=upper_k)
    for k, machine in enumerate(machines):
        if machine.problem is not None:
            predictions[k] = Prediction(machine_id=machine.machine_id, ts=last[k].replace(tzinfo=dt.UTC), rul_hours=None,
                                        failure_probability=None, risk_level="unknown", top_sensors=[], model_version=model.version,
                                        problem=machine.problem)
    return predictions  # type: ignore[return-value]
