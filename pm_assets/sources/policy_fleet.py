"""The simulated fleet when a maintenance policy acts on it: a planned service renews a machine's life.

Every machine draws from streams of its own (its lives; its repairs; its signals), so the same seed
gives every policy the same machines and the same sequence of lives: a service ends the current life
early and the next life of the stream begins, whatever the other machines did. The fleet's own
preventive maintenance is off: the policy alone decides services. Readings are generated on the whole
time grid and then thinned by downtime, so noise and regimes stay aligned whatever happened earlier.
"""

import functools
from dataclasses import dataclass

import numpy as np
import polars as pl

from pm_assets.core.constants import FAILURE, REPAIR, SERVICE_EVENTS
from pm_assets.core.latest_features import MachineHistory
from pm_assets.sources.simulator import (
    FleetConfig,
    ServiceDone,
    _add_sensor_faults,
    _events_frame,
    _fleet_constants,
    _FleetConstants,
    _machine_history,
    _regimes,
    _telemetry_frame,
)

LIVES, REPAIRS, SIGNALS = 0, 1, 2


@dataclass(frozen=True)
class MachineRun:
    """One machine's readings and events under the services given."""

    machine_id: str
    t: np.ndarray  # days since the start, of each kept reading
    settings: np.ndarray
    sensors: np.ndarray
    events: list[tuple[float, str, str | None]]  # (day, event_type, failure_mode)
    services: list[ServiceDone]

    def failures(self, since: float = -np.inf, until: float = np.inf) -> list[float]:
        return [at for at, kind, _ in self.events if kind == FAILURE and since <= at < until]

    def down_at(self, day: float) -> bool:
        """Failed and not yet repaired at `day`."""
        last = [kind for at, kind, _ in self.events if at <= day and kind in (FAILURE, REPAIR)]
        return bool(last) and last[-1] == FAILURE

    def last_renewal(self, day: float) -> float | None:
        done = [at for at, kind, _ in self.events if at <= day and kind in SERVICE_EVENTS]
        return max(done) if done else None

    def history(self, day: float, start: np.datetime64) -> MachineHistory | None:
        """Readings and events before `day`, as the scoring hot path takes them (None without readings)."""
        n = int(np.searchsorted(self.t, day))
        if n == 0:
            return None
        stamp = lambda days: start + np.round(np.asarray(days) * 86_400e6).astype("timedelta64[us]")  # noqa: E731
        repairs = [at for at, kind, _ in self.events if kind == REPAIR and at < day]
        services = [at for at, kind, _ in self.events if kind in SERVICE_EVENTS and at < day]
        return MachineHistory(ts=stamp(self.t[:n]), settings=self.settings[:n], sensors=self.sensors[:n],
                              repairs=stamp(repairs) if repairs else None, services=stamp(services) if services else None)


@functools.cache
def _constants(config: FleetConfig) -> _FleetConstants:
    return _fleet_constants(np.random.default_rng(config.seed), config)


def simulate_machine(config: FleetConfig, index: int, services: tuple[float, ...] = ()) -> MachineRun:
    """Machine `index` of the fleet over all its days, serviced at the given days."""
    c = _constants(config)
    stream = lambda purpose: np.random.default_rng([config.seed, index, purpose])  # noqa: E731
    per_day = config.readings_per_day
    grid = np.arange(config.n_days * per_day) / per_day
    model_type = str(c.model_types[index])
    keep, degradation, mode, events, done = _machine_history(stream(LIVES), grid, config, model_type, bool(c.drifted[index]),
                                                             services=services, own_maintenance=False, repair_rng=stream(REPAIRS))
    signals = stream(SIGNALS)
    regime = _regimes(signals, grid, per_day, config.drift)
    noise = signals.standard_normal((len(grid), config.n_sensors)) * c.scale
    settings = c.regime_settings[regime] * signals.normal(1, 0.01, (len(grid), 3))
    wear = np.zeros(len(grid))
    wear[keep] = degradation
    modes = np.zeros(len(grid), dtype=int)
    modes[keep] = mode
    values = c.baseline[model_type] + c.regime_shift[regime] + noise + wear[:, None] * c.mode_effect[modes]
    _add_sensor_faults(signals, values, c.scale, config.fault_rate)
    values, settings = values[keep], settings[keep]
    return MachineRun(f"M{index + 1:04d}", grid[keep], settings, values, events, done)


def as_frames(config: FleetConfig, runs: list[MachineRun], until: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Telemetry and events of `runs` before day `until`, as the loaders land them (for training on a history)."""
    frames = []
    for run in runs:
        n = int(np.searchsorted(run.t, until))
        frames.append(_telemetry_frame(run.machine_id, run.t[:n], np.arange(1, n + 1), run.settings[:n], run.sensors[:n], config.start_date))
    events = _events_frame([(run.machine_id, *e) for run in runs for e in run.events if e[0] < until], config.start_date)
    return pl.concat(frames), events
