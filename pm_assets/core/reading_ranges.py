"""What a model has seen: each sensor's and setting's range in its training readings, and when a reading lies outside.

A reading beyond `MAX_ABS_READING` is impossible anywhere in the platform (ingestion quarantines it, the service
refuses it). Within that, a reading far outside what the model was trained on gets no score: the trees would
answer as if it sat at the edge of their experience, as confidently as for normal data. "Far" is beyond the
training range widened on each side by the largest magnitude the column showed in training: a recalibrated
sensor or a new operating condition stays inside, -1e6 on a sensor that read 300-400 does not.

>>> ranges = fit_ranges({"sensor_05": np.array([300.0, 420.0, np.nan])})
>>> outside(ranges, ["sensor_05"], np.array([[310.0], [-1e6]]))
'sensor_05 at -1e+06 is outside what the model was trained on (300 to 420; accepted -120 to 840)'
>>> outside(ranges, ["sensor_05"], np.array([[310.0], [700.0]])) is None
True
"""

import numpy as np

Ranges = dict[str, tuple[float, float]]


def fit_ranges(columns: dict[str, np.ndarray]) -> Ranges:
    """The training min and max of each column that has values."""
    return {name: (float(np.nanmin(v)), float(np.nanmax(v))) for name, v in columns.items() if np.isfinite(v).any()}


def accepted(low: float, high: float) -> tuple[float, float]:
    margin = max(abs(low), abs(high))
    return low - margin, high + margin


def bounds(ranges: Ranges | None, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The accepted low and high of each of `names` (unbounded without a range); cached, as a service asks per request."""
    key = (id(ranges), tuple(names))
    cached = _BOUNDS.get(key)
    if cached is None or cached[0] is not ranges:  # (the ranges are held, so their id is not reused while cached)
        known = ranges or {}
        low, high = np.array([accepted(*known[n]) if n in known else (-np.inf, np.inf) for n in names]).reshape(-1, 2).T
        cached = _BOUNDS[key] = (ranges, low, high)
    return cached[1], cached[2]


_BOUNDS: dict[tuple[int, tuple[str, ...]], tuple[Ranges | None, np.ndarray, np.ndarray]] = {}


def outside(ranges: Ranges | None, names: list[str], values: np.ndarray) -> str | None:
    """Why `values` (rows x `names`) lie outside the model's experience, or None (also without ranges: an older model)."""
    if ranges is None or not names:
        return None
    low, high = bounds(ranges, names)
    bad = (values < low) | (values > high)
    if not bad.any():
        return None
    j = int(np.argmax(bad.any(axis=0)))  # the first column in `names` order, at its first row outside
    name, value = names[j], values[np.argmax(bad[:, j]), j]
    return (f"{name} at {value:g} is outside what the model was trained on ({ranges[name][0]:g} to {ranges[name][1]:g}; "
            f"accepted {low[j]:g} to {high[j]:g})")
