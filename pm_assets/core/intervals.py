"""Calibrated RUL ranges: a conformal predictive distribution per band of predicted RUL.

Out-of-fold residuals ``r = rul - rul_pred`` (machine-grouped, so no machine judges itself) are split
into bands of the predicted RUL and, where the failure model's probability is known, levels of that
probability: Mondrian conformal prediction, the band x level cells being the categories. Each cell keeps its residual quantiles (a cell with too few rows
keeps its band's). A new prediction ``p`` in band ``b`` has the distribution
``p + quantiles_b`` (with the split-conformal finite-sample correction); its range at coverage ``c`` is the
narrowest window of it that holds ``c`` of the distribution, widened to hold ``p`` and clipped to ``[0, cap]`` (a RUL is
never below 0, and its label never above the cap). Residuals are skewed — near failure the truth cannot fall below 0,
near the cap it is mostly the cap — so the narrowest window is often far narrower than the equal-tailed one
(the ``(1 - c) / 2`` and ``(1 + c) / 2`` quantiles) at the same coverage. Near failure the model errs less, so the
bands of small predicted RUL are narrow; a machine far from failure gets a wide range.

The table is a few hundred numbers: a range costs a `searchsorted` and two look-ups per row, which the
serving hot path can afford (a library's calibrator object costs a millisecond a call).

>>> rng = np.random.default_rng(0)
>>> pred = rng.uniform(0, 100, 20_000)
>>> truth = np.abs(pred + rng.normal(0, 1 + pred / 10))   # noise grows with the RUL; a RUL is never below 0
>>> ranges = fit_intervals(truth, pred, cap=1e9)
>>> lower, upper = ranges.range(pred)
>>> round(float(np.mean((truth >= lower) & (truth <= upper))), 2)
0.9
>>> bool(np.mean((upper - lower)[pred < 20]) < np.mean((upper - lower)[pred > 80]) / 2)
True
"""

import functools
from dataclasses import dataclass, field

import numpy as np
from sklearn.isotonic import IsotonicRegression

#: Quantile levels each band keeps (0.5 % steps): ranges at any coverage, and the failure-time distribution the plan uses.
LEVELS = np.linspace(0.0, 1.0, 201)
DEFAULT_COVERAGE = 0.9
RISK_STEPS = 4  # the failure probability is calibrated to failing within each quarter of its horizon


def validate_coverage(coverage: float) -> float:
    if not 0.5 <= coverage < 1:
        raise ValueError(f"interval coverage must be in [0.5, 1), got {coverage}")
    return coverage


@dataclass(frozen=True)
class RulIntervals:
    """Residual quantiles per band of predicted RUL (and per band x risk level); `edges` are the bands' inner boundaries."""

    edges: np.ndarray  # (bands - 1,)
    quantiles: np.ndarray  # (bands, len(LEVELS)) residual quantiles of each band, finite-sample corrected
    cap: float  # RUL labels are capped here; ranges are clipped to [0, cap]
    coverage: float = DEFAULT_COVERAGE  # the coverage `range` gives by default
    #: Mean true RUL of the training rows whose RUL reached the cap: what a quantile at the cap stands for when the
    #: plan counts the life a service throws away (a capped label says only "at least the cap").
    beyond_cap: float | None = None
    risk_edges: np.ndarray = field(default_factory=lambda: np.zeros(0))  # failure probabilities between risk levels
    cell_quantiles: np.ndarray | None = None  # (bands * risk levels, len(LEVELS)); a sparse cell holds its band's
    #: The failure model's probability mapped to the share of out-of-fold rows that failed within each of
    #: RISK_STEPS equal parts of its horizon (isotonic per part; rows: `risk_grid`, columns: the parts' ends). Boosted
    #: trees push probabilities towards 0 and 1 (out of fold, 0.2 % said 7 % came true); the plan needs the true shares.
    risk_grid: np.ndarray | None = None
    risk_table: np.ndarray | None = None
    risk_horizon: float | None = None

    def near_term_risk(self, probability: np.ndarray, hours: np.ndarray) -> np.ndarray:
        """P(failure within `hours`), from the calibrated failure probability (held at the horizon's beyond it); zeros
        without a calibration. Broadcasts `probability` against `hours`."""
        shape = np.broadcast_shapes(np.shape(probability), np.shape(hours))
        if self.risk_table is None or not self.risk_horizon:
            return np.zeros(shape)
        p, t = np.broadcast_to(np.nan_to_num(probability), shape).ravel(), np.broadcast_to(hours, shape).ravel()
        steps = self.risk_table.shape[1]
        by_step = np.column_stack([np.zeros(len(p))] + [np.interp(p, self.risk_grid, self.risk_table[:, k]) for k in range(steps)])
        at = np.clip(t, 0.0, self.risk_horizon) / self.risk_horizon * steps
        below = np.minimum(np.floor(at).astype(int), steps - 1)
        rows = np.arange(len(p))
        risk = by_step[rows, below] + (at - below) * (by_step[rows, below + 1] - by_step[rows, below])
        return risk.reshape(shape)

    def _quantiles(self, pred: np.ndarray, probability: np.ndarray | None) -> np.ndarray:
        band = np.searchsorted(self.edges, pred, side="right")
        if probability is None or self.cell_quantiles is None:
            return self.quantiles[band]
        level = np.searchsorted(self.risk_edges, np.where(np.isnan(probability), 0.0, probability), side="right")
        return self.cell_quantiles[band * (len(self.risk_edges) + 1) + level]

    def distribution(self, pred: np.ndarray, probability: np.ndarray | None = None) -> np.ndarray:
        """Each prediction's RUL quantiles at LEVELS (rows ascending)."""
        return pred[:, None] + self._quantiles(pred, probability)

    def range(self, pred: np.ndarray, coverage: float | None = None,
              probability: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper RUL at `coverage` (the calibrated one by default) for each prediction: of the windows of its
        distribution that hold `coverage` of it, the narrowest once clipped to [0, cap] (ties go to the equal-tailed one)."""
        lo, hi = _level_columns(self.coverage if coverage is None else coverage)
        starts = np.arange(len(LEVELS) - (hi - lo))  # each window's lower column; its upper one is `hi - lo` further
        q = self._quantiles(pred, probability)
        at = pred[:, None]
        # the range holds the point prediction too (near the cap, where nearly every truth is the cap, it may not otherwise)
        lower = np.clip(np.minimum(at + q[:, starts], at), 0.0, self.cap)
        upper = np.clip(np.maximum(at + q[:, starts + hi - lo], at), 0.0, self.cap)
        narrowest = np.argmin(upper - lower + 1e-9 * np.abs(starts - lo), axis=1)
        rows = np.arange(len(pred))
        return lower[rows, narrowest], upper[rows, narrowest]


@functools.lru_cache
def _level_columns(coverage: float) -> tuple[int, int]:
    """The columns of LEVELS holding a range's lower and upper end at `coverage`."""
    validate_coverage(coverage)
    lo, hi = np.searchsorted(LEVELS, [(1 - coverage) / 2, (1 + coverage) / 2])
    return min(int(lo), len(LEVELS) - 1), min(int(hi), len(LEVELS) - 1)


def _conformal_levels(n: int) -> np.ndarray:
    """LEVELS widened by the split-conformal correction for `n` calibration residuals: the ceil((n + 1) q) / n-th."""
    lower = np.floor((n + 1) * LEVELS - 1) / n
    upper = np.ceil((n + 1) * LEVELS) / n
    return np.clip(np.where(LEVELS < 0.5, lower, upper), 0.0, 1.0)


def _cell_quantiles(residuals: np.ndarray, cell: np.ndarray, cells: int, fallback: np.ndarray, min_rows: int) -> np.ndarray:
    """Each cell's corrected residual quantiles; a cell with fewer than `min_rows` rows takes `fallback[cell]`."""
    out = np.array(fallback, dtype=float, copy=True)
    for c in range(cells):
        rows = residuals[cell == c]
        if len(rows) >= min_rows:
            out[c] = np.quantile(rows, _conformal_levels(len(rows)))
    return out


def fit_intervals(truth: np.ndarray, pred: np.ndarray, cap: float, coverage: float = DEFAULT_COVERAGE,
                  bands: int = 10, min_per_band: int = 200, beyond_cap: float | None = None,
                  probability: np.ndarray | None = None, risk_edges: tuple[float, ...] = ()) -> RulIntervals:
    """Calibrate on out-of-fold predictions: bands of equal count of the predicted RUL (fewer when rows are few), and
    with `probability` and `risk_edges` (the failure model's out-of-fold probability, the risk levels' boundaries),
    band x risk-level cells."""
    validate_coverage(coverage)
    keep = np.isfinite(truth) & np.isfinite(pred)
    truth, pred = truth[keep], pred[keep]
    if len(truth) < 20:
        raise ValueError(f"calibrating RUL ranges needs at least 20 out-of-fold predictions with a known RUL, got {len(truth)}")
    n_bands = int(max(1, min(bands, len(truth) // min_per_band)))
    edges = np.unique(np.quantile(pred, np.linspace(0, 1, n_bands + 1)[1:-1]))
    band = np.searchsorted(edges, pred, side="right")
    residuals = truth - pred
    everything = np.quantile(residuals, _conformal_levels(len(residuals)))
    quantiles = _cell_quantiles(residuals, band, len(edges) + 1, np.tile(everything, (len(edges) + 1, 1)), 1)
    cell_quantiles, levels = None, np.asarray(risk_edges, float)
    if probability is not None and len(levels):
        probability = np.asarray(probability)[keep]
        known = np.isfinite(probability)
        level = np.searchsorted(levels, np.nan_to_num(probability), side="right")
        per_band = len(levels) + 1
        cell = np.where(known, band * per_band + level, -1)
        cell_quantiles = _cell_quantiles(residuals, cell, (len(edges) + 1) * per_band, np.repeat(quantiles, per_band, axis=0),
                                         min_per_band // 2)
    return RulIntervals(edges=edges, quantiles=quantiles, cap=cap, coverage=coverage, beyond_cap=beyond_cap,
                        risk_edges=levels, cell_quantiles=cell_quantiles)


def fit_risk(probability: np.ndarray, hours_to_failure: np.ndarray, horizon: float, steps: int = RISK_STEPS) -> dict:
    """`RulIntervals`' risk fields from out-of-fold failure probabilities and each row's hours to its next failure
    (inf when none came; only rows watched for the whole horizon or that failed within it)."""
    grid = np.unique(np.concatenate([[0.0, 1.0], np.quantile(probability, np.linspace(0, 1, 201))]))
    table = np.column_stack([
        IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(probability, hours_to_failure <= horizon * (k + 1) / steps)
        .predict(grid) for k in range(steps)])
    return {"risk_grid": grid, "risk_table": np.maximum.accumulate(table, axis=1), "risk_horizon": float(horizon)}


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


def out_of_fold_ranges(truth: np.ndarray, pred: np.ndarray, folds: np.ndarray, cap: float, coverage: float = DEFAULT_COVERAGE,
                       probability: np.ndarray | None = None, risk_edges: tuple[float, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Each fold's ranges calibrated on the other folds' residuals: coverage judged on rows the calibration never saw."""
    lower, upper = np.full(len(pred), np.nan), np.full(len(pred), np.nan)
    for fold in np.unique(folds):
        inside = folds == fold
        fitted = fit_intervals(truth[~inside], pred[~inside], cap, coverage, probability=None if probability is None else probability[~inside],
                               risk_edges=risk_edges)
        lower[inside], upper[inside] = fitted.range(pred[inside], probability=None if probability is None else probability[inside])
    return lower, upper
