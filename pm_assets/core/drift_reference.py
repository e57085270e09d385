"""What the drift checks compare: the champion's reference profile, and a day's data against it.

Monitored columns: each sensor's regime-normalised level (`<sensor>__now`), its residual from the
other sensors (`<sensor>__residual`, see `pm_assets.core.drift.SensorRelations`) and the champion's
predictions. Feature drift is decided on the residuals; the levels are reported for people.
"""

from dataclasses import dataclass

import numpy as np
import polars as pl

from pm_assets.core.drift import ReferenceProfile, SensorRelations, drifted_share, fit_reference, fit_relations, psi
from pm_assets.core.features import FeatureSpec

PREDICTION_COLUMNS = ("predicted_rul", "failure_probability")
EVIDENTLY_SAMPLE = 5_000


@dataclass
class DriftReference:
    version: str  # the champion it describes
    profile: ReferenceProfile
    relations: SensorRelations
    sample: pl.DataFrame  # monitored columns of a sample of reference rows, for the Evidently report


@dataclass
class DayDrift:
    scores: dict[str, float]  # PSI of every monitored column
    residual_scores: dict[str, float]  # PSI of each sensor's residual: what feature drift decides on
    drifted_share: float
    prediction_psi: float  # the larger PSI of the two predictions
    monitored: pl.DataFrame  # the day's monitored columns, for the Evidently report


def _residual_name(column: str) -> str:
    return column.replace("__now", "__residual")


def monitored_columns(scored: pl.DataFrame, relations: SensorRelations) -> dict[str, np.ndarray]:
    """Sensor levels, their residuals from the other sensors, and the predictions of `scored` rows."""
    levels = scored.select(relations.columns).cast(pl.Float64).to_numpy()
    residuals = relations.residuals(levels)
    arrays = {c: levels[:, j] for j, c in enumerate(relations.columns)}
    arrays |= {_residual_name(c): residuals[:, j] for j, c in enumerate(relations.columns)}
    return arrays | {c: scored[c].cast(pl.Float64).to_numpy() for c in PREDICTION_COLUMNS}


def build_reference(version: str, spec: FeatureSpec, scored: pl.DataFrame) -> DriftReference:
    """Relations and bins fitted on the champion's scored training rows (`scored`: features + predictions)."""
    sensors = [f"{s}__now" for s in spec.sensors]
    relations = fit_relations(scored.select(sensors).cast(pl.Float64).to_numpy(), sensors)
    arrays = monitored_columns(scored, relations)
    profile = fit_reference(arrays, scored["regime"].to_numpy())
    sample = pl.DataFrame(arrays).sample(min(EVIDENTLY_SAMPLE, scored.height), seed=0)
    return DriftReference(version, profile, relations, sample)


def compare(reference: DriftReference, scored: pl.DataFrame, psi_threshold: float) -> DayDrift:
    """PSI of a day's scored rows against the reference, per regime."""
    arrays = monitored_columns(scored, reference.relations)
    scores = psi(reference.profile, arrays, scored["regime"].to_numpy()).scores
    residual_scores = {c: scores[c] for c in map(_residual_name, reference.relations.columns)}
    return DayDrift(scores=scores, residual_scores=residual_scores, drifted_share=drifted_share(residual_scores, psi_threshold),
                    prediction_psi=max(scores[c] for c in PREDICTION_COLUMNS), monitored=pl.DataFrame(arrays))
