"""Point-in-time-correct sensor features, shared by training, fleet scoring and the HTTP service.

A row's features use only readings of the same machine at or before its timestamp, and only since
the machine's last repair (a repaired machine starts a new life). Sensors are first normalised per
operating regime (regimes are clusters of the operating settings, learned once in `fit_feature_spec`),
so a fleet that switches regimes does not look like a fleet that degrades.
"""

import datetime as dt
import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from sklearn.cluster import KMeans

from pm_assets.core.constants import REPAIR, SENSOR_PREFIX, SERVICE_EVENTS, SETTING_COLUMNS
from pm_assets.core.feature_state import empty_state, life_moments, prepend_carry, states_after
from pm_assets.core.reading_ranges import Ranges, fit_ranges


#: Distances of the sensors from the life's baseline, whichever moved (the mean of the shortest window's readings, in
#: regime standard deviations): the largest and the root mean square. A failure mode the models have not seen moves
#: sensors they learned nothing from; these still show the machine leaving its healthy state.
DEVIATION_FEATURES = ("deviation_max", "deviation_rms")


@dataclass(frozen=True)
class FeatureConfig:
    windows: tuple[int, ...] = (10, 30)  # rolling windows, in readings
    ewm_spans: tuple[int, ...] = (10,)
    life: bool = True  # mean, std, slope, min and max of each sensor since the life began (else min and max of the longest window)
    baseline_readings: int = 20  # a life's first readings define its own baseline
    max_regimes: int = 8
    regime_inertia_ratio: float = 0.02  # fewest clusters explaining 98% of the settings' spread
    deviations: bool = True  # DEVIATION_FEATURES: how far the sensors moved from the life's baseline, whichever sensors

    def __post_init__(self) -> None:
        if not self.windows or min(self.windows) < 2:
            raise ValueError(f"windows must be readings counts >= 2, got {self.windows}")


@dataclass
class FeatureSpec:
    """What features learn from training data: kept sensors and per-regime statistics."""

    config: FeatureConfig
    sensors: list[str]
    settings: list[str]
    settings_mean: np.ndarray
    settings_std: np.ndarray
    regime_centers: np.ndarray
    regime_mean: np.ndarray
    regime_std: np.ndarray
    feature_names: list[str] = field(default_factory=list)
    input_sensors: list[str] = field(default_factory=list)  # every sensor of the data, kept or not
    model_types: list[str] = field(default_factory=list)  # machine types seen in training
    #: Each sensor's and setting's training range (`core.reading_ranges`); None in a model saved before they were kept.
    reading_ranges: Ranges | None = None
    #: Per regime, the affine map (`sensors + 1` rows: the matrix, then the offset) that carries its normalised readings
    #: over to the reference regime (`fit_regime_map`); None when the models knew every regime (or saved before it was kept).
    regime_map: np.ndarray | None = None
    #: Per regime, how far (in the settings' spread units) from its centre a reading may lie and still run in it
    #: (`regime_radii`, `outside_regimes`); None in a spec saved before it was kept.
    regime_radius: np.ndarray | None = None
    #: Per regime, the sampled readings it was fitted on (`thinly_learned_regimes`); None in a spec saved before it was kept.
    regime_readings: np.ndarray | None = None

    @property
    def carried_over(self) -> list[int]:
        """The regimes the map carries over to the reference regime (none without a map)."""
        if self.regime_map is None:
            return []
        identity = _identity_map(self.regime_map.shape[2])
        return [r for r, affine in enumerate(self.regime_map) if not np.array_equal(affine, identity)]

    @property
    def min_readings(self) -> int:
        """Readings a machine needs before all of its rolling windows are full."""
        return max(self.config.windows)

    def normalized(self, values: np.ndarray, regime: np.ndarray) -> np.ndarray:
        """Sensor readings (`sensors` in columns; any leading shape) in standard deviations from their regime's mean,
        carried over to the reference regime (`fit_regime_map`). A missing reading stays missing and moves no other."""
        z = (values - self.regime_mean[regime]) / self.regime_std[regime]
        if self.regime_map is None:
            return z
        flat, regimes = z.reshape(-1, z.shape[-1]), np.broadcast_to(regime, z.shape[:-1]).reshape(-1)
        out = flat.copy()
        known = np.nan_to_num(flat, nan=0.0, posinf=0.0, neginf=0.0)
        for r, affine in enumerate(self.regime_map):
            rows = regimes == r
            if rows.any():
                out[rows] = known[rows] @ affine[:-1] + affine[-1]
        out[~np.isfinite(flat)] = np.nan
        return out.reshape(z.shape)


def _setting_matrix(readings: pl.DataFrame, settings: list[str], mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    if not settings:
        return np.zeros((readings.height, 1))
    values = readings.select(pl.col(settings).fill_null(strategy="forward").fill_null(0.0)).to_numpy()
    return (values - mean) / std


def fit_feature_spec(readings: pl.DataFrame, config: FeatureConfig = FeatureConfig(), seed: int = 0,
                     previous: FeatureSpec | None = None) -> FeatureSpec:
    """Learn kept sensors, operating regimes and per-regime sensor statistics from training readings.

    `previous`: the spec the models were trained with, when this one is refitted because the fleet moved into
    operating regimes it did not know; the new regimes' readings are then carried over to the known ones
    (`fit_regime_map`)."""
    sensors_all = [c for c in readings.columns if c.startswith(SENSOR_PREFIX)]
    if not sensors_all:
        raise ValueError("readings have no sensor_* columns")
    stats = readings.select(pl.col(sensors_all).cast(pl.Float64).fill_nan(None).std())
    std = {c: (stats[c][0] or 0.0) for c in sensors_all}
    # a sensor that does not move, or flips between two rounded values, carries no information
    distinct = readings.select(pl.col(sensors_all).cast(pl.Float64).fill_nan(None).drop_nulls().n_unique())
    sensors = [c for c in sensors_all if std[c] > 0 and distinct[c][0] > 2]
    if not sensors:
        raise ValueError("every sensor is constant in the training readings: nothing to learn from")
    settings, mean_s, std_s, centers = operating_regimes(readings, config, seed)
    model_types = sorted(readings["model_type"].drop_nulls().unique().to_list()) if "model_type" in readings.columns else []
    present = sensors_all + [c for c in SETTING_COLUMNS if c in readings.columns]
    ranges = fit_ranges({c: readings[c].cast(pl.Float64).fill_nan(None).drop_nulls().to_numpy() for c in present})
    spec = FeatureSpec(config, sensors, settings, mean_s, std_s, centers, np.zeros(0), np.zeros(0),
                       feature_names(sensors, config), sensors_all, model_types, ranges)
    distances = _regime_distances(readings, spec)
    fitted = distances.argmin(axis=1)  # as `assign_regimes`, on the distances the radii need too
    spec.regime_radius = regime_radii(distances, fitted, centers)
    spec.regime_readings = np.bincount(fitted, minlength=len(centers))
    early = _early_in_regime(readings.select("machine_id", "ts", *sensors), fitted, REGIME_BASELINE_READINGS)
    regimes = early["_regime"].to_numpy()
    values = early.select(pl.col(sensors).fill_nan(None)).to_numpy()
    spec.regime_mean = np.vstack([np.nanmean(values[regimes == r], axis=0) if (regimes == r).any() else np.nanmean(values, axis=0) for r in range(len(centers))])
    spec.regime_std = np.vstack([np.nanstd(values[regimes == r], axis=0) if (regimes == r).any() else np.nanstd(values, axis=0) for r in range(len(centers))])
    # a sensor that did not move in a regime's early readings has no scale there: its float noise (1e-13) is not one
    spec.regime_std[~(spec.regime_std > 1e-9 * (1.0 + np.abs(spec.regime_mean)))] = 1.0
    known = known_regimes(spec, previous) if previous is not None else np.ones(len(centers), dtype=bool)
    if not known.all():
        ordered = readings.select("machine_id", "ts", *sensors).with_columns(pl.Series("_regime", fitted)).sort("machine_id", "ts")
        regimes = ordered["_regime"].to_numpy()
        z = spec.normalized(ordered.select(pl.col(sensors).cast(pl.Float64).fill_nan(None)).to_numpy(), regimes)
        spec.regime_map = fit_regime_map(z, regimes, ordered["machine_id"].to_numpy(), known)
    return spec


def _raw_centres(spec: FeatureSpec, settings: list[str]) -> np.ndarray:
    """Each regime's centre in the settings' own units (NaN where `spec` knows nothing of a setting); a setting
    constant in `spec`'s readings sits at its training value."""
    columns = []
    for name in settings:
        if name in spec.settings:
            k = spec.settings.index(name)
            columns.append(spec.regime_centers[:, k] * spec.settings_std[k] + spec.settings_mean[k])
        else:
            low, high = (spec.reading_ranges or {}).get(name, (np.nan, np.nan))
            columns.append(np.full(len(spec.regime_centers), (low + high) / 2))
    return np.column_stack(columns) if columns else np.zeros((len(spec.regime_centers), 0))


def known_regimes(spec: FeatureSpec, previous: FeatureSpec) -> np.ndarray:
    """Which of `spec`'s regimes `previous` knew: the nearest to each of its regimes' centres, those it carried over
    to another regime apart (they are carried over again, on what the fleet has run there since), and those it learned
    from fewer than `REGIME_WELL_LEARNED` readings apart, unless that is all of them. A new flight condition refitted
    on its first day holds too few readings for a map (`REGIME_MAP_MIN_PAIRS_PER_SENSOR`); counted as known when it is
    learned again, it would never get one, and the models trained on the old conditions would read its worn machines
    as healthy until its own failures had been seen."""
    if not spec.settings:
        return np.ones(len(spec.regime_centers), dtype=bool)
    new, old = _raw_centres(spec, spec.settings), _raw_centres(previous, spec.settings)
    unlearned = set(previous.carried_over)
    if previous.regime_readings is not None:
        thin = set(np.flatnonzero(previous.regime_readings < REGIME_WELL_LEARNED).tolist())
        if len(unlearned | thin) < len(old):  # some regime stays known: the map needs a reference
            unlearned |= thin
    old = np.delete(old, sorted(unlearned), axis=0)
    usable = np.isfinite(old).all(axis=0)
    distance = ((((new[None, :, :] - old[:, None, :]) / spec.settings_std)[..., usable]) ** 2).sum(axis=-1)
    known = np.zeros(len(spec.regime_centers), dtype=bool)
    known[distance.argmin(axis=1)] = True
    return known


#: Readings either side of a reading that count as taken in the same health (the regime map's pairs).
REGIME_MAP_NEIGHBOURS = 3
#: Pairs a regime needs, per sensor, before its map is fitted (else its readings are kept as they are).
REGIME_MAP_MIN_PAIRS_PER_SENSOR = 20
REGIME_MAP_RIDGE = 1.0


def fit_regime_map(z: np.ndarray, regimes: np.ndarray, machines: np.ndarray, known: np.ndarray) -> np.ndarray | None:
    """Per regime, the affine map that carries the normalised readings of a regime the models did not know (`known`
    False) over to the reference regime (the known one most readings ran in), learned without labels from machines
    that switch regimes; a known regime maps onto itself. None when every regime is known.

    A sensor need not respond to wear alike in every regime (in C-MAPSS's flight conditions some move a third as
    much, in standard deviations), so a model trained in some regimes misreads a machine's wear in a new one. A reading
    taken in regime r and a neighbouring one of the same machine in the reference regime share the machine's health:
    the ridge fit of the second on the first (`M_r`) is what the health seen in r reads like in the reference regime.
    The part of a reading no neighbour predicts (noise, and any sensor the fitted readings never saw move, say a new
    failure mode) is kept as it is: the map is `z + M_r(z) - D_r(z)`, `D_r` the same fit on neighbours in r itself.
    Both fits shrink where the readings tell the health only roughly, so the map carries over what is sure of it
    (all of the difference where the sensors together tell the wear exactly, half of it where they tell half).
    Mapping the regimes the models did know as well costs them: FD002's own CV error rose from 8.81 to 9.06 with every
    regime mapped onto its commonest (`docs/pipeline.md`).
    `z`: normalised readings sorted by machine and time; `regimes`, `machines`: theirs."""
    n_regimes, n_sensors = len(known), z.shape[1]
    if known.all():
        return None
    counts = np.bincount(regimes, minlength=n_regimes)
    reference = np.flatnonzero(known)[counts[known].argmax()]
    identity = _identity_map(n_sensors)
    finite = np.isfinite(z).all(axis=1)
    here, there = [], []
    for offset in (*range(-REGIME_MAP_NEIGHBOURS, 0), *range(1, REGIME_MAP_NEIGHBOURS + 1)):
        i = np.arange(max(0, -offset), len(z) - max(0, offset))
        j = i + offset
        same = (machines[i] == machines[j]) & finite[i] & finite[j]
        here.append(i[same])
        there.append(j[same])
    here, there = np.concatenate(here), np.concatenate(there)
    maps = np.repeat(identity[None], n_regimes, axis=0)
    for r in range(n_regimes):
        to_reference = (regimes[here] == r) & (regimes[there] == reference)
        within = (regimes[here] == r) & (regimes[there] == r)
        if known[r] or min(to_reference.sum(), within.sum()) < REGIME_MAP_MIN_PAIRS_PER_SENSOR * n_sensors:
            continue
        across = _ridge(z[here[to_reference]], z[there[to_reference]])
        itself = _ridge(z[here[within]], z[there[within]])
        maps[r] = identity + across - itself
    return maps


def _identity_map(n_sensors: int) -> np.ndarray:
    """The affine map (`fit_regime_map`'s layout) that leaves a regime's readings as they are."""
    return np.vstack([np.eye(n_sensors), np.zeros((1, n_sensors))])


def _ridge(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The ridge fit of `y` on `x` as an affine map (`x.shape[1] + 1` rows: the matrix, then the offset)."""
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc = x - x_mean
    matrix = np.linalg.solve(xc.T @ xc + REGIME_MAP_RIDGE * np.eye(x.shape[1]), xc.T @ (y - y_mean))
    return np.vstack([matrix, y_mean - x_mean @ matrix])


#: Each machine's first readings in a regime, from which the regime's normaliser is learned (10: the in-domain CV of
#: C-MAPSS is no worse than with all readings; 20 made FD002's worse). A constant, not a `FeatureConfig` field: it
#: only shapes the fitted arrays, which the spec's id already covers, so specs fitted before it keep their id.
REGIME_BASELINE_READINGS = 10


def _early_in_regime(readings: pl.DataFrame, regimes: np.ndarray, first: int) -> pl.DataFrame:
    """Each machine's first `first` readings in each regime, with their regime (`_regime`).

    A regime's normaliser is learned from early, healthy readings only, so it does not depend on how worn the
    machines that ran in it happened to be: a regime the fleet entered last week (young, healthy readings) and
    one it has run in for years (every age) are put on the same footing. Learned from all readings, a new
    regime's normaliser made its machines look worn, and a model trained on the old ones badly underestimated
    their lives (the quarterly replay's FD002 engines: RUL RMSE 25-33 instead of 10-16)."""
    frame = readings.with_columns(pl.Series("_regime", regimes)).sort("machine_id", "ts")
    return frame.filter(pl.int_range(pl.len()).over("machine_id", "_regime") < first)


#: The grid, in standard deviations of each setting, on which readings count once when regimes are clustered.
REGIME_CELL = 0.02


def operating_regimes(readings: pl.DataFrame, config: FeatureConfig = FeatureConfig(),
                      seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The operating settings that vary, their mean and spread, and the centres of their clusters (in spread units)."""
    present = [c for c in SETTING_COLUMNS if c in readings.columns]
    stats = readings.select(pl.col(present).cast(pl.Float64).fill_nan(None)).select(pl.all().std().name.suffix("_std"), pl.all().mean().name.suffix("_mean"))
    settings = [c for c in present if (stats[f"{c}_std"][0] or 0.0) > 0]
    mean_s = np.array([stats[f"{c}_mean"][0] for c in settings]) if settings else np.zeros(1)
    std_s = np.array([stats[f"{c}_std"][0] for c in settings]) if settings else np.ones(1)
    # each occupied cell of the settings once: a regime is a place the fleet runs in, however rarely,
    # so a new flight condition on its first day is a cluster of its own, not a few outliers of an old one
    cells = np.unique(np.round(_setting_matrix(readings, settings, mean_s, std_s) / REGIME_CELL), axis=0) * REGIME_CELL
    sample = cells[np.random.default_rng(seed).choice(len(cells), min(len(cells), 20_000), replace=False)]
    return settings, mean_s, std_s, _regime_centers(sample, config, seed)


def regimes_changed(spec: FeatureSpec, readings: pl.DataFrame, seed: int = 0) -> bool:
    """Whether `readings` run in other operating regimes than `spec` learned: other settings vary, or they
    fall into another number of clusters (a fleet that moved into new flight conditions, say)."""
    settings, _, _, centers = operating_regimes(readings, spec.config, seed)
    return settings != spec.settings or len(centers) != len(spec.regime_centers)


def _regime_centers(sample: np.ndarray, config: FeatureConfig, seed: int) -> np.ndarray:
    """Cluster centres of the scaled operating settings: the fewest clusters that explain all but
    `regime_inertia_ratio` of their spread, and that one more cluster would not halve what is left.

    The second condition matters where two conditions lie close: FD002's six flight conditions leave
    0.7 % of the spread unexplained with five clusters, below the ratio, yet the sixth removes all of it."""
    overall = sample.mean(axis=0, keepdims=True)
    total = ((sample - overall) ** 2).sum()
    if total == 0:
        return overall
    fits = {k: KMeans(n_clusters=k, n_init=3, random_state=seed).fit(sample) for k in range(2, config.max_regimes + 2) if k <= len(sample)}
    left = {k: fit.inertia_ / total for k, fit in fits.items()}
    for k in sorted(fits)[:config.max_regimes - 1]:
        exact = left[k] < 1e-4  # what is left is measurement noise
        if left[k] < config.regime_inertia_ratio and (exact or left.get(k + 1, left[k]) > left[k] / 2):
            return fits[k].cluster_centers_
    return overall


def _regime_distances(readings: pl.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Each reading's distance to each regime's centre, in the settings' spread units (readings x regimes)."""
    scaled = _setting_matrix(readings, spec.settings, spec.settings_mean, spec.settings_std)
    return np.sqrt(((scaled[:, None, :] - spec.regime_centers[None, :, :]) ** 2).sum(axis=2))


def regime_radii(distances: np.ndarray, regimes: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Twice each regime's farthest training reading, plus a cell, and at least a quarter of the way to the nearest other
    regime: a regime learned from a handful of readings (a new flight condition on its first day) has seen little of
    its own spread, and a reading a quarter of the way to a known neighbour is no new condition."""
    own = distances[np.arange(len(regimes)), regimes]
    farthest = np.array([own[regimes == r].max() if (regimes == r).any() else 0.0 for r in range(len(centers))])
    between = np.sqrt(((centers[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(between, np.inf)
    nearest = between.min(axis=1)
    neighbour = np.where(np.isfinite(nearest), nearest / 4, 0.0)
    return np.maximum(2.0 * farthest + REGIME_CELL, neighbour)


def assign_regimes(readings: pl.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """The nearest learned operating regime of each reading."""
    return _regime_distances(readings, spec).argmin(axis=1)


#: Readings outside every known regime that make a new operating condition (fewer are strays): `unknown_regimes` fails
#: from this many of a day's readings, and `feature_spec` refits from this many of its sample.
MIN_UNKNOWN_READINGS = 10


def outside_regimes(readings: pl.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Which readings run in none of the operating regimes `spec` learned: farther from every centre than its radius.
    Their features are normalised as if they ran in the nearest regime, so the models read them wrongly until the
    spec is refitted (every reading passes under a spec saved before radii were kept)."""
    if spec.regime_radius is None or not spec.settings or readings.is_empty():
        return np.zeros(readings.height, dtype=bool)
    return (_regime_distances(readings, spec) > spec.regime_radius[None, :]).all(axis=1)


#: A regime fitted on fewer sampled readings than this is learned thinly (a new flight condition on its first day) ...
REGIME_WELL_LEARNED = 1_000
#: ... and is learned again once the sample holds this many times as many of its readings.
REGIME_REFIT_GROWTH = 10


def thinly_learned_regimes(readings: pl.DataFrame, spec: FeatureSpec) -> list[int]:
    """The regimes `spec` learned from few readings (`REGIME_WELL_LEARNED`) that `readings`, a sample drawn as the
    spec's was, now hold `REGIME_REFIT_GROWTH` times as many of. A new condition's normaliser and map learned on its
    first day from a handful of machines stay wrong until refitted: the quarterly replay's FD002 quarter, refitted on
    its first 19 readings and never again, ended at RUL RMSE 35 against 12 (`docs/replay.md`)."""
    if spec.regime_readings is None or not len(readings):
        return []
    now = np.bincount(assign_regimes(readings, spec), minlength=len(spec.regime_centers))
    fitted = spec.regime_readings
    return [int(r) for r in np.flatnonzero((fitted < REGIME_WELL_LEARNED) & (now >= REGIME_REFIT_GROWTH * np.maximum(fitted, 1)))]


def refit_reason(current: FeatureSpec | None, config: FeatureConfig, readings: pl.DataFrame) -> str | None:
    """Why a spec must be (re)fitted on `readings` (a sample of every reading there is), or None to keep it: a
    retraining keeps the features comparable with the champion's unless the fleet now runs in operating regimes the
    spec does not know, or knows thinly. `feature_spec` and the replay's daily-retrain oracle refit by this rule."""
    if current is None:
        return "no feature spec yet"
    if current.config != config:
        return f"other feature settings asked for ({config} instead of {current.config})"
    if regimes_changed(current, readings):
        return "the readings run in other operating regimes than the spec learned"
    outside = int(outside_regimes(readings, current).sum())
    if outside >= MIN_UNKNOWN_READINGS:  # as many regimes as before, but not all of them where the spec has them
        return f"{outside:,} sampled readings run in none of the spec's operating regimes"
    if thin := thinly_learned_regimes(readings, current):
        return (f"regime(s) {', '.join(map(str, thin))}, learned from fewer than {REGIME_WELL_LEARNED:,} readings, "
                f"now hold {REGIME_REFIT_GROWTH} times as many")
    return None


_EPOCH = dt.datetime(1970, 1, 1)


def _with_events(readings: pl.DataFrame, events: pl.DataFrame | None) -> pl.DataFrame:
    """Add `life_start` (the last repair at or before the reading, epoch when none) and `_serviced` (last repair or maintenance)."""
    if events is None or events.height == 0:
        events = pl.DataFrame(schema={"machine_id": pl.String, "ts": pl.Datetime("us"), "event_type": pl.String})
    events = events.select("machine_id", pl.col("ts").cast(pl.Datetime("us")), "event_type").sort("ts")
    repairs = events.filter(pl.col("event_type") == REPAIR).select("machine_id", pl.col("ts").alias("life_start"))
    services = events.filter(pl.col("event_type").is_in(SERVICE_EVENTS)).select("machine_id", pl.col("ts").alias("_serviced"))
    out = readings.with_columns(pl.col("ts").cast(pl.Datetime("us"))).sort("ts")
    out = out.join_asof(repairs, left_on="ts", right_on="life_start", by="machine_id", strategy="backward", check_sortedness=False)
    out = out.join_asof(services, left_on="ts", right_on="_serviced", by="machine_id", strategy="backward", check_sortedness=False)
    return out.with_columns(pl.col("life_start").fill_null(_EPOCH))


def build_features(readings: pl.DataFrame, spec: FeatureSpec, events: pl.DataFrame | None = None) -> pl.DataFrame:
    """Features for every reading: `machine_id`, `ts`, then `spec.feature_names` (in that order)."""
    return extend_features(readings, spec, events)[0].drop("life_start")


def extend_features(readings: pl.DataFrame, spec: FeatureSpec, events: pl.DataFrame | None = None,
                    state: pl.DataFrame | None = None, carry: pl.DataFrame | None = None,
                    days: Sequence[dt.date] = ()) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Features of `readings` (`machine_id, ts, life_start`, then `spec.feature_names`) that continue
    each machine's history, and the state after them.

    `state` (`empty_state`'s columns, one row per machine) and `carry` (the machine's stored feature rows
    from `carry_from` to `last_ts`: the last `max(windows) - 1` readings of its current life) are
    what a previous call returned and stored; without them every machine starts fresh, which is the
    full recompute. `events` must hold each machine's repairs and maintenance up to its last reading.
    The state is given after each of `days` (column `as_of`; none by default), so any range of days is one pass.
    """
    missing = [c for c in spec.sensors + spec.settings if c not in readings.columns]
    if missing:
        raise ValueError(f"readings lack sensors or settings the model was trained on: {missing}")
    state = empty_state() if state is None else state
    new = _with_events(readings.select("machine_id", "ts", *spec.settings, *spec.sensors), events)
    # a reading with a missing setting keeps its machine's previous regime (filled below, carried rows included)
    known_settings = pl.all_horizontal(pl.col(spec.settings).is_not_null()) if spec.settings else pl.lit(True)
    regimes = assign_regimes(new.with_columns(pl.col(spec.settings).fill_null(0.0)) if spec.settings else new, spec)
    new = new.with_columns(pl.Series("_regime", regimes, dtype=pl.Int32)).join(
        state.select("machine_id", "first_seen"), on="machine_id", how="left").select(
        "machine_id", "ts", "life_start",
        # hours since service count from the last repair or maintenance, else from when the machine was first seen
        pl.coalesce("_serviced", "first_seen", pl.col("ts").min().over("machine_id")).alias("_service_ref"),
        pl.when(known_settings).then(pl.col("_regime")).alias("regime"),
        *(pl.col(s).cast(pl.Float64).fill_nan(None) for s in spec.sensors),
        pl.lit(False).alias("_carried"),
    )
    cfg = spec.config
    frame = prepend_carry(new, state, carry, spec.sensors, cfg.ewm_spans, cfg.life, cfg.baseline_readings).sort("machine_id", "ts")
    frame = frame.with_columns(pl.col("regime").forward_fill().over("machine_id").fill_null(0))
    # new readings are normalised by their regime; carried rows hold normalised values already
    values, regime = frame.select(spec.sensors).to_numpy(), frame["regime"].to_numpy()
    normalized = np.where(frame["_carried"].to_numpy()[:, None], values, spec.normalized(values, regime))
    # one integer per machine life (rows are sorted by machine and time): windows over it are cheaper than over a struct
    new_life = (pl.col("machine_id") != pl.col("machine_id").shift()) | (pl.col("life_start") != pl.col("life_start").shift())
    group = pl.col("_life")
    frame = frame.with_columns(
        new_life.fill_null(True).cum_sum().alias("_life"),
        *(pl.Series(s, normalized[:, i]).fill_nan(None) for i, s in enumerate(spec.sensors)),
    ).with_columns(
        # a missing or faulty reading repeats the last good one of its life (never a later one)
        pl.col(spec.sensors).forward_fill().over(group).fill_null(0.0),
    )
    frame = frame.with_columns((pl.col("_age0").first().over(group).fill_null(0) + pl.int_range(pl.len()).over(group)).cast(pl.Float64)
                               .alias("age_readings"))
    age = pl.col("age_readings")
    columns: list[pl.Expr] = [((pl.col("ts") - pl.col("_service_ref")).dt.total_microseconds() / 3.6e9).alias("hours_since_service")]
    for s in spec.sensors:
        z = pl.col(s)
        # the baseline sum carried in the last carried row, plus this call's early readings
        early_sum = pl.when(pl.col("_carried")).then(pl.col(f"{s}__base_sum").fill_null(0.0)).otherwise(z * (age < cfg.baseline_readings).cast(pl.Float64))
        baseline = early_sum.cum_sum().over(group) / pl.min_horizontal(age + 1, cfg.baseline_readings)
        columns.append((z - baseline).alias(f"{s}__from_baseline"))
        for w in cfg.windows:
            n = pl.min_horizontal(age + 1, w)
            sum_i, sum_z = age.rolling_sum(w, min_samples=1).over(group), z.rolling_sum(w, min_samples=1).over(group)
            sum_iz = (age * z).rolling_sum(w, min_samples=1).over(group)
            sum_ii = (age * age).rolling_sum(w, min_samples=1).over(group)
            denominator = n * sum_ii - sum_i * sum_i
            columns += [
                (sum_z / n).alias(f"{s}__mean_{w}"),
                z.rolling_std(w, min_samples=2).over(group).fill_null(0.0).alias(f"{s}__std_{w}"),
                pl.when(denominator > 0).then((n * sum_iz - sum_i * sum_z) / denominator).otherwise(0.0).alias(f"{s}__slope_{w}"),
            ]
        if cfg.life:
            columns += _life_columns(s, z, age, group)
        else:
            w = max(cfg.windows)
            columns += [z.rolling_min(w, min_samples=1).over(group).alias(f"{s}__min_{w}"), z.rolling_max(w, min_samples=1).over(group).alias(f"{s}__max_{w}")]
        for span in cfg.ewm_spans:
            # a carried life restarts its average from the stored one: only the last carried row seeds it
            seed = pl.when(pl.col("_carried")).then(pl.col(f"{s}__ewm_{span}_seed")).otherwise(z)
            columns.append(seed.ewm_mean(span=span, adjust=False).over(group).alias(f"{s}__ewm_{span}"))
    frame = frame.with_columns(columns)
    if cfg.deviations:
        w = min(cfg.windows)
        # the window's mean minus the baseline (`from_baseline` is the reading minus it)
        moved = [(pl.col(f"{s}__mean_{w}") - pl.col(s) + pl.col(f"{s}__from_baseline")) for s in spec.sensors]
        largest, rms = DEVIATION_FEATURES
        frame = frame.with_columns(
            pl.max_horizontal([m.abs() for m in moved]).alias(largest),
            # added in order: sum_horizontal's order, and so its last bit, changes from run to run
            (functools.reduce(operator.add, [m * m for m in moved]) / len(moved)).sqrt().alias(rms))
    features = frame.rename({s: f"{s}__now" for s in spec.sensors}).select(
        "machine_id", "ts", "life_start", *spec.feature_names).filter(~frame["_carried"])
    return features, states_after(frame, state, max(cfg.windows) - 1, days)


def _life_columns(s: str, z: pl.Expr, age: pl.Expr, group: pl.Expr) -> list[pl.Expr]:
    """Sensor `s`'s aggregates since the life began, from running sums: the last carried row seeds each
    sum with the life so far (`feature_state.prepend_carry`), so a day costs a day however long the life."""
    def since_start(term: pl.Expr, seed: str) -> pl.Expr:
        return pl.when(pl.col("_carried")).then(pl.col(seed).fill_null(0.0)).otherwise(term).cum_sum().over(group)

    n, sum_i, sum_ii = life_moments(age)
    sum_z, sum_zz, sum_iz = since_start(z, f"{s}__life_sum"), since_start(z * z, f"{s}__life_sq"), since_start(age * z, f"{s}__life_iz")
    denominator = n * sum_ii - sum_i * sum_i
    return [
        (sum_z / n).alias(f"{s}__mean_life"),
        pl.when(n > 1).then(((sum_zz - sum_z * sum_z / n) / (n - 1)).clip(lower_bound=0.0).sqrt()).otherwise(0.0).alias(f"{s}__std_life"),
        pl.when(denominator > 0).then((n * sum_iz - sum_i * sum_z) / denominator).otherwise(0.0).alias(f"{s}__slope_life"),
        # carried rows are of the same life: their values may count again, the last one's seed holds the rest
        pl.min_horizontal(z, pl.col(f"{s}__life_min")).cum_min().over(group).alias(f"{s}__min_life"),
        pl.max_horizontal(z, pl.col(f"{s}__life_max")).cum_max().over(group).alias(f"{s}__max_life"),
    ]


def feature_names(sensors: list[str], config: FeatureConfig) -> list[str]:
    """The model's input columns, in order."""
    names = ["hours_since_service", "regime", *(f"{s}__now" for s in sensors), "age_readings"]
    for s in sensors:
        names.append(f"{s}__from_baseline")
        for w in config.windows:
            names += [f"{s}__mean_{w}", f"{s}__std_{w}", f"{s}__slope_{w}"]
        if config.life:
            names += [f"{s}__{kind}_life" for kind in ("mean", "std", "slope", "min", "max")]
        else:
            names += [f"{s}__min_{max(config.windows)}", f"{s}__max_{max(config.windows)}"]
        names += [f"{s}__ewm_{span}" for span in config.ewm_spans]
    if config.deviations:
        names += DEVIATION_FEATURES
    return names


def sensor_of(feature: str) -> str | None:
    """The sensor a feature is computed from (`sensor_03__mean_15` -> `sensor_03`), or None."""
    return feature.split("__")[0] if feature.startswith(SENSOR_PREFIX) else None
