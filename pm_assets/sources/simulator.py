"""A simulated fleet: the platform's embedded default data source.

Each machine has a latent degradation ``d`` in [0, 1] that stays at 0 until a random onset and then
grows as ``((age - onset) / life) ** shape``; it fails when ``d`` reaches 1, is repaired after some
downtime and starts a new life. Preventive maintenance rolls the machine's age back part of the way.
The failure mode of a life decides which sensors move, so sensors lead failures by days. Operating
regimes shift every sensor's baseline, and sensor faults (missing values, spikes, stuck readings,
duplicated timestamps) are laid on top. Everything is drawn from one seeded generator.
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from pm_assets.core.constants import PARTITION_START, sensor_name

DriftName = Literal["recalibration", "new_regime", "new_failure_mode"]
DRIFT_NAMES: tuple[str, ...] = ("recalibration", "new_regime", "new_failure_mode")

#: Sensors (0-based) each failure mode moves, with the direction of the move.
FAILURE_MODES: dict[str, dict[int, float]] = {
    "bearing_wear": {0: 1.0, 1: 1.0, 2: -1.0},
    "seal_leak": {3: -1.0, 4: 1.0, 5: 1.0},
    "electrical": {6: 1.0, 7: -1.0, 1: -0.5},  # appears only with the `new_failure_mode` drift
}
MODEL_TYPES = ("A", "B", "C")
MODEL_LIFE_FACTOR = {"A": 1.0, "B": 0.75, "C": 1.25}
REGIME_PROBABILITIES = (0.5, 0.3, 0.2)
REGIME_BLOCK_HOURS = 6
RECALIBRATED_SENSORS = (0, 3)
MIN_SENSORS = 8
NEW_FAILURE_MODE = list(FAILURE_MODES).index("electrical")


@dataclass(frozen=True)
class DriftScenario:
    """A change in the fleet from `start_day` (0-based) on, for testing drift detection."""

    name: DriftName
    start_day: int
    machine_share: float = 0.3

    def __post_init__(self) -> None:
        if self.name not in DRIFT_NAMES:
            raise ValueError(f"unknown drift scenario {self.name!r}; expected one of {DRIFT_NAMES}")
        if self.start_day < 0:
            raise ValueError(f"drift start_day must be >= 0, got {self.start_day}")
        if not 0 < self.machine_share <= 1:
            raise ValueError(f"drift machine_share must be in (0, 1], got {self.machine_share}")


@dataclass(frozen=True)
class FleetConfig:
    n_machines: int = 50
    n_days: int = 120
    readings_per_day: int = 24
    n_sensors: int = 10
    seed: int = 42
    start_date: dt.date = PARTITION_START
    drift: DriftScenario | None = None
    fault_rate: float = 1.0  # multiplies every sensor-fault probability; 0 gives clean data

    def __post_init__(self) -> None:
        for name in ("n_machines", "n_days", "readings_per_day"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_sensors < MIN_SENSORS:
            raise ValueError(f"n_sensors must be >= {MIN_SENSORS} (the failure modes use 8), got {self.n_sensors}")
        if self.fault_rate < 0:
            raise ValueError(f"fault_rate must be >= 0, got {self.fault_rate}")


@dataclass
class SimulatedFleet:
    telemetry: pl.DataFrame
    events: pl.DataFrame
    machines: pl.DataFrame
    #: Latent degradation per telemetry row (before duplicates were added); for tests, never landed.
    degradation: np.ndarray = field(repr=False)
    source: str = "simulator"  # names its landing files


@dataclass
class _Life:
    onset: float
    life: float
    shape: float
    mode: int


@dataclass(frozen=True)
class _FleetConstants:
    """What the whole fleet shares, drawn first from the fleet's seed."""

    scale: np.ndarray
    baseline: dict[str, np.ndarray]
    regime_shift: np.ndarray
    regime_settings: np.ndarray
    mode_effect: np.ndarray
    model_types: np.ndarray
    drifted: np.ndarray


def _fleet_constants(rng: np.random.Generator, config: FleetConfig) -> _FleetConstants:
    n_sensors = config.n_sensors
    scale = rng.uniform(0.5, 5.0, n_sensors)
    baseline = {m: rng.uniform(50, 500, n_sensors) for m in MODEL_TYPES}
    n_regimes = 4  # the fourth only appears with the `new_regime` drift
    regime_shift = rng.uniform(-3, 3, (n_regimes, n_sensors)) * scale
    regime_settings = np.array([[20.0, 0.62, 100.0], [42.0, 0.84, 100.0], [10.0, 0.25, 60.0], [35.0, 0.70, 80.0]])
    mode_names = list(FAILURE_MODES)
    mode_effect = np.zeros((len(mode_names), n_sensors))
    for k, name in enumerate(mode_names):
        for sensor, direction in FAILURE_MODES[name].items():
            mode_effect[k, sensor] = direction * 6.0 * scale[sensor]
    model_types = rng.choice(MODEL_TYPES, config.n_machines)
    drift = config.drift
    drifted = rng.random(config.n_machines) < (drift.machine_share if drift else 0)
    return _FleetConstants(scale, baseline, regime_shift, regime_settings, mode_effect, model_types, drifted)


def simulate_fleet(config: FleetConfig) -> SimulatedFleet:
    """Simulate `config.n_machines` machines for `config.n_days` days."""
    rng = np.random.default_rng(config.seed)
    c = _fleet_constants(rng, config)
    scale, baseline, regime_shift, regime_settings, mode_effect = c.scale, c.baseline, c.regime_shift, c.regime_settings, c.mode_effect
    model_types, drifted, drift, n_sensors = c.model_types, c.drifted, config.drift, config.n_sensors
    machine_ids = [f"M{i + 1:04d}" for i in range(config.n_machines)]

    per_day = config.readings_per_day
    grid = np.arange(config.n_days * per_day) / per_day  # days since start_date
    frames, degradation_parts, events = [], [], []
    for m, machine_id in enumerate(machine_ids):
        keep, degradation, mode, machine_events, _ = _machine_history(rng, grid, config, model_types[m], drifted[m])
        events += [(machine_id, *event) for event in machine_events]
        t = grid[keep]
        n = len(t)
        regime = _regimes(rng, t, per_day, drift)
        values = baseline[model_types[m]] + regime_shift[regime] + degradation[:, None] * mode_effect[mode]
        values += rng.standard_normal((n, n_sensors), dtype=np.float32) * scale
        if drift and drift.name == "recalibration" and drifted[m]:
            after = t >= drift.start_day
            values[np.ix_(after, RECALIBRATED_SENSORS)] += 3.0 * scale[list(RECALIBRATED_SENSORS)]
        _add_sensor_faults(rng, values, scale, config.fault_rate)
        settings = regime_settings[regime] * rng.normal(1, 0.01, (n, 3))
        frames.append(_telemetry_frame(machine_id, t, np.flatnonzero(keep) + 1, settings, values, config.start_date))
        degradation_parts.append(degradation)

    telemetry = _duplicate_some_timestamps(rng, pl.concat(frames), scale, config.fault_rate)
    return SimulatedFleet(
        telemetry=telemetry,
        events=_events_frame(events, config.start_date),
        machines=pl.DataFrame(
            {
                "machine_id": machine_ids,
                "model_type": model_types.tolist(),
                "site": [f"site_{i % 3 + 1}" for i in range(config.n_machines)],
                "install_date": [config.start_date] * config.n_machines,
            }
        ),
        degradation=np.concatenate(degradation_parts),
    )


def _new_life(rng: np.random.Generator, model_type: str, starts_at: float, new_mode_from: float) -> _Life:
    onset = rng.uniform(5, 40)
    life = rng.uniform(15, 50) * MODEL_LIFE_FACTOR[model_type]
    mode = int(rng.integers(0, 2))
    if starts_at + onset >= new_mode_from and rng.random() < 0.7:
        mode, life = NEW_FAILURE_MODE, life * 0.7
    return _Life(onset=onset, life=life, shape=rng.uniform(1.5, 3.0), mode=mode)


def _taken_over(rng: np.random.Generator, model_type: str, life: _Life, age: float) -> _Life | None:
    """The new failure mode, as it appears, takes over a life not yet degrading: a fast one (electrical faults
    develop in days), so the fleet fails by it while the first champion, which never saw it, still serves."""
    if age >= life.onset:
        return None
    return _Life(onset=age + rng.uniform(0, 6), life=rng.uniform(5, 14) * MODEL_LIFE_FACTOR[model_type], shape=life.shape,
                 mode=NEW_FAILURE_MODE)


@dataclass(frozen=True)
class ServiceDone:
    """A planned service: when, the life it threw away (days the machine had left), and the share of its life used."""

    at: float
    wasted_days: float
    life_used: float


def _machine_history(
    rng: np.random.Generator, grid: np.ndarray, config: FleetConfig, model_type: str, drifted: bool,
    services: tuple[float, ...] = (), own_maintenance: bool = True, repair_rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[float, str, str | None]], list[ServiceDone]]:
    """Walk one machine's lives; return kept readings, their degradation and mode, the events, and the planned services done.

    On a machine the `new_failure_mode` drift touches, lives from its start on may fail by the new mode. A planned
    service (days in `services`, while the machine runs) renews its life as a repair does, without downtime, and
    lands as a `repair` event without a failure before it;
    `own_maintenance=False` drops the fleet's own preventive maintenance, so a policy alone decides services."""
    repair_rng = repair_rng or rng
    planned = sorted(services)
    done: list[ServiceDone] = []
    n_days, drift = config.n_days, config.drift
    new_mode_from = drift.start_day if drift and drift.name == "new_failure_mode" and drifted else np.inf
    keep = np.ones(len(grid), dtype=bool)
    age = np.zeros(len(grid))
    lives = np.zeros(len(grid), dtype=int)
    life = _new_life(rng, model_type, 0.0, new_mode_from)
    params = [life]
    start_age = rng.uniform(0, life.onset + 0.8 * life.life)
    cursor, interval = 0.0, rng.uniform(20, 45)
    next_maintenance = rng.uniform(0, interval) if own_maintenance else np.inf
    takeover_at = new_mode_from
    events: list[tuple[float, str, str | None]] = []
    while cursor < n_days:
        failure_at = cursor + life.onset + life.life - start_age
        while planned and planned[0] < cursor:  # a service while the machine was down for repair does not happen
            planned.pop(0)
        service_at = planned[0] if planned else np.inf
        end = min(failure_at, next_maintenance, takeover_at, service_at, n_days)
        lo, hi = np.searchsorted(grid, [cursor, end])
        age[lo:hi] = start_age + grid[lo:hi] - cursor
        lives[lo:hi] = len(params) - 1
        if end >= n_days:
            break
        if end == takeover_at:
            takeover_at = np.inf
            start_age, cursor = start_age + end - cursor, end
            if taken := _taken_over(rng, model_type, life, start_age):
                life = taken
                params.append(life)
            continue
        if end == service_at and service_at < failure_at:
            planned.pop(0)
            age_then = start_age + service_at - cursor
            done.append(ServiceDone(service_at, failure_at - service_at, age_then / (age_then + failure_at - service_at)))
            events.append((service_at, "repair", None))  # a renewal: the features start a new life, as after a failure's repair
            cursor, start_age = service_at, 0.0
            life = _new_life(rng, model_type, cursor, new_mode_from)
            params.append(life)
            continue
        if failure_at <= next_maintenance:
            repaired_at = failure_at + repair_rng.uniform(0.5, 2.0)
            events += [(failure_at, "failure", list(FAILURE_MODES)[life.mode]), (repaired_at, "repair", None)]
            down_hi = np.searchsorted(grid, repaired_at)
            keep[hi:down_hi] = False
            cursor, start_age = repaired_at, 0.0
            life = _new_life(rng, model_type, cursor, new_mode_from)
            params.append(life)
            next_maintenance = cursor + interval if own_maintenance else np.inf
        else:
            events.append((next_maintenance, "maintenance", None))
            start_age = (start_age + next_maintenance - cursor) * (1 - rng.uniform(0.3, 0.8))
            cursor = next_maintenance
            next_maintenance += interval
    events = [e for e in events if e[0] < n_days]
    onset, span, shape, mode = (np.array([getattr(p, a) for p in params])[lives] for a in ("onset", "life", "shape", "mode"))
    degradation = np.clip((age - onset) / span, 0, 1) ** shape
    return keep, degradation[keep], mode[keep], events, done


def _regimes(rng: np.random.Generator, t: np.ndarray, per_day: int, drift: DriftScenario | None) -> np.ndarray:
    """One operating regime per block of hours; the `new_regime` drift adds a fourth regime."""
    block = np.floor(t * 24 / REGIME_BLOCK_HOURS).astype(int)
    n_blocks = int(block.max()) + 1 if len(block) else 0
    regime_of_block = rng.choice(len(REGIME_PROBABILITIES), n_blocks, p=REGIME_PROBABILITIES)
    if drift and drift.name == "new_regime":
        block_day = np.arange(n_blocks) * REGIME_BLOCK_HOURS / 24
        switched = (block_day >= drift.start_day) & (rng.random(n_blocks) < 0.4)
        regime_of_block[switched] = 3
    return regime_of_block[block]


def _add_sensor_faults(rng: np.random.Generator, values: np.ndarray, scale: np.ndarray, rate: float) -> None:
    """Missing values, spikes and stuck runs, in place."""
    n, n_sensors = values.shape
    if rate == 0 or n == 0:
        return
    spikes = rng.random(values.shape) < 0.0005 * rate
    values[spikes] += (rng.choice([-1.0, 1.0], spikes.sum()) * rng.uniform(10, 20, spikes.sum())) * np.broadcast_to(scale, values.shape)[spikes]
    for _ in range(rng.poisson(rate * n / 2000)):
        sensor, start = int(rng.integers(n_sensors)), int(rng.integers(n))
        values[start : start + int(rng.integers(12, 48)), sensor] = values[start, sensor]
    values[rng.random(values.shape) < 0.002 * rate] = np.nan


def _duplicate_some_timestamps(rng: np.random.Generator, telemetry: pl.DataFrame, scale: np.ndarray, rate: float) -> pl.DataFrame:
    """Re-send ~0.1% of readings with the same timestamp and slightly different values, as flaky gateways do."""
    picked = np.flatnonzero(rng.random(telemetry.height) < 0.001 * rate)
    if len(picked) == 0:
        return telemetry
    dupes = telemetry[picked]
    sensors = [c for c in telemetry.columns if c.startswith("sensor_")]
    jitter = rng.normal(0, 0.1, (len(picked), len(sensors))) * scale
    dupes = dupes.with_columns([(pl.col(c) + pl.Series(jitter[:, i])).alias(c) for i, c in enumerate(sensors)])
    return pl.concat([telemetry, dupes])


def _telemetry_frame(
    machine_id: str, t: np.ndarray, cycle: np.ndarray, settings: np.ndarray, values: np.ndarray, start: dt.date
) -> pl.DataFrame:
    origin = np.datetime64(start, "us")
    columns: dict[str, object] = {
        "machine_id": pl.Series([machine_id] * len(t), dtype=pl.String),
        "ts": origin + np.round(t * 86_400e6).astype("timedelta64[us]"),
        "cycle": cycle.astype(np.int64),
    }
    columns |= {f"op_setting_{i + 1}": settings[:, i] for i in range(3)}
    columns |= {sensor_name(i + 1): values[:, i] for i in range(values.shape[1])}
    return pl.DataFrame(columns)


def _events_frame(events: list[tuple], start: dt.date) -> pl.DataFrame:
    origin = np.datetime64(start, "us")
    return pl.DataFrame(
        {
            "machine_id": [e[0] for e in events],
            "ts": origin + np.round(np.array([e[1] for e in events], dtype=float) * 86_400e6).astype("timedelta64[us]"),
            "event_type": [e[2] for e in events],
            "failure_mode": [e[3] for e in events],
        },
        schema={"machine_id": pl.String, "ts": pl.Datetime("us"), "event_type": pl.String, "failure_mode": pl.String},
    ).sort("ts", "machine_id")
