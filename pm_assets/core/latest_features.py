"""Machines' latest feature rows in numpy: the HTTP service's hot path.

It computes exactly what `features.build_features` computes for each machine's last reading (a test
holds the two equal), without a data frame: machines whose current life has the same number of
readings are stacked and computed together, so a batch of 1,000 machines costs a few array passes.
"""

from dataclasses import dataclass

import numpy as np

from pm_assets.core.features import FeatureSpec


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


def _blocks(spec: FeatureSpec, settings: np.ndarray, sensors: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Regime of the last reading and the per-sensor feature blocks, for lives stacked as (B, m, ·)."""
    cfg = spec.config
    if spec.settings:
        scaled = (np.nan_to_num(settings) - spec.settings_mean) / spec.settings_std
    else:
        scaled = np.zeros(settings.shape[:2] + (1,))
    regimes = ((scaled[..., None, :] - spec.regime_centers) ** 2).sum(axis=-1).argmin(axis=-1)  # (B, m)
    # a reading with a missing setting keeps the previous reading's regime (the first regime when there is none)
    unknown = np.isnan(settings).any(axis=-1) if spec.settings else np.zeros(regimes.shape, bool)
    regimes = _forward_fill(np.where(unknown, np.nan, regimes)[..., None])[..., 0].astype(int)
    z = _forward_fill((sensors - spec.regime_mean[regimes]) / spec.regime_std[regimes])
    m = z.shape[1]
    b = min(m, cfg.baseline_readings)
    blocks = {"now": z[:, -1], "from_baseline": z[:, -1] - z[:, :b].sum(axis=1) / b}
    age = np.arange(m, dtype=float)
    lengths = {str(w): min(m, w) for w in cfg.windows} | ({"life": m} if cfg.life else {})
    for name, n in lengths.items():
        tail, i = z[:, -n:], age[-n:]
        blocks[f"mean_{name}"] = tail.sum(axis=1) / n
        blocks[f"std_{name}"] = tail.std(axis=1, ddof=1) if n >= 2 else np.zeros(z.shape[::2])
        denominator = n * (i * i).sum() - i.sum() ** 2
        slope = (n * np.einsum("i,bis->bs", i, tail) - i.sum() * tail.sum(axis=1)) / denominator if denominator > 0 else np.zeros(z.shape[::2])
        blocks[f"slope_{name}"] = slope
    extremes = "life" if cfg.life else str(max(cfg.windows))
    blocks[f"min_{extremes}"], blocks[f"max_{extremes}"] = z[:, -lengths[extremes]:].min(axis=1), z[:, -lengths[extremes]:].max(axis=1)
    for span in cfg.ewm_spans:
        alpha = 2 / (span + 1)
        weights = (1 - alpha) ** np.arange(m - 1, -1, -1)
        weights[1:] *= alpha  # the first value carries the weight left over (adjust=False)
        blocks[f"ewm_{span}"] = np.einsum("i,bis->bs", weights, z)
    return regimes[:, -1], blocks


def latest_features(spec: FeatureSpec, machines: list[MachineHistory]) -> np.ndarray:
    """One feature row per machine (its last reading), columns in `spec.feature_names` order."""
    lives, scalars = [], np.zeros((len(machines), 3))
    for k, machine in enumerate(machines):
        last = machine.ts[-1]
        repaired = _last_before(machine.repairs, last)
        start = 0 if repaired is None else int(np.searchsorted(machine.ts, repaired, side="left"))
        serviced = _last_before(machine.services, last)
        serviced = machine.ts[0] if serviced is None else serviced
        lives.append(slice(start, len(machine.ts)))
        scalars[k, 0] = (last - serviced) / np.timedelta64(1, "h")
        scalars[k, 2] = len(machine.ts) - start - 1
    out = np.zeros((len(machines), len(spec.feature_names)))
    by_length: dict[int, list[int]] = {}
    for k, life in enumerate(lives):
        by_length.setdefault(life.stop - life.start, []).append(k)
    for members in by_length.values():
        settings = np.stack([machines[k].settings[lives[k]] for k in members]).astype(float)
        sensors = np.stack([machines[k].sensors[lives[k]] for k in members]).astype(float)
        regimes, blocks = _blocks(spec, settings, sensors)
        scalars[members, 1] = regimes
        flat = np.concatenate([scalars[members], *blocks.values()], axis=1)
        out[members] = flat[:, _layout(spec, list(blocks))]
    return out


_LAYOUTS: dict[tuple, np.ndarray] = {}


def _layout(spec: FeatureSpec, kinds: list[str]) -> np.ndarray:
    """Where each of `spec.feature_names` sits among the scalars and per-sensor blocks (cached)."""
    key = (tuple(spec.feature_names), tuple(kinds))
    if key not in _LAYOUTS:
        names = ["hours_since_service", "regime", "age_readings"]
        names += [f"{sensor}__{kind}" for kind in kinds for sensor in spec.sensors]
        position = {name: i for i, name in enumerate(names)}
        _LAYOUTS[key] = np.array([position[n] for n in spec.feature_names])
    return _LAYOUTS[key]
