"""Model assets materialized in-process on a small simulated fleet, with a real sqlite MLflow store."""

import datetime as dt
import importlib.metadata
from pathlib import Path

import duckdb
import polars as pl
import mlflow
import pytest
from mlflow import MlflowClient

from pm_assets.drivers.runner import materialize
from pm_assets.sources.simulator import FleetConfig
from pm_assets.storage import paths, registry
from tests.pipeline.conftest import model_config, warehouse_with_features

FLEET = FleetConfig(n_machines=12, n_days=60, readings_per_day=24, seed=9)


@pytest.fixture(scope="module")
def warehouse_ready(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PM_DATA_DIR", str(tmp_path_factory.mktemp("models") / "data"))
        _, days = warehouse_with_features(FLEET, FLEET.n_days)
        yield days


@pytest.fixture
def own_registry(warehouse_ready, tmp_path, monkeypatch):
    """An MLflow store of the test's own: no test depends on what another registered."""
    monkeypatch.setenv("PM_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return warehouse_ready


def test_model_assets_register_a_champion_and_score_the_fleet(own_registry, instance):
    materialize("training_set", instance_=instance)
    result = materialize("catboost_model lightgbm_model champion_model", instance_=instance, run_config=model_config())
    materialize("fleet_scores", (own_registry[1], own_registry[1]), instance_=instance)
    assert result.success
    champion = registry.alias_version(registry.CHAMPION)
    assert champion is not None

    mlflow.set_tracking_uri(registry.tracking_uri())
    runs = mlflow.search_runs(experiment_names=[registry.EXPERIMENT], filter_string="tags.dagster_asset = 'lightgbm_model'")
    assert len(runs) == 1
    assert runs["metrics.rul_rmse"][0] > 0 and runs["tags.dagster_run_id"][0] == result.run_id
    # each library's RUL ranges, judged out of fold: coverage near the nominal 90 %, and their mean width
    assert 0.8 < runs["metrics.rul_interval_coverage"][0] <= 1 and runs["metrics.rul_interval_width"][0] > 0
    # the training set is a bounded sample of each machine life, and MLflow says how it was drawn
    assert 0 < int(runs["params.sampling_sampled_rows"][0]) < int(runs["params.sampling_rows_in_window"][0])
    assert int(runs["params.sampling_rows_per_life"][0]) > 0 and int(runs["params.sampling_lives"][0]) >= FLEET.n_machines
    artifacts = {a.path for a in MlflowClient().list_artifacts(runs["run_id"][0])}
    assert {"predicted_vs_true.png", "feature_importance.png", "precision_recall.png"} <= artifacts
    # the logged model says what loading it needs: its own library, this package, at the versions installed
    requirements = mlflow.pyfunc.get_model_dependencies(f"runs:/{runs['run_id'][0]}/model")
    pinned = dict(line.split("==") for line in Path(requirements).read_text().splitlines() if "==" in line)
    assert pinned["lightgbm"] == importlib.metadata.version("lightgbm") and "pm-platform" in pinned and "catboost" not in pinned

    versions = {str(v.version): v for v in MlflowClient().search_model_versions(f"name='{registry.MODEL_NAME}'")}
    assert len(versions) == 2
    rmse = {v: float(MlflowClient().get_run(versions[v].run_id).data.metrics["rul_rmse"]) for v in versions}
    assert champion == min(rmse, key=rmse.get)  # the better candidate won

    with duckdb.connect(str(paths.warehouse_path()), read_only=True) as con:
        scores = con.sql("select * from scores.fleet_scores").pl()
    assert scores.height == FLEET.n_machines
    assert scores["failure_probability"].is_between(0, 1).all()
    assert set(scores["risk_level"]) <= {"low", "medium", "high"}
    assert (scores["model_version"] == champion).all()
    snapshot = pl.read_parquet(paths.fleet_scores_snapshot_path())  # what the scoring service serves by machine id
    assert snapshot.sort("machine_id").select("machine_id", "rul_hours", "risk_level").equals(
        scores.sort("machine_id").select("machine_id", "rul_hours", "risk_level"))
    assert ((scores["rul_lower"] <= scores["rul_hours"]) & (scores["rul_hours"] <= scores["rul_upper"])).all()


def test_the_maintenance_plan_services_within_capacity_and_lands_in_sql_and_a_snapshot(own_registry, instance):
    day = own_registry[1]
    materialize("training_set catboost_model lightgbm_model champion_model", instance_=instance, run_config=model_config())
    materialize("fleet_scores", (day, day), instance_=instance)
    config = {"capacity": 1, "horizon_days": 5, "failure_cost": 50_000.0, "booked": {"M0003": str(day + dt.timedelta(days=2))}}
    result = materialize("maintenance_plan", (day, day), instance_=instance, run_config={"ops": {"maintenance_plan": {"config": config}}})
    with duckdb.connect(str(paths.warehouse_path()), read_only=True) as con:
        planned = con.sql("select * from scores.maintenance_plan").pl()
    assert planned.height == FLEET.n_machines and (planned["plan_date"] == day).all()
    services = planned.filter("service")
    assert services.group_by("planned_day").len()["len"].max() <= 1  # the crew's capacity
    assert services["planned_day"].is_between(day + dt.timedelta(days=1), day + dt.timedelta(days=5)).all()
    assert planned.filter(machine_id="M0003")["planned_day"].item() == day + dt.timedelta(days=2)  # the booking holds
    assert pl.read_parquet(paths.maintenance_plan_snapshot_path()).sort("machine_id").equals(planned.sort("machine_id"))
    [event] = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["services_planned"] == services.height and "M0003" in metadata["schedule"]
    # a bad setting stops the asset with one line naming it
    bad = materialize("maintenance_plan", (day, day), instance_=instance, raise_on_error=False,
                      run_config={"ops": {"maintenance_plan": {"config": {"capacity": 0}}}})
    assert not bad.success


def test_a_new_model_becomes_the_challenger_not_the_champion(own_registry, instance):
    materialize("training_set catboost_model lightgbm_model champion_model", instance_=instance, run_config=model_config())
    before = registry.alias_version(registry.CHAMPION)
    assert before is not None
    result = materialize("catboost_model lightgbm_model champion_model", instance_=instance,
                         run_config=model_config(iterations=2, learning_rate=0.01))
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "champion_model"]
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["decision"] == "challenger in shadow"
    assert metadata["challenger_cv_rul_rmse"] > metadata["champion_cv_rul_rmse"]  # both estimates are recorded
    assert registry.alias_version(registry.CHAMPION) == before
    assert registry.alias_version(registry.CHALLENGER) == metadata["challenger_version"] != before


@pytest.mark.slow
def test_a_champion_of_other_features_is_replaced_not_shadowed(own_registry, instance):
    """After the feature spec is refitted, the old champion cannot score the stored features: the new model takes over."""
    materialize("training_set catboost_model lightgbm_model champion_model", instance_=instance, run_config=model_config())
    old = registry.alias_version(registry.CHAMPION)
    materialize("feature_spec", instance_=instance, run_config={"ops": {"feature_spec": {"config": {"windows": [5, 20]}}}})
    materialize("machine_features", own_registry, instance_=instance)
    result = materialize("training_set catboost_model lightgbm_model champion_model", instance_=instance, run_config=model_config())
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "champion_model"]
    decision = event.materialization.metadata["decision"].value
    assert decision.startswith("champion replaced") and registry.alias_version(registry.CHAMPION) not in (None, old)
    assert registry.alias_version(registry.CHALLENGER) is None
    # put the module's features back for the other tests
    materialize("feature_spec", instance_=instance)
    materialize("machine_features", own_registry, instance_=instance)


def test_machine_trends_show_the_served_rul_and_each_sensor_against_its_baseline(own_registry, instance):
    first, day = own_registry[1] - dt.timedelta(days=1), own_registry[1]
    materialize("training_set catboost_model lightgbm_model champion_model", instance_=instance, run_config=model_config())
    champion = registry.alias_version(registry.CHAMPION)
    materialize("catboost_model lightgbm_model champion_model", instance_=instance, run_config=model_config(iterations=2, learning_rate=0.01))
    challenger = registry.alias_version(registry.CHALLENGER)
    assert challenger not in (None, champion)  # scored in shadow beside the champion: its RULs must not be drawn
    materialize("champion_predictions", (first, day), instance_=instance)
    result = materialize("fleet_scores machine_trends", (day, day), instance_=instance)
    trends = pl.read_parquet(paths.machine_trends_snapshot_path())
    with duckdb.connect(str(paths.warehouse_path()), read_only=True) as con:
        served = con.sql(f"select * from monitoring.predictions where model_version = '{champion}'").pl()
        scored = con.sql("select machine_id from scores.fleet_scores").pl()
    assert set(trends["machine_id"]) == set(scored["machine_id"])
    assert (trends["ts"].dt.hour() % 6 == 0).all() and trends["ts"].max() < dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    # each step's RUL is the champion's prediction of the step's last reading
    last = served.with_columns(pl.col("ts").dt.truncate("6h").alias("step")).sort("ts").group_by("machine_id", "step").last()
    joined = trends.join(last, left_on=["machine_id", "ts"], right_on=["machine_id", "step"])
    assert joined.height == trends.filter(pl.col("rul_hours").is_not_null()).height > 0
    assert (joined["rul_hours"] - joined["predicted_rul"]).abs().max() < 1e-9
    assert (joined["rul_lower"] <= joined["rul_hours"]).all() and (joined["rul_hours"] <= joined["rul_upper"]).all()
    sensors = registry.load_version(champion).bundle.feature_spec.sensors
    assert set(trends.columns) == {"machine_id", "ts", "rul_hours", "rul_lower", "rul_upper", *sensors}
    # distances from the life baseline in standard deviations, not raw sensor units (in the hundreds)
    assert trends.select(pl.col(sensors[0]).abs().median()).item() < 5
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "machine_trends"]
    assert event.materialization.metadata["machines"].value == scored.height
