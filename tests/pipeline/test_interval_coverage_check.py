"""`interval_coverage` fails on a model whose ranges are too narrow, passes a calibrated one, and waits for evidence."""

import numpy as np
import polars as pl

from pm_assets.core.intervals import fit_intervals
from pm_assets.core.labels import LabelConfig
from pm_assets.core.models import ModelBundle
from pm_assets.defs.assets.performance import PerformanceConfig, coverage_check


def _bundle(intervals) -> ModelBundle:
    return ModelBundle("lightgbm", None, LabelConfig(), None, None, 0.5, intervals=intervals)


def _matured(noise_sd: float, machines: int = 20, per_machine: int = 30, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    pred = rng.uniform(0, 100, machines * per_machine)
    return pl.DataFrame({"machine_id": np.repeat([f"M{i}" for i in range(machines)], per_machine),
                         "rul": pred + rng.normal(0, noise_sd, len(pred)), "predicted_rul": pred}), pred


def _with_ranges(rows: pl.DataFrame, bundle: ModelBundle) -> pl.DataFrame:
    lower, upper = bundle.rul_range(rows["predicted_rul"].to_numpy())
    return rows.with_columns(pl.Series("rul_lower", lower), pl.Series("rul_upper", upper))


def test_a_miscalibrated_model_fails_and_a_calibrated_one_passes():
    calibration, pred = _matured(noise_sd=5.0, seed=1)
    calibrated = _bundle(fit_intervals(calibration["rul"].to_numpy(), pred, cap=1e9))
    overconfident = _bundle(fit_intervals(pred + np.random.default_rng(2).normal(0, 1.0, len(pred)), pred, cap=1e9))
    live, _ = _matured(noise_sd=5.0, seed=3)
    passed = coverage_check(_with_ranges(live, calibrated), calibrated, PerformanceConfig(), "2025-03-01")
    failed = coverage_check(_with_ranges(live, overconfident), overconfident, PerformanceConfig(), "2025-03-01")
    assert passed.passed and abs(passed.metadata["live_coverage"].value - 0.9) < 0.05
    assert not failed.passed and failed.metadata["live_coverage"].value < 0.5
    assert "nominal 90%" in failed.description


def test_too_little_evidence_is_not_judged():
    live, pred = _matured(noise_sd=5.0, machines=3, seed=4)  # 90 rows of 3 machines
    overconfident = _bundle(fit_intervals(pred, pred + 1e-3, cap=1e9))
    result = coverage_check(_with_ranges(live, overconfident), overconfident, PerformanceConfig(), "2025-03-01")
    assert result.passed and result.description.startswith("not judged")
