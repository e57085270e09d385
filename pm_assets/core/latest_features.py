"""Machines' latest feature rows in numpy: the HTTP service's hot path.

It computes exactly what `features.build_features` computes for each machine's last reading (a test
holds the two equal), without a data frame: machines whose current life has the same number of
readings are stacked and computed together, so a batch of 1,000 machines costs a few array passes.
"""

import functools
from dataclasses import dataclass

import numpy as np

from pm_assets.core.features import DEVIATION_FEATURES, FeatureConfig, FeatureSpec


@dataclass
class MachineHistory:
    """One machine's recent readings, oldest first; NaN for a missing value."""

    ts: np.ndarray  # datetime64[us]
    settings: np.ndarray  # n x len(spec.settings)
    sensors: np.ndarray  # n x len(spec.sensors)
    repairs: np.ndarray | None = None  # datetime64[us] of repairs (a repair starts a new life)
    services: np.ndarray | None = None  # datetime64[us] of repairs and maintenance


def _forward_fill(values: np.ndarray) -> np.ndarray:
    """Fill NaN with the last earlier value along axis -2 (time), then 0 where there is none."""
    if not np.isnan(values).any():
        return values
    steps = np.arange(values.shape[-2]).reshape((-1, 1))
    index = np.maximum.accumulate(np.where(np.isnan(values), 0, steps), axis=-2)
    filled = np.take_along_axis(values, index, axis=-2)
    return np.where(np.isnan(filled), 0.0, filled)


def _last_before(times: np.ndarray | None, last: np.datetime64) -> np.datetime64 | None:
    if times is None or len(times) == 0:
        return None
    done = times[times <= last]
    return done.max() if done.size else None


@functools.lru_cache(maxsize=256)  # bounded: a long-running service sees lives of up to `max_readings` lengths
def _linear(cfg: FeatureConfig, m: int) -> tuple[list[str], np.ndarray]:
    """The statistics of a life of `m` readings that are weighted sums over time (now, from the baseline, window
    means and slopes, EWMs): their names and one (statistics x m) matrix, so one product computes them all."""
    rows: dict[str, np.ndarray] = {"now": np.zeros(m), "from_baseline": np.zeros(m)}
    rows["now"][-1] = rows["from_baseline"][-1] = 1.0
    b = min(m, cfg.baseline_readings)
    rows["from_baseline"][:b] -= 1 / b
    for name, n in _lengths(cfg, m).items():
        rows[f"mean_{name}"], rows[f"slope_{name}"] = np.zeros(m), np.zeros(m)
        rows[f"mean_{name}"][-n:] = 1 / n
        i = np.arange(m - n, m, dtype=float)
        denominator = n * (i * i).sum() - i.sum() ** 2
        if denominator > 0:  # least-squares slope: (n·Σ i·z − Σ i·Σ z) / denominator
            rows[f"slope_{name}"][-n:] = (n * i - i.sum()) / denominator
    for span in cfg.ewm_spans:
        alpha = 2 / (span + 1)
        weights = (1 - alpha) ** np.arange(m - 1, -1, -1)
        weights[1:] *= alpha  # the first value carries the weight left over (adjust=False)
        rows[f"ewm_{span}"] = weights
    return list(rows), np.array(list(rows.values()))


def _lengths(cfg: FeatureConfig, m: int) -> dict[str, int]:
    return {str(w): min(m, w) for w in cfg.windows} | ({"life": m} if cfg.life else {})


def _blocks(spec: FeatureSpec, settings: np.ndarray, sensors: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Regime of the last reading and the per-sensor feature blocks, for lives stacked as (B, m, ·)."""
    cfg = spec.config
    missing = np.isnan(settings)
    if spec.settings:
        scaled = (np.where(missing, 0.0, settings) - spec.settings_mean) / spec.settings_std
    else:
        scaled = np.zeros(settings.shape[:2] + (1,))
    regimes = ((scaled[..., None, :] - spec.regime_centers) ** 2).sum(axis=-1).argmin(axis=-1)  # (B, m)
    # a reading with a missing setting keeps the previous reading's regime (the first regime when there is none)
    if spec.settings and missing.any():
        regimes = _forward_fill(np.where(missing.any(axis=-1), np.nan, regimes)[..., None])[..., 0].astype(int)
    z = _forward_fill(spec.normalized(sensors, regimes))
    m = z.shape[1]
    names, weights = _linear(cfg, m)
    linear = np.einsum("km,bms->kbs", weights, z)
    blocks = dict(zip(names, linear))
    for name, n in _lengths(cfg, m).items():  # standard deviations: two passes, as the training features
        if n >= 2:
            deviation = z[:, -n:] - blocks[f"mean_{name}"][:, None]
            deviation *= deviation
            blocks[f"std_{name}"] = np.sqrt(deviation.sum(axis=1) / (n - 1))
        else:
            blocks[f"std_{name}"] = np.zeros(z.shape[::2])
    extremes = "life" if cfg.life else str(max(cfg.windows))
    tail = z[:, -_lengths(cfg, m)[extremes]:]
    blocks[f"min_{extremes}"], blocks[f"max_{extremes}"] = tail.min(axis=1), tail.max(axis=1)
    return regimes[:, -1], blocks


def latest_features(spec: FeatureSpec, machines: list[MachineHistory]) -> np.ndarray:
    """One feature row per machine (its last reading), columns in `spec.feature_names` order."""
    n = len(machines)
    last = np.array([m.ts[-1] for m in machines], dtype="datetime64[us]")
    serviced = np.array([m.ts[0] for m in machines], dtype="datetime64[us]")  # without a service: since the first reading
    lengths, starts = np.array([len(m.ts) for m in machines]), np.zeros(n, dtype=int)
    for k in (k for k, m in enumerate(machines) if m.repairs is not None or m.services is not None):
        machine = machines[k]
        if (repaired := _last_before(machine.repairs, last[k])) is not None:
            starts[k] = np.searchsorted(machine.ts, repaired, side="left")
        if (service := _last_before(machine.services, last[k])) is not None:
            serviced[k] = service
    scalars = np.zeros((n, 3))
    scalars[:, 0] = (last - serviced) / np.timedelta64(1, "h")
    scalars[:, 2] = lengths - starts - 1
    lives = [slice(start, length) for start, length in zip(starts.tolist(), lengths.tolist())]
    out = np.zeros((n, len(spec.feature_names)))
    by_length: dict[int, list[int]] = {}
    for k, life in enumerate(lives):
        by_length.setdefault(life.stop - life.start, []).append(k)
    for members in by_length.values():
        if len(members) == 1:  # a request of one machine: its arrays as they are
            settings, sensors = (machines[members[0]].settings[lives[members[0]]][None].astype(float, copy=False),
                                 machines[members[0]].sensors[lives[members[0]]][None].astype(float, copy=False))
        else:
            settings = np.stack([machines[k].settings[lives[k]] for k in members], dtype=float)
            sensors = np.stack([machines[k].sensors[lives[k]] for k in members], dtype=float)
        regimes, blocks = _blocks(spec, settings, sensors)
        scalars[members, 1] = regimes
        extra = []
        if spec.config.deviations:  # as `features.DEVIATION_FEATURES`
            moved = blocks[f"mean_{min(spec.config.windows)}"] - blocks["now"] + blocks["from_baseline"]
            extra = [np.abs(moved).max(axis=1, keepdims=True), np.sqrt((moved * moved).mean(axis=1, keepdims=True))]
        flat = np.concatenate([scalars[members], *blocks.values(), *extra], axis=1)
        if len(by_length) == 1:
            return flat[:, _layout(spec, tuple(blocks))]
        out[members] = flat[:, _layout(spec, tuple(blocks))]
    return out


#: id(spec) -> (spec, its blocks' kinds, layout): the spec is held, so its id cannot be reused by another while cached
_LAYOUTS: dict[int, tuple[FeatureSpec, tuple[str, ...], np.ndarray]] = {}


def _layout(spec: FeatureSpec, kinds: tuple[str, ...]) -> np.ndarray:
    """Where each of `spec.feature_names` sits among the scalars and per-sensor blocks (cached)."""
    cached = _LAYOUTS.get(id(spec))
    if cached is None or cached[1] != kinds:
        names = ["hours_since_service", "regime", "age_readings"]
        names += [f"{sensor}__{kind}" for kind in kinds for sensor in spec.sensors]
        names += DEVIATION_FEATURES if spec.config.deviations else []
        position = {name: i for i, name in enumerate(names)}
        cached = _LAYOUTS[id(spec)] = (spec, kinds, np.array([position[n] for n in spec.feature_names]))
    return cached[2]
