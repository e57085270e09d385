import re

import polars as pl
import pytest

from pm_assets.drivers.cli import main


def test_benchmark_command_predicts_every_test_unit(cmapss_dir, tmp_path, capsys):
    out = tmp_path / "predictions.csv"
    main(["benchmark", "cmapss", "--data-dir", str(cmapss_dir), "--subset", "FD001", "--out", str(out), "--iterations", "40"])
    predictions = pl.read_csv(out)
    assert predictions.columns == ["unit", "rul_pred", "rul_lower", "rul_upper"]
    assert predictions["unit"].to_list() == list(range(1, 101))
    assert predictions["rul_pred"].is_between(0, 125).all()
    assert (predictions["rul_lower"] <= predictions["rul_pred"]).all() and (predictions["rul_pred"] <= predictions["rul_upper"]).all()
    assert predictions["rul_pred"].std() > 10  # it tells engines apart
    printed = capsys.readouterr().out
    assert "CV at" in printed and "RMSE" in printed and "no RUL_FDxxx.txt" in printed
    # engine-grouped CV at random cut points: published FD001 models reach 12-18 RMSE; a broken feature or
    # label pipeline lands near 40 (the spread of capped RUL itself)
    cv_rmse = [float(m.group(1)) for m in re.finditer(r"CV at \d+ cut points: RMSE ([0-9.]+)", printed)]
    assert len(cv_rmse) == 3 and min(cv_rmse) < 20, printed
    # the ranges hold about their 90 %, judged with each engine's fold left out of the calibration
    coverage = float(re.search(r"RUL ranges hold ([0-9.]+)%", printed).group(1))
    assert 85 < coverage < 95, printed


@pytest.mark.slow
def test_benchmark_of_all_subsets_prints_one_table_and_writes_each_file(cmapss_dir, tmp_path, capsys):
    main(["benchmark", "cmapss", "--data-dir", str(cmapss_dir), "--subset", "all", "--out", str(tmp_path / "p.csv"), "--iterations", "20"])
    units = {subset: pl.read_csv(tmp_path / f"p_{subset}.csv")["unit"].to_list() for subset in ("FD001", "FD002", "FD003", "FD004")}
    assert {s: len(u) for s, u in units.items()} == {"FD001": 100, "FD002": 259, "FD003": 100, "FD004": 248}
    table = capsys.readouterr().out.split("CV RUL RMSE")[1].splitlines()
    rows = {line.split()[0]: line.split() for line in table[2:6]}
    assert {s: int(r[1]) for s, r in rows.items()} == {"FD001": 1, "FD002": 6, "FD003": 1, "FD004": 6}  # operating regimes found
    assert all(0 < float(v) < 60 for r in rows.values() for v in r[2:5])


def test_train_on_one_subset_and_predict_another_s_test_engines(cmapss_dir, tmp_path, capsys):
    out = tmp_path / "fd001_to_fd003.csv"
    main(["benchmark", "cmapss", "--data-dir", str(cmapss_dir), "--train", "FD001", "--test", "FD003", "--out", str(out), "--iterations", "20"])
    predictions = pl.read_csv(out)
    assert predictions.columns == ["unit", "rul_pred", "rul_lower", "rul_upper"]
    assert predictions["unit"].to_list() == list(range(1, 101)) and predictions["rul_pred"].is_between(0, 125).all()
    assert "100 test units of FD003" in capsys.readouterr().out


def test_the_transfer_matrix_judges_every_ordered_pair_beside_each_subset_s_own_cv(cmapss_dir):
    from pm_assets.core.models import TrainConfig
    from pm_assets.experiments.cmapss_benchmark import matrix_table, transfer_matrix

    pairs = ("FD001", "FD003")  # one fault mode, two: the same flight condition
    rmse = transfer_matrix(cmapss_dir, TrainConfig(iterations=20, n_folds=3), subsets=pairs, log=lambda line: None)
    assert set(rmse) == {(a, b) for a in pairs for b in pairs}
    assert all(0 < value < 60 for value in rmse.values())
    # a model that never saw FD003's second fault mode does worse there than FD003's own engine-grouped CV
    assert rmse["FD001", "FD003"] > rmse["FD003", "FD003"]
    table = matrix_table(rmse, pairs)
    assert "(own)" in table and f"({rmse['FD001', 'FD003'] / rmse['FD003', 'FD003']:.1f}x)" in table


@pytest.mark.parametrize("arguments, message", [
    (["--subset", "all", "--test", "FD002"], "--test predicts one subset with the model of one --train subset, not all"),
    (["--transfer-matrix", "--test", "FD002"], "--transfer-matrix judges every ordered pair of subsets itself: drop --test"),
])
def test_transfer_arguments_that_cannot_work_stop_with_one_line(arguments, message, tmp_path):
    with pytest.raises(SystemExit) as stopped:
        main(["benchmark", "cmapss", "--data-dir", str(tmp_path), *arguments])
    assert str(stopped.value.code).startswith(f"pm: error: {message}")


def test_regimes_refitted_on_the_served_engines_readings_carry_a_model_to_new_flight_conditions(cmapss_dir):
    """FD001 runs in one flight condition, FD002 in six. Fitted on FD001's readings alone, the spec puts all six in one
    regime and normalises them wrongly; fitted on FD001's and FD002's readings (never FD002's labels), it finds the six
    and a model trained on FD001's engines alone predicts FD002's far better."""
    import numpy as np

    from pm_assets.core.features import FeatureConfig, fit_feature_spec
    from pm_assets.core.models import LIBRARIES, TrainConfig
    from pm_assets.experiments.cmapss_benchmark import served_spec, transfer_rmse
    from pm_assets.sources.loaders.cmapss import load_cmapss

    train, served = load_cmapss(cmapss_dir / "train_FD001.txt"), load_cmapss(cmapss_dir / "train_FD002.txt")

    def rmse(spec) -> float:
        return transfer_rmse(train, served, spec, TrainConfig(iterations=60), LIBRARIES[:1])

    alone = fit_feature_spec(train.telemetry, FeatureConfig())
    refitted = served_spec(train.telemetry, served.telemetry, FeatureConfig(), seed=0)
    assert (len(alone.regime_centers), len(refitted.regime_centers)) == (1, 6)
    assert rmse(refitted) < 0.6 * rmse(alone)
    # served engines in the training engines' regimes (FD003: the same flight condition) leave the spec as it was
    same = served_spec(train.telemetry, load_cmapss(cmapss_dir / "train_FD003.txt").telemetry, FeatureConfig(), seed=0)
    assert np.array_equal(same.regime_mean, alone.regime_mean) and same.sensors == alone.sensors
