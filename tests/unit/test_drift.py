import numpy as np
import pytest

from pm_assets.drift import drifted_share, fit_reference, psi


def _stream(rng, rows: int, shift: float = 0.0, mix=(0.5, 0.3, 0.2)):
    regimes = rng.choice(3, rows, p=mix)
    return {"a": rng.normal(0, 1, rows) + regimes * 4 + shift, "b": rng.normal(10, 2, rows) + regimes}, regimes


@pytest.fixture
def reference():
    data, regimes = _stream(np.random.default_rng(0), 30_000)
    return fit_reference(data, regimes)


@pytest.mark.parametrize("seed", range(5))
def test_unshifted_data_does_not_fire(reference, seed):
    data, regimes = _stream(np.random.default_rng(100 + seed), 5_000)
    result = psi(reference, data, regimes)
    assert max(result.scores.values()) < 0.05
    assert drifted_share(result.scores) == 0


@pytest.mark.parametrize("seed", range(5))
def test_shifted_data_fires_on_the_shifted_column_only(reference, seed):
    data, regimes = _stream(np.random.default_rng(200 + seed), 5_000, shift=1.0)
    data["b"] = np.random.default_rng(300 + seed).normal(10, 2, 5_000) + regimes  # b unshifted
    result = psi(reference, data, regimes)
    assert result.scores["a"] > 0.25 and result.scores["b"] < 0.05
    assert drifted_share(result.scores) == 0.5


def test_a_new_regime_mix_is_not_drift(reference):
    data, regimes = _stream(np.random.default_rng(7), 10_000, mix=(0.1, 0.2, 0.7))
    assert drifted_share(psi(reference, data, regimes).scores) == 0


def test_too_few_rows_in_a_regime_are_not_judged(reference):
    data, regimes = _stream(np.random.default_rng(8), 30)
    result = psi(reference, data, regimes)
    assert result.per_regime == {} and all(np.isnan(v) for v in result.scores.values())
