"""Scoring feature rows with a model bundle (used by the daily predictions, `fleet_scores` and the HTTP service)."""

import numpy as np
import polars as pl

from pm_assets.core.models import ModelBundle


def top_sensors(sensors: list[str], contributions: np.ndarray, k: int = 3) -> list[list[str]]:
    """Per row, the `k` sensors pushing the failure risk up the most (positive contributions only)."""
    order = np.argsort(-contributions, axis=1)[:, :k]
    return [[sensors[j] for j in row if contributions[i, j] > 0] for i, row in enumerate(order)]


def with_predictions(bundle: ModelBundle, features: pl.DataFrame) -> pl.DataFrame:
    """`features` with the bundle's `predicted_rul`, its range (`rul_lower`, `rul_upper`) and `failure_probability`
    (unchanged when empty)."""
    if features.is_empty():
        return features
    rul, probability = bundle.predict(features.select(bundle.feature_names).to_numpy())
    lower, upper = bundle.rul_range(rul, probability)
    return features.with_columns(pl.Series("predicted_rul", rul), pl.Series("rul_lower", lower), pl.Series("rul_upper", upper),
                                 pl.Series("failure_probability", probability))


def driving_sensors(bundle: ModelBundle, X: np.ndarray, risk: np.ndarray, explain: np.ndarray | None = None, threads: int = -1) -> list[list[str]]:
    """The sensors driving each row's risk, for medium and high risk rows (and rows `explain` marks); the others
    get none. Contributions are the costliest part of scoring, and a low risk has nothing to explain."""
    wanted = risk != "low" if explain is None else (risk != "low") | explain
    found: list[list[str]] = [[] for _ in range(len(X))]
    rows = np.flatnonzero(wanted)
    if rows.size:
        sensors, contributions = bundle.sensor_contributions(X[rows], threads)
        for i, names in zip(rows, top_sensors(sensors, contributions)):
            found[i] = names
    return found


def score_rows(bundle: ModelBundle, latest: pl.DataFrame) -> pl.DataFrame:
    """Feature rows (one per machine) scored: RUL and its range, failure probability, risk level, driving sensors."""
    X = latest.select(bundle.feature_names).to_numpy()
    rul, probability = bundle.predict(X)
    lower, upper = bundle.rul_range(rul, probability)
    risk = bundle.risk_level(probability)
    return latest.select("machine_id", "ts").with_columns(
        pl.Series("rul_hours", rul),
        pl.Series("rul_lower", lower),
        pl.Series("rul_upper", upper),
        pl.Series("failure_probability", probability),
        pl.Series("risk_level", risk),
        pl.Series("top_sensors", driving_sensors(bundle, X, risk), dtype=pl.List(pl.String)),
    )
