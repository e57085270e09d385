"""Calibrated RUL ranges: a conformal predictive distribution per band of predicted RUL.

Out-of-fold residuals ``r = rul - rul_pred`` (machine-grouped, so no machine judges itself) are split
into bands of the predicted RUL (Mondrian conformal prediction: the bands are the categories) and each
band keeps its residual quantiles. A new prediction ``p`` in band ``b`` has the distribution
``p + quantiles_b``; its range at coverage ``c`` is the ``(1 - c) / 2`` and ``(1 + c) / 2`` quantiles,
with the split-conformal finite-sample correction, widened to hold ``p`` and clipped to ``[0, cap]``. Near failure the model errs
less, so the bands of small predicted RUL are narrow; a machine far from failure gets a wide range.

The table is a few hundred numbers: a range costs a `searchsorted` and two look-ups per row, which the
serving hot path can afford (a library's calibrator object costs a millisecond a call).

>>> rng = np.random.default_rng(0)
>>> pred = rng.uniform(0, 100, 20_000)
>>> truth = pred + rng.normal(0, 1 + pred / 10)   # noise grows with the RUL
>>> ranges = fit_intervals(truth, pred, cap=1e9)
>>> lower, upper = ranges.range(pred)
>>> round(float(np.mean((truth >= lower) & (truth <= upper))), 2)
0.9
>>> bool(np.mean((upper - lower)[pred < 20]) < np.mean((upper - lower)[pred > 80]) / 2)
True
"""

from dataclasses import dataclass

import numpy as np

#: Quantile levels each band keeps (0.5 % steps): ranges at any coverage, and the failure-time distribution the plan uses.
LEVELS = np.linspace(0.0, 1.0, 201)
DEFAULT_COVERAGE = 0.9


def validate_coverage(coverage: float) -> float:
    if not 0.5 <= coverage < 1:
        raise ValueError(f"interval coverage must be in [0.5, 1), got {coverage}")
    return coverage


@dataclass(frozen=True)
class RulIntervals:
    """Residual quantiles per band of predicted RUL; `edges` are the bands' inner boundaries."""

    edges: np.ndarray  # (bands - 1,)
    quantiles: np.ndarray  # (bands, len(LEVELS)) residual quantiles, finite-sample corrected
    cap: float  # RUL labels are capped here; ranges are clipped to [0, cap]
    coverage: float = DEFAULT_COVERAGE  # the coverage `range` gives by default
    #: Mean true RUL of the training rows whose RUL reached the cap: what a quantile at the cap stands for when the
    #: plan counts the life a service throws away (a capped label says only "at least the cap").
    beyond_cap: float | None = None

    def band(self, pred: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges, pred, side="right")

    def range(self, pred: np.ndarray, coverage: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper RUL at `coverage` (the calibrated one by default) for each prediction."""
        coverage = validate_coverage(self.coverage if coverage is None else coverage)
        lo, hi = np.searchsorted(LEVELS, [(1 - coverage) / 2, (1 + coverage) / 2])
        q = self.quantiles[self.band(pred)]
        # the range holds the point prediction too (near the cap, where nearly every truth is the cap, it may not otherwise)
        lower = np.clip(np.minimum(pred + q[:, min(lo, len(LEVELS) - 1)], pred), 0, self.cap)
        upper = np.clip(np.maximum(pred + q[:, min(hi, len(LEVELS) - 1)], pred), 0, self.cap)
        return lower, upper

    def failure_probability(self, pred: np.ndarray, hours: np.ndarray) -> np.ndarray:
        """P(RUL < hours) for each prediction (rows) and each of `hours` (columns), from its band's quantiles.

        Past the cap the distribution knows nothing: a probability there is the one at the cap (a lower bound)."""
        values = pred[:, None] + self.quantiles[self.band(pred)]  # rows' RUL quantiles, ascending
        t = np.minimum(np.asarray(hours, float), self.cap - 1e-9)
        below = (values[:, :, None] < t[None, None, :]).mean(axis=1)
        return np.clip(below, 0.0, 1.0)


def _conformal_levels(n: int) -> np.ndarray:
    """LEVELS widened by the split-conformal correction for `n` calibration residuals: the ceil((n + 1) q) / n-th."""
    lower = np.floor((n + 1) * LEVELS - 1) / n
    upper = np.ceil((n + 1) * LEVELS) / n
    return np.clip(np.where(LEVELS < 0.5, lower, upper), 0.0, 1.0)


def fit_intervals(truth: np.ndarray, pred: np.ndarray, cap: float, coverage: float = DEFAULT_COVERAGE,
                  bands: int = 10, min_per_band: int = 200, beyond_cap: float | None = None) -> RulIntervals:
    """Calibrate on out-of-fold predictions: bands of equal count of the predicted RUL (fewer when rows are few)."""
    validate_coverage(coverage)
    keep = np.isfinite(truth) & np.isfinite(pred)
    truth, pred = truth[keep], pred[keep]
    if len(truth) < 20:
        raise ValueError(f"calibrating RUL ranges needs at least 20 out-of-fold predictions with a known RUL, got {len(truth)}")
    n_bands = int(max(1, min(bands, len(truth) // min_per_band)))
    edges = np.unique(np.quantile(pred, np.linspace(0, 1, n_bands + 1)[1:-1]))
    band = np.searchsorted(edges, pred, side="right")
    residuals = truth - pred
    quantiles = np.vstack([np.quantile(residuals[band == b], _conformal_levels(int((band == b).sum())))
                           if (band == b).any() else np.quantile(residuals, LEVELS) for b in range(len(edges) + 1)])
    return RulIntervals(edges=edges, quantiles=quantiles, cap=cap, coverage=coverage, beyond_cap=beyond_cap)


def interval_metrics(truth: np.ndarray, lower: np.ndarray, upper: np.ndarray, near_failure: float = 30.0) -> dict[str, float]:
    """Coverage and mean width of ranges; the width also over rows with true RUL <= `near_failure`."""
    known = np.isfinite(truth)
    truth, lower, upper = truth[known], lower[known], upper[known]
    near = truth <= near_failure
    width = upper - lower
    return {
        "rul_interval_coverage": float(np.mean((truth >= lower) & (truth <= upper))) if len(truth) else float("nan"),
        "rul_interval_width": float(width.mean()) if len(truth) else float("nan"),
        "rul_interval_width_near_failure": float(width[near].mean()) if near.any() else float("nan"),
        "rul_interval_rows": float(len(truth)),
    }


def out_of_fold_ranges(truth: np.ndarray, pred: np.ndarray, folds: np.ndarray, cap: float,
                       coverage: float = DEFAULT_COVERAGE) -> tuple[np.ndarray, np.ndarray]:
    """Each fold's ranges calibrated on the other folds' residuals: coverage judged on rows the calibration never saw."""
    lower, upper = np.full(len(pred), np.nan), np.full(len(pred), np.nan)
    for fold in np.unique(folds):
        inside = folds == fold
        fitted = fit_intervals(truth[~inside], pred[~inside], cap, coverage)
        lower[inside], upper[inside] = fitted.range(pred[inside])
    return lower, upper
