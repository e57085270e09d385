"""Model assets materialized in-process on a small simulated fleet, with a real sqlite MLflow store."""

import duckdb
import mlflow
import pytest
from mlflow import MlflowClient

from pm_assets import landing, paths, registry
from pm_assets.runner import INGEST_STAGES, materialize, run_stages
from pm_assets.simulator import FleetConfig, simulate_fleet

FLEET = FleetConfig(n_machines=12, n_days=60, readings_per_day=24, seed=9)
QUICK = {"iterations": 60, "n_folds": 3}


def _candidates(**overrides) -> dict:
    config = {**QUICK, **overrides}
    return {"ops": {"catboost_model": {"config": config}, "lightgbm_model": {"config": config}}}


@pytest.fixture(scope="module")
def warehouse_ready(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PM_DATA_DIR", str(tmp_path_factory.mktemp("models") / "data"))
        fleet = simulate_fleet(FLEET)
        days = landing.land_dataset(fleet, paths.landing_dir())
        run_stages(INGEST_STAGES, (days[0], days[-1]), log=lambda line: None)
        yield fleet


def test_model_assets_register_a_champion_and_score_the_fleet(warehouse_ready, instance):
    result = materialize("training_set catboost_model lightgbm_model champion_model fleet_scores", instance_=instance,
                         run_config=_candidates())
    assert result.success
    champion = registry.alias_version(registry.CHAMPION)
    assert champion is not None

    mlflow.set_tracking_uri(registry.tracking_uri())
    runs = mlflow.search_runs(experiment_names=[registry.EXPERIMENT], filter_string="tags.dagster_asset = 'lightgbm_model'")
    assert len(runs) == 1
    assert runs["metrics.rul_rmse"][0] > 0 and runs["tags.dagster_run_id"][0] == result.run_id
    artifacts = {a.path for a in MlflowClient().list_artifacts(runs["run_id"][0])}
    assert {"predicted_vs_true.png", "feature_importance.png", "precision_recall.png"} <= artifacts

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


def test_a_new_model_becomes_the_challenger_not_the_champion(warehouse_ready, instance):
    before = registry.alias_version(registry.CHAMPION)
    assert before is not None, "runs after the test that registers the first champion"
    result = materialize("catboost_model lightgbm_model champion_model", instance_=instance,
                         run_config=_candidates(iterations=2, learning_rate=0.01))
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "champion_model"]
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["decision"] == "challenger in shadow"
    assert metadata["challenger_cv_rul_rmse"] > metadata["champion_cv_rul_rmse"]  # both estimates are recorded
    assert registry.alias_version(registry.CHAMPION) == before
    assert registry.alias_version(registry.CHALLENGER) == metadata["challenger_version"] != before
