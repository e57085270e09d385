import dataclasses
import datetime as dt

import numpy as np
import polars as pl
import pytest

from pm_assets.core.features import (FeatureConfig, assign_regimes, build_features, fit_feature_spec, outside_regimes,
                                     regimes_changed, thinly_learned_regimes)
from pm_assets.core.labels import LabelConfig, build_labels
from pm_assets.experiments import quarters
from pm_assets.sources.loaders.cmapss import load_cmapss
from pm_assets.sources.simulator import DriftScenario, FleetConfig, simulate_fleet

T0 = dt.datetime(2025, 1, 1)


@pytest.fixture(scope="module")
def fleet():
    f = simulate_fleet(FleetConfig(n_machines=6, n_days=30, readings_per_day=24, seed=2, fault_rate=0))
    return f


def test_changing_a_future_reading_changes_no_past_feature(fleet):
    readings = fleet.telemetry.sort("machine_id", "ts")
    spec = fit_feature_spec(readings, FeatureConfig(windows=(5, 20)))
    before = build_features(readings, spec, fleet.events)
    machine = readings["machine_id"][0]
    cut = readings.filter(pl.col("machine_id") == machine)["ts"][300]
    tampered = readings.with_columns(
        pl.when((pl.col("machine_id") == machine) & (pl.col("ts") > cut)).then(pl.col("^sensor_.*$") * 5 + 100).otherwise(pl.col("^sensor_.*$")).name.keep()
    )
    after = build_features(tampered, spec, fleet.events)
    past = (pl.col("machine_id") == machine) & (pl.col("ts") <= cut)
    assert before.filter(past).equals(after.filter(past))
    future = (pl.col("machine_id") == machine) & (pl.col("ts") > cut)
    assert not before.filter(future).equals(after.filter(future))  # the tampering did reach the features


def test_features_are_regime_normalised_and_constant_sensors_dropped():
    rng = np.random.default_rng(0)
    n = 2000
    regime = rng.integers(0, 3, n)
    frame = pl.DataFrame({
        "machine_id": [f"M{i % 20}" for i in range(n)],  # 20 machines: each one's first readings in a regime make its normaliser
        "ts": [T0 + dt.timedelta(hours=i) for i in range(n)],
        "op_setting_1": regime * 10.0 + rng.normal(0, 0.01, n),
        "op_setting_2": np.ones(n),
        "sensor_01": 100 + 50 * regime + rng.normal(0, 1, n),  # moves with the regime only
        "sensor_02": np.full(n, 7.0),  # constant
    })
    spec = fit_feature_spec(frame)
    assert len(spec.regime_centers) == 3
    assert spec.sensors == ["sensor_01"]
    features = build_features(frame, spec)
    assert abs(features["sensor_01__now"].std() - 1) < 0.1  # the regime steps are gone, only noise is left


def test_deviations_see_a_move_of_any_sensor_from_the_life_baseline():
    """A sensor the failure modes seen so far never moved, moving now (a new failure mode), shows in the
    sensor-agnostic deviations as much as a move of any other sensor would."""
    rng = np.random.default_rng(3)
    n, sensors = 200, 4
    rows = {"machine_id": ["M0"] * n + ["M1"] * n, "ts": [T0 + dt.timedelta(hours=h) for h in range(n)] * 2}
    for s in range(sensors):
        rows[f"sensor_0{s}"] = rng.normal(0, 1, 2 * n)
    shift = np.where(np.arange(n) >= 150, 4.0, 0.0)  # 4 standard deviations from reading 150 on
    rows["sensor_00"][:n] += shift  # M0: the first sensor moves
    rows["sensor_03"][n:] += shift  # M1: the last one
    frame = pl.DataFrame(rows)
    spec = fit_feature_spec(frame.filter(pl.col("ts") < T0 + dt.timedelta(hours=150)))  # the moves never seen
    features = build_features(frame, spec).with_columns(pl.int_range(pl.len()).over("machine_id").alias("i"))
    settled, healthy = features.filter(pl.col("i") >= 170), features.filter(pl.col("i").is_between(40, 140))
    for machine in ("M0", "M1"):
        moved, calm = settled.filter(pl.col("machine_id") == machine), healthy.filter(pl.col("machine_id") == machine)
        assert moved["deviation_max"].min() > 2.5 > calm["deviation_max"].max()
        assert abs(moved["deviation_rms"].mean() - 4 / np.sqrt(sensors)) < 0.5


def test_a_regime_only_young_machines_ran_in_is_normalised_like_one_worn_machines_ran_in():
    """Regime 0 has machines of every age, regime 1 (entered last) only young ones: a reading of a machine of a
    given wear is as many standard deviations from its regime's normaliser in either regime."""
    rng = np.random.default_rng(1)
    machines, hours = 30, 200
    rows = []
    for m in range(machines):
        young = m >= machines // 2  # these run only their first 40 hours, in regime 1
        regime = int(young)
        for h in range(40 if young else hours):
            rows.append({"machine_id": f"M{m}", "ts": T0 + dt.timedelta(hours=h), "op_setting_1": 10.0 * regime + rng.normal(0, 0.01),
                         "sensor_01": 100 + 50 * regime + 0.1 * h + rng.normal(0, 1)})  # wear: +0.1 per hour
    frame = pl.DataFrame(rows)
    spec = fit_feature_spec(frame)
    assert len(spec.regime_centers) == 2
    regimes = assign_regimes(frame, spec)
    by_setting = frame.with_columns(pl.Series("regime", regimes)).group_by("regime").agg(pl.col("op_setting_1").mean()).sort("op_setting_1")
    old, new = by_setting["regime"].to_list()
    z = lambda value, r: float(spec.normalized(np.array([[value]]), np.array([r]))[0, 0])  # noqa: E731
    worn = 0.1 * 150  # 150 hours of wear
    a, b = z(100 + worn, old), z(150 + worn, new)
    assert abs(a - b) < 0.15 * abs(a), (a, b)  # learned from all readings: 0.9 and 8.6
    assert abs(z(100, old)) < 1 and abs(z(150, new)) < 1  # a new machine is near its regime's normaliser in both


def test_a_new_regime_is_carried_over_to_the_known_one_and_keeps_what_the_map_never_saw():
    rng = np.random.default_rng(3)
    machines, hours = 40, 300
    h = np.tile(np.arange(hours), machines)
    regime = (rng.random(machines * hours) < 0.4).astype(int)  # every machine switches regimes reading by reading
    response = np.where(regime == 1, 0.3, 1.0)  # in regime 1 the sensors move a third as much with the same wear
    wear = 0.01 * h
    columns = {  # four sensors that move with wear (each alone noisy: together they tell the wear well)
        f"sensor_0{k + 1}": 100 * (k + 1) + 20 * regime + sign * response * wear + rng.normal(0, 0.3, h.size)
        for k, sign in enumerate((1, -1, 0.8, -0.6))}
    frame = pl.DataFrame({
        "machine_id": np.repeat([f"M{m:02d}" for m in range(machines)], hours),
        "ts": [T0 + dt.timedelta(hours=int(x)) for x in h],
        "op_setting_1": 10.0 * regime + rng.normal(0, 0.01, h.size),
        **columns,
        "sensor_05": 5 + 3 * regime + rng.normal(0, 1, h.size),  # never moves with wear in the fitted readings
    })
    before = fit_feature_spec(frame.filter(pl.Series(regime == 0)))  # what the models knew: regime 0 alone
    assert fit_feature_spec(frame).regime_map is None  # a spec fitted afresh knows every regime: nothing to carry over
    spec = fit_feature_spec(frame, previous=before)
    fitted = assign_regimes(frame, spec)
    reference = fitted[regime == 0][0]
    assert spec.carried_over == [1 - reference] and before.carried_over == []  # only the new regime is carried over
    assert fit_feature_spec(frame, previous=spec).carried_over == [1 - reference]  # ... and again at the next refit
    values = frame.select(spec.sensors).to_numpy()
    z, unmapped = spec.normalized(values, fitted), dataclasses.replace(spec, regime_map=None).normalized(values, fitted)
    other = 1 - reference

    def ratio(z: np.ndarray, k: int) -> float:  # how much regime 1's wear moves sensor k, against the reference regime's
        return np.polyfit(h[fitted == other], z[fitted == other, k], 1)[0] / np.polyfit(h[fitted == reference], z[fitted == reference, k], 1)[0]

    for k in range(4):  # the map takes most of the difference away (all of it only where the sensors tell the wear exactly)
        assert ratio(unmapped, k) < 0.4 and abs(ratio(z, k) - 1) < 0.5 * abs(ratio(unmapped, k) - 1), (k, ratio(z, k), ratio(unmapped, k))
    shifted = values.copy()
    shifted[:, 4] += 5 * spec.regime_std[fitted, 4]  # a sensor the map never saw move (a new failure mode, say)
    moved = spec.normalized(shifted, fitted) - z
    assert np.allclose(moved[fitted == other, 4], 5, rtol=0.2) and np.abs(moved[:, :4]).max() < 0.5
    with_gap = values.copy()
    with_gap[0, 4] = np.nan  # a missing reading stays missing and moves no other sensor
    gap = spec.normalized(with_gap, fitted)
    assert np.isnan(gap[0, 4]) and np.isfinite(gap[0, :4]).all()


def test_features_need_the_sensors_they_were_trained_on(fleet):
    spec = fit_feature_spec(fleet.telemetry)
    with pytest.raises(ValueError, match="sensor_03"):
        build_features(fleet.telemetry.drop("sensor_03"), spec)


def _events(*rows):
    return pl.DataFrame([{"machine_id": "A", "ts": T0 + dt.timedelta(hours=h), "event_type": kind} for h, kind in rows],
                        schema={"machine_id": pl.String, "ts": pl.Datetime("us"), "event_type": pl.String})


def _readings(hours: int):
    return pl.DataFrame({"machine_id": ["A"] * hours, "ts": [T0 + dt.timedelta(hours=h) for h in range(hours)]})


def test_rul_is_capped_and_zero_at_the_failure():
    labels = build_labels(_readings(200), _events((199, "failure")), LabelConfig(rul_cap_hours=125, horizon_hours=48))
    rul = labels["rul"].to_list()
    assert rul[199] == 0 and rul[150] == 49 and rul[0] == 125
    assert labels["fails_within_horizon"][151] == 1 and labels["fails_within_horizon"][150] == 0


def test_censored_rows_are_not_labelled_no_failure():
    # watched for 100 hours, never failed: the last 48 hours cannot say "no failure within 48 hours"
    labels = build_labels(_readings(100), _events(), LabelConfig(rul_cap_hours=60, horizon_hours=48))
    horizon = labels["fails_within_horizon"].to_list()
    assert horizon[51] == 0 and horizon[52] is None
    rul = labels["rul"].to_list()
    assert rul[39] == 60 and rul[41] is None  # the cap is known only while 60 hours of watching remain


def test_maintenance_ends_the_trajectory():
    # maintenance at hour 50 restores health: the failure at 150 is not the fate of readings before 50
    labels = build_labels(_readings(151), _events((50, "maintenance"), (150, "failure")), LabelConfig(rul_cap_hours=125, horizon_hours=48))
    assert labels["rul"][10] is None  # only 40 hours watched before the maintenance, no failure in them
    assert labels["fails_within_horizon"][0] == 0  # 50 hours without failure covers a 48-hour horizon
    assert labels["fails_within_horizon"][10] is None
    assert labels["rul"][60] == 90  # after the maintenance, the failure counts


@pytest.mark.parametrize(("subset", "conditions"), [("FD001", 1), ("FD002", 6), ("FD003", 1), ("FD004", 6)])
def test_regimes_are_the_operating_conditions_of_cmapss(cmapss_dir, subset, conditions):
    """FD002/FD004 fly six conditions, two of them close (altitude 35 and 42 kft at the same Mach and TRA)."""
    train = load_cmapss(cmapss_dir / f"train_{subset}.txt")
    spec = fit_feature_spec(train.telemetry)
    assert len(spec.regime_centers) == conditions
    if conditions > 1:  # each condition is one regime: its readings' altitudes lie within 1 kft of each other
        regimes = assign_regimes(train.telemetry, spec)
        spread = train.telemetry.with_columns(pl.Series("regime", regimes)).group_by("regime").agg(
            (pl.col("op_setting_1").max() - pl.col("op_setting_1").min()).alias("altitude_range"))
        assert spread["altitude_range"].max() < 1.0, spread


@pytest.mark.parametrize(("drift", "changed"), [("new_regime", True), ("recalibration", False)])
def test_a_new_operating_regime_is_found_on_its_first_day(drift, changed):
    """However few of the readings it holds, a new flight condition is a regime of its own; a recalibrated sensor is not one."""
    fleet = simulate_fleet(FleetConfig(n_machines=20, n_days=32, seed=3, drift=DriftScenario(drift, start_day=30, machine_share=1.0)))
    before = fleet.telemetry.filter(pl.col("ts") < T0 + dt.timedelta(days=30))
    with_one_day = fleet.telemetry.filter(pl.col("ts") < T0 + dt.timedelta(days=31))
    spec = fit_feature_spec(before)
    assert len(spec.regime_centers) == 3 and not regimes_changed(spec, before)
    assert regimes_changed(spec, with_one_day) == changed
    assert len(fit_feature_spec(with_one_day).regime_centers) == 3 + changed
    # reading by reading: the new day's readings in the new condition lie outside every known regime, no others do
    new_day = fleet.telemetry.filter(pl.col("ts") >= T0 + dt.timedelta(days=30))
    outside = outside_regimes(new_day, spec)
    assert not outside_regimes(before, spec).any()
    assert outside.any() == changed
    if changed:  # the new condition (the simulator's fourth: setting 3 at 80, the known ones at 60 and 100) is what is flagged
        assert 0.1 < outside.mean() < 1 and new_day.filter(pl.Series(outside))["op_setting_3"].is_between(75, 85).all()
    assert not outside_regimes(new_day, dataclasses.replace(spec, regime_radius=None)).any()  # a spec saved before radii


@pytest.mark.parametrize("known", ["FD002", "FD004"])
def test_a_fleet_trained_on_one_flight_condition_flags_the_others_and_none_of_its_own(cmapss_dir, known):
    fd001 = fit_feature_spec(load_cmapss(cmapss_dir / "train_FD001.txt").telemetry)
    other = load_cmapss(cmapss_dir / f"train_{known}.txt").telemetry
    outside = outside_regimes(other, fd001)
    sea_level = (other["op_setting_1"].abs() < 0.1).to_numpy()  # FD001's own condition is one of the six
    assert outside[~sea_level].all() and not outside[sea_level].any()
    assert not outside_regimes(other, fit_feature_spec(other)).any()
    # refitted on FD001 and the first 10 readings of two new engines (a handful a condition), it knows the conditions
    first = other.filter(pl.col("machine_id").is_in(other["machine_id"].unique().sort()[:2].to_list())).group_by("machine_id").head(10)
    fd001_readings = load_cmapss(cmapss_dir / "train_FD001.txt").telemetry
    refitted = fit_feature_spec(pl.concat([fd001_readings, first], how="diagonal_relaxed"))
    assert len(refitted.regime_centers) == 6 and not outside_regimes(other, refitted).any()
    # ... but thinly: once the new conditions' readings are many, their five regimes are learned again, FD001's is not
    everything = pl.concat([fd001_readings, other], how="diagonal_relaxed")
    sea = int(assign_regimes(fd001_readings.head(1), refitted)[0])
    assert thinly_learned_regimes(fd001_readings, refitted) == []
    assert thinly_learned_regimes(everything, refitted) == [r for r in range(6) if r != sea]
    assert thinly_learned_regimes(everything, fit_feature_spec(everything)) == []
    # learned again, they are carried over to FD001's condition, which the thin refit had too few pairs to do
    assert refitted.carried_over == []
    relearned = fit_feature_spec(everything, previous=refitted)
    new_conditions = [r for r in range(6) if r != int(assign_regimes(fd001_readings.head(1), relearned)[0])]
    assert relearned.carried_over == new_conditions
    assert fit_feature_spec(everything, previous=relearned).carried_over == new_conditions  # and stay so


def test_the_replays_daily_oracle_learns_a_new_condition_only_once_it_has_flown():
    """The daily-retrain oracle's features on a morning are those the readings before it allow: the new flight condition
    (from day 30) is unknown to the spec of day 30's morning and known to day 31's, and no day's spec changes when the
    readings after it are dropped."""
    fleet = simulate_fleet(FleetConfig(n_machines=20, n_days=33, seed=3, drift=DriftScenario("new_regime", start_day=30, machine_share=1.0)))
    days = [T0 + dt.timedelta(days=d) for d in (29, 30, 31, 32)]
    specs = quarters.specs_by_day(fleet.telemetry, days, FeatureConfig(), log=lambda line: None)
    assert [len(specs[d].regime_centers) for d in days] == [3, 3, 4, 4]
    assert specs[days[0]] is specs[days[1]]  # kept while the readings run in the regimes it knows
    for day in days:
        alone = quarters.specs_by_day(fleet.telemetry.filter(pl.col("ts") < day), days, FeatureConfig(), log=lambda line: None)[day]
        assert np.array_equal(alone.regime_centers, specs[day].regime_centers)
