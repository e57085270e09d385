"""Point-in-time-correct sensor features, shared by training, fleet scoring and the HTTP service.

A row's features use only readings of the same machine at or before its timestamp, and only since
the machine's last repair (a repaired machine starts a new life). Sensors are first normalised per
operating regime (regimes are clusters of the operating settings, learned once in `fit_feature_spec`),
so a fleet that switches regimes does not look like a fleet that degrades.
"""

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from sklearn.cluster import KMeans

from pm_assets.constants import SENSOR_PREFIX, SETTING_COLUMNS


@dataclass(frozen=True)
class FeatureConfig:
    windows: tuple[int, ...] = (10, 30)  # rolling windows, in readings
    ewm_spans: tuple[int, ...] = (10,)
    baseline_readings: int = 20  # a life's first readings define its own baseline
    max_regimes: int = 8
    regime_inertia_ratio: float = 0.02  # fewest clusters explaining 98% of the settings' spread

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

    @property
    def min_readings(self) -> int:
        """Readings a machine needs before all of its rolling windows are full."""
        return max(self.config.windows)


def _setting_matrix(readings: pl.DataFrame, settings: list[str], mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    if not settings:
        return np.zeros((readings.height, 1))
    values = readings.select(pl.col(settings).fill_null(strategy="forward").fill_null(0.0)).to_numpy()
    return (values - mean) / std


def fit_feature_spec(readings: pl.DataFrame, config: FeatureConfig = FeatureConfig(), seed: int = 0) -> FeatureSpec:
    """Learn kept sensors, operating regimes and per-regime sensor statistics from training readings."""
    sensors_all = [c for c in readings.columns if c.startswith(SENSOR_PREFIX)]
    if not sensors_all:
        raise ValueError("readings have no sensor_* columns")
    numeric = sensors_all + [s for s in SETTING_COLUMNS if s in readings.columns]
    stats = readings.select(pl.col(numeric).cast(pl.Float64).fill_nan(None)).select(pl.all().std().name.suffix("_std"), pl.all().mean().name.suffix("_mean"))
    std = {c: (stats[f"{c}_std"][0] or 0.0) for c in numeric}
    # a sensor that does not move, or flips between two rounded values, carries no information
    distinct = readings.select(pl.col(sensors_all).cast(pl.Float64).fill_nan(None).drop_nulls().n_unique())
    sensors = [c for c in sensors_all if std[c] > 0 and distinct[c][0] > 2]
    settings = [c for c in SETTING_COLUMNS if c in readings.columns and std.get(c, 0.0) > 0]
    if not sensors:
        raise ValueError("every sensor is constant in the training readings: nothing to learn from")
    mean_s = np.array([stats[f"{c}_mean"][0] for c in settings]) if settings else np.zeros(1)
    std_s = np.array([std[c] for c in settings]) if settings else np.ones(1)
    scaled = _setting_matrix(readings, settings, mean_s, std_s)
    sample = scaled[np.random.default_rng(seed).choice(len(scaled), min(len(scaled), 20_000), replace=False)]
    centers = sample.mean(axis=0, keepdims=True)
    total = ((sample - centers) ** 2).sum()
    for k in range(2, config.max_regimes + 1):
        if total == 0 or len(sample) <= k:
            break
        km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(sample)
        if km.inertia_ / total < config.regime_inertia_ratio:
            centers = km.cluster_centers_
            break
    model_types = sorted(readings["model_type"].drop_nulls().unique().to_list()) if "model_type" in readings.columns else []
    spec = FeatureSpec(config, sensors, settings, mean_s, std_s, centers, np.zeros(0), np.zeros(0),
                       feature_names(sensors, config), sensors_all, model_types)
    regimes = assign_regimes(readings, spec)
    values = readings.select(pl.col(sensors).fill_nan(None)).to_numpy()
    spec.regime_mean = np.vstack([np.nanmean(values[regimes == r], axis=0) if (regimes == r).any() else np.nanmean(values, axis=0) for r in range(len(centers))])
    spec.regime_std = np.vstack([np.nanstd(values[regimes == r], axis=0) if (regimes == r).any() else np.nanstd(values, axis=0) for r in range(len(centers))])
    spec.regime_std[~(spec.regime_std > 0)] = 1.0
    return spec


def assign_regimes(readings: pl.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """The nearest learned operating regime of each reading."""
    scaled = _setting_matrix(readings, spec.settings, spec.settings_mean, spec.settings_std)
    distances = ((scaled[:, None, :] - spec.regime_centers[None, :, :]) ** 2).sum(axis=2)
    return distances.argmin(axis=1)


def _life_context(readings: pl.DataFrame, events: pl.DataFrame | None) -> pl.DataFrame:
    """Add `_group` (machine and life since last repair) and hours since the last maintenance or repair."""
    if events is None or events.height == 0:
        events = pl.DataFrame(schema={"machine_id": pl.String, "ts": pl.Datetime("us"), "event_type": pl.String})
    events = events.select("machine_id", pl.col("ts").cast(pl.Datetime("us")), "event_type").sort("ts")
    repairs = events.filter(pl.col("event_type") == "repair").select("machine_id", pl.col("ts").alias("_life_start"))
    services = events.filter(pl.col("event_type").is_in(["repair", "maintenance"])).select("machine_id", pl.col("ts").alias("_serviced"))
    out = readings.with_columns(pl.col("ts").cast(pl.Datetime("us"))).sort("ts")
    out = out.join_asof(repairs, left_on="ts", right_on="_life_start", by="machine_id", strategy="backward", check_sortedness=False)
    out = out.join_asof(services, left_on="ts", right_on="_serviced", by="machine_id", strategy="backward", check_sortedness=False)
    out = out.sort("machine_id", "ts")
    first_seen = pl.col("ts").min().over("machine_id")
    return out.with_columns(
        pl.struct("machine_id", pl.col("_life_start").fill_null(pl.datetime(1970, 1, 1))).rank("dense").cast(pl.Int64).alias("_group"),
        ((pl.col("ts") - pl.coalesce("_serviced", first_seen)).dt.total_microseconds() / 3.6e9).alias("hours_since_service"),
    ).drop("_life_start", "_serviced")


def build_features(readings: pl.DataFrame, spec: FeatureSpec, events: pl.DataFrame | None = None) -> pl.DataFrame:
    """Features for every reading: `machine_id`, `ts`, then `spec.feature_names` (in that order)."""
    missing = [c for c in spec.sensors + spec.settings if c not in readings.columns]
    if missing:
        raise ValueError(f"readings lack sensors or settings the model was trained on: {missing}")
    frame = _life_context(readings.select("machine_id", "ts", *spec.settings, *spec.sensors), events)
    regimes = assign_regimes(frame, spec)
    values = frame.select(pl.col(spec.sensors).fill_nan(None)).to_numpy()
    normalized = (values - spec.regime_mean[regimes]) / spec.regime_std[regimes]
    group = pl.col("_group")
    frame = frame.select("machine_id", "ts", "_group", "hours_since_service").with_columns(
        pl.Series("regime", regimes, dtype=pl.Int32),
        *(pl.Series(s, normalized[:, i]).fill_nan(None) for i, s in enumerate(spec.sensors)),
    )
    # a missing or faulty reading repeats the last good one of its life (never a later one)
    frame = frame.with_columns(pl.col(spec.sensors).forward_fill().over(group).fill_null(0.0))
    frame = frame.with_columns(pl.int_range(pl.len()).over(group).cast(pl.Float64).alias("age_readings"))
    cfg, age = spec.config, pl.col("age_readings")
    columns: list[pl.Expr] = []
    for s in spec.sensors:
        z = pl.col(s)
        early = (age < cfg.baseline_readings).cast(pl.Float64)
        baseline = (z * early).cum_sum().over(group) / pl.min_horizontal(age + 1, cfg.baseline_readings)
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
        w = max(cfg.windows)
        columns += [z.rolling_min(w, min_samples=1).over(group).alias(f"{s}__min_{w}"), z.rolling_max(w, min_samples=1).over(group).alias(f"{s}__max_{w}")]
        columns += [z.ewm_mean(span=span, adjust=False).over(group).alias(f"{s}__ewm_{span}") for span in cfg.ewm_spans]
    features = frame.with_columns(columns).rename({s: f"{s}__now" for s in spec.sensors})
    return features.select("machine_id", "ts", *spec.feature_names)


def feature_names(sensors: list[str], config: FeatureConfig) -> list[str]:
    """The model's input columns, in order."""
    names = ["hours_since_service", "regime", *(f"{s}__now" for s in sensors), "age_readings"]
    for s in sensors:
        names.append(f"{s}__from_baseline")
        for w in config.windows:
            names += [f"{s}__mean_{w}", f"{s}__std_{w}", f"{s}__slope_{w}"]
        names += [f"{s}__min_{max(config.windows)}", f"{s}__max_{max(config.windows)}"]
        names += [f"{s}__ewm_{span}" for span in config.ewm_spans]
    return names


def sensor_of(feature: str) -> str | None:
    """The sensor a feature is computed from (`sensor_03__mean_15` -> `sensor_03`), or None."""
    return feature.split("__")[0] if feature.startswith(SENSOR_PREFIX) else None
