import numpy as np
import polars as pl
import pytest
from scipy.stats import ks_2samp

from pm_assets.sources.simulator import FAILURE_MODES, DriftScenario, FleetConfig, simulate_fleet

SMALL = FleetConfig(n_machines=20, n_days=60, readings_per_day=24, seed=7)


def test_same_seed_gives_the_same_fleet():
    a, b = simulate_fleet(SMALL), simulate_fleet(SMALL)
    assert a.telemetry.equals(b.telemetry)
    assert a.events.equals(b.events)
    assert a.machines.equals(b.machines)


def test_another_seed_gives_another_fleet():
    a = simulate_fleet(SMALL)
    b = simulate_fleet(FleetConfig(n_machines=20, n_days=60, readings_per_day=24, seed=8))
    assert not a.telemetry.equals(b.telemetry)


def test_size_and_schema_follow_the_config():
    fleet = simulate_fleet(FleetConfig(n_machines=5, n_days=10, readings_per_day=12, n_sensors=9, seed=1))
    sensors = [c for c in fleet.telemetry.columns if c.startswith("sensor_")]
    assert sensors == [f"sensor_{i:02d}" for i in range(1, 10)]
    assert fleet.telemetry["machine_id"].n_unique() == 5
    # at most one reading per slot plus the re-sent duplicates; downtime after failures removes some
    assert 0.7 * 5 * 10 * 12 < fleet.telemetry.height <= 5 * 10 * 12 * 1.01


@pytest.mark.parametrize(
    "bad",
    [dict(n_machines=0), dict(n_sensors=4), dict(fault_rate=-1)],
)
def test_bad_config_is_refused_with_the_field_named(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        FleetConfig(**bad)


def test_unknown_drift_is_refused():
    with pytest.raises(ValueError, match="unknown drift scenario"):
        DriftScenario("meteor", 3)


def test_sensor_faults_are_present():
    t = simulate_fleet(SMALL).telemetry
    assert t["sensor_01"].is_nan().sum() > 0  # missing values
    assert t.select("machine_id", "ts").is_duplicated().sum() > 0  # duplicated timestamps
    clean = simulate_fleet(FleetConfig(n_machines=20, n_days=60, readings_per_day=24, seed=7, fault_rate=0)).telemetry
    assert clean["sensor_01"].is_nan().sum() == 0
    assert clean.select("machine_id", "ts").is_duplicated().sum() == 0


def test_every_failure_is_followed_by_a_repair_and_maintenance_happens():
    events = simulate_fleet(SMALL).events
    counts = dict(events.group_by("event_type").len().iter_rows())
    assert counts["failure"] > 5 and counts["maintenance"] > 5
    assert counts["repair"] >= counts["failure"] - SMALL.n_machines  # a failure near the end may be unrepaired yet


def _shift_before_failures(fleet, hours_before: tuple[int, int]) -> list[float]:
    """Shift of each failure's own mode sensors, `hours_before` the failure, in units of noise."""
    t = fleet.telemetry.with_columns(pl.col("^sensor_.*$").fill_nan(None))
    shifts = []
    for machine_id, ts, mode in fleet.events.filter(pl.col("event_type") == "failure").select("machine_id", "ts", "failure_mode").iter_rows():
        readings = t.filter(pl.col("machine_id") == machine_id)
        window = readings.filter(
            (pl.col("ts") <= ts - pl.duration(hours=hours_before[1])) & (pl.col("ts") > ts - pl.duration(hours=hours_before[0]))
        )
        healthy = readings.filter(pl.col("ts") < ts - pl.duration(days=60))  # long before: mostly healthy
        if window.height < 5 or healthy.height < 48:
            continue
        per_sensor = []
        for sensor, direction in FAILURE_MODES[mode].items():
            name = f"sensor_{sensor + 1:02d}"
            noise = healthy[name].std()
            per_sensor.append(direction * (window[name].median() - healthy[name].median()) / noise)
        shifts.append(float(np.mean(per_sensor)))
    return shifts


def test_sensors_lead_failures_by_days():
    fleet = simulate_fleet(FleetConfig(n_machines=40, n_days=150, readings_per_day=24, seed=3))
    last_day = _shift_before_failures(fleet, (24, 0))
    days_3_to_5 = _shift_before_failures(fleet, (120, 72))
    assert len(last_day) >= 10
    # in the failure's own direction: clearly in the last day, and already days before
    assert np.median(last_day) > 1.0
    assert np.median(days_3_to_5) > 0.4
    assert np.median(last_day) > np.median(days_3_to_5)


def _centered(fleet, column: str, start_day: int) -> tuple[np.ndarray, np.ndarray]:
    """Readings before and after `start_day`, each machine centred on its own median before it."""
    cut = pl.datetime(2025, 1, 1) + pl.duration(days=start_day)
    t = fleet.telemetry.with_columns(pl.col(column).fill_nan(None)).drop_nulls(column)
    t = t.with_columns((pl.col(column) - pl.col(column).filter(pl.col("ts") < cut).median().over("machine_id")).alias("v"))
    return t.filter(pl.col("ts") < cut)["v"].to_numpy(), t.filter(pl.col("ts") >= cut)["v"].to_numpy()


@pytest.mark.parametrize(
    "scenario, column, share",
    # a failure mode moves its sensors only while a life degrades: on every machine, not half, to show on the fleet
    [("recalibration", "sensor_01", 0.5), ("new_regime", "op_setting_1", 0.5), ("new_failure_mode", "sensor_07", 1.0)],
)
def test_drift_scenarios_move_distributions(scenario, column, share):
    base = FleetConfig(n_machines=30, n_days=80, readings_per_day=24, seed=11)
    drifted = simulate_fleet(FleetConfig(**{**base.__dict__, "drift": DriftScenario(scenario, start_day=40, machine_share=share)}))
    plain = simulate_fleet(base)
    drift_before, drift_after = _centered(drifted, column, 40)
    plain_before, plain_after = _centered(plain, column, 40)
    moved = ks_2samp(drift_after, plain_after).statistic
    assert moved > 0.05
    assert moved > 3 * ks_2samp(drift_before, plain_before).statistic


def test_new_failure_mode_appears_only_after_its_start():
    fleet = simulate_fleet(FleetConfig(n_machines=30, n_days=80, seed=11, drift=DriftScenario("new_failure_mode", 40)))
    electrical = fleet.events.filter(pl.col("failure_mode") == "electrical")
    assert electrical.height > 0
    assert electrical["ts"].min().date().isoformat() > "2025-02-10"


def test_the_new_failure_mode_takes_over_healthy_lives_and_fails_them_within_weeks():
    """Lives not yet degrading when the mode appears fail by it soon: a stream of a few weeks sees those failures
    (a mode that only new lives could get would wait for the next repair, months away)."""
    start = 40
    config = FleetConfig(n_machines=40, n_days=start + 20, seed=11, drift=DriftScenario("new_failure_mode", start, machine_share=1.0))
    fleet = simulate_fleet(config)
    failures = fleet.events.filter(pl.col("event_type") == "failure")
    cut = pl.datetime(2025, 1, 1) + pl.duration(days=start)
    after = failures.filter(pl.col("ts") >= cut)
    assert after.filter(pl.col("failure_mode") == "electrical").height >= 0.5 * after.height > 0
    assert failures.filter(pl.col("ts") < cut, pl.col("failure_mode") == "electrical").is_empty()
    # on machines the drift leaves alone, nothing changes
    untouched = simulate_fleet(FleetConfig(**{**config.__dict__, "drift": DriftScenario("new_failure_mode", start, machine_share=1e-9)}))
    assert untouched.events.filter(pl.col("failure_mode") == "electrical").is_empty()
