import numpy as np
import pytest

from pm_assets.core.drift import drifted_share, fit_reference, fit_relations, psi


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


def _related(rng, rows: int, wear: float):
    """Four sensors driven by one wear level (up to `wear`), plus noise."""
    health = rng.uniform(0, wear, rows)
    return np.column_stack([k * health + rng.normal(0, 0.1, rows) for k in (2, -1, 1.5, 1)])


def test_relations_ignore_wear_but_see_a_recalibrated_sensor():
    rng = np.random.default_rng(0)
    columns = ["a", "b", "c", "d"]
    relations = fit_relations(_related(rng, 20_000, wear=1.0), columns)
    reference = relations.residuals(_related(rng, 20_000, wear=1.0))
    profile = fit_reference(dict(zip(columns, reference.T)), np.zeros(20_000, int))

    def scores(matrix):
        return psi(profile, dict(zip(columns, relations.residuals(matrix).T)), np.zeros(len(matrix), int)).scores

    young_fleet = _related(rng, 2_000, wear=0.3)  # every level far from the reference mix, relations intact
    recalibrated = _related(rng, 2_000, wear=1.0) + [0.3, 0, 0, 0]
    assert max(scores(young_fleet).values()) < 0.1
    assert scores(recalibrated)["a"] > 0.25


def test_relations_need_complete_rows():
    with pytest.raises(ValueError, match="too few complete rows"):
        fit_relations(np.full((10, 3), np.nan), ["a", "b", "c"])
