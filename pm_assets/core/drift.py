"""Drift statistics the checks decide on: population stability index (PSI) per column and regime.

Bins are fitted once on the reference (quantiles of the champion's training data, per operating
regime); a batch of current data is then binned with `searchsorted` and compared bin by bin:

    PSI = sum_b (c_b - r_b) * ln(c_b / r_b)

where r_b and c_b are the reference and current shares of bin b (floored at `EPSILON`). Comparing
within each regime means that a fleet running more often in another regime is not "drift"; readings far
from every known regime are judged on their own (`unknown_regimes`, `core.features.outside_regimes`).
Rule of thumb: PSI < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 major shift.

A sensor's level moves as machines wear, so a day whose machines are younger or older than the
reference fleet shifts every level without anything being wrong. What wear does not change is how
sensors move together: `SensorRelations` predicts each (standardised) sensor from the others, fitted
on the reference, and the residuals stay put through the life cycle but move when a sensor is
recalibrated or a new failure mode pushes sensors apart. The feature-drift check decides on them.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = fit_reference({"x": rng.normal(0, 1, 20_000)}, np.zeros(20_000, int))
>>> same = psi(ref, {"x": rng.normal(0, 1, 5_000)}, np.zeros(5_000, int))
>>> moved = psi(ref, {"x": rng.normal(1, 1, 5_000)}, np.zeros(5_000, int))
>>> bool(same.scores["x"] < 0.1 < 0.25 < moved.scores["x"])
True
"""

from dataclasses import dataclass

import numpy as np

EPSILON = 1e-4
MIN_ROWS_PER_REGIME = 150  # fewer current rows in a regime than this: too noisy, that regime is not judged


@dataclass
class ReferenceProfile:
    """Bin edges and shares per regime and column, fitted on the reference data."""

    columns: list[str]
    regimes: list[int]
    edges: dict[tuple[int, str], np.ndarray]
    shares: dict[tuple[int, str], np.ndarray]
    n_bins: int


@dataclass
class DriftResult:
    scores: dict[str, float]  # per column: PSI, weighted over regimes by current rows
    per_regime: dict[int, dict[str, float]]
    rows: int


@dataclass
class SensorRelations:
    """Linear prediction of each standardised column from the others, fitted on the reference.

    With precision matrix ``P`` (inverse covariance) of the standardised columns, the least-squares
    weight of column k in predicting column j is ``-P[j, k] / P[j, j]``: one inverse, not one fit per column.
    """

    columns: list[str]
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray  # (k, k), zero diagonal: row j predicts column j from the others

    def residuals(self, matrix: np.ndarray) -> np.ndarray:
        """Each column minus its prediction from the others; missing predictors count as average."""
        z = (matrix - self.mean) / self.std
        return z - np.where(np.isfinite(z), z, 0.0) @ self.weights.T


def fit_relations(matrix: np.ndarray, columns: list[str]) -> SensorRelations:
    """Fit on the complete rows of `matrix` (rows with a missing value are left out)."""
    complete = matrix[np.isfinite(matrix).all(axis=1)]
    if len(complete) <= matrix.shape[1]:
        raise ValueError(f"too few complete rows ({len(complete)}) to relate {matrix.shape[1]} columns")
    mean, std = complete.mean(axis=0), complete.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    precision = np.linalg.pinv(np.atleast_2d(np.cov((complete - mean) / std, rowvar=False)))
    diagonal = np.diag(precision).copy()
    weights = -precision / np.where(diagonal > 0, diagonal, np.inf)[:, None]
    np.fill_diagonal(weights, 0.0)
    return SensorRelations(columns=list(columns), mean=mean, std=std, weights=weights)


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    values = values[np.isfinite(values)]
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return np.maximum(counts / max(len(values), 1), EPSILON)


def fit_reference(data: dict[str, np.ndarray], regimes: np.ndarray, n_bins: int = 10) -> ReferenceProfile:
    """Quantile bins (inner edges) of each column within each regime."""
    if n_bins < 2:
        raise ValueError(f"n_bins must be >= 2, got {n_bins}")
    edges, shares = {}, {}
    known = sorted(int(r) for r in np.unique(regimes))
    for regime in known:
        mask = regimes == regime
        for column, values in data.items():
            v = values[mask]
            v = v[np.isfinite(v)]
            if len(v) == 0:
                continue
            inner = np.unique(np.quantile(v, np.linspace(0, 1, n_bins + 1)[1:-1]))
            edges[(regime, column)] = inner
            shares[(regime, column)] = _shares(v, inner)
    return ReferenceProfile(columns=list(data), regimes=known, edges=edges, shares=shares, n_bins=n_bins)


def psi(profile: ReferenceProfile, data: dict[str, np.ndarray], regimes: np.ndarray) -> DriftResult:
    """PSI of each column of `data` against the reference, per regime and weighted over regimes."""
    per_regime: dict[int, dict[str, float]] = {}
    weights: dict[int, int] = {}
    for regime in profile.regimes:
        mask = regimes == regime
        if mask.sum() < MIN_ROWS_PER_REGIME:
            continue
        weights[regime] = int(mask.sum())
        per_regime[regime] = {}
        for column in profile.columns:
            key = (regime, column)
            if key not in profile.edges:
                continue
            current = _shares(data[column][mask], profile.edges[key])
            reference = profile.shares[key]
            per_regime[regime][column] = float(np.sum((current - reference) * np.log(current / reference)))
    total = sum(weights.values())
    scores = {
        column: float(sum(weights[r] * per_regime[r].get(column, 0.0) for r in per_regime) / total) if total else float("nan")
        for column in profile.columns
    }
    return DriftResult(scores=scores, per_regime=per_regime, rows=int(len(regimes)))


def drifted_share(scores: dict[str, float], threshold: float = 0.2) -> float:
    """Share of columns whose PSI exceeds `threshold` (columns that could not be judged left out)."""
    judged = [s for s in scores.values() if np.isfinite(s)]
    return float(np.mean([s > threshold for s in judged])) if judged else 0.0
