"""The shadow promotion gate on real logged predictions: a better challenger replaces the champion, a worse one is
kept waiting while the evidence is thin and dropped when its trial ends, and each verdict is recorded in the asset
metadata and in MLflow. The champion's rows from before a trial whose truth came after the challenger's training set
count too; and failures since the newest training set request a retraining once there are enough of them."""

import datetime as dt

import mlflow
import pytest

from pm_assets.core.constants import FAILURE, PARTITION_START
from pm_assets.defs.assets.performance import PerformanceConfig, new_failures_check
from pm_assets.drivers.runner import materialize
from pm_assets.sources.simulator import FleetConfig
from pm_assets.storage import paths, registry, warehouse
from tests.pipeline.conftest import warehouse_with_features

pytestmark = pytest.mark.slow  # the slow end-to-end tier: `make test-slow`

HISTORY, SHADOW = 40, 7  # healthy rows' RUL labels mature after 125 h: a shadow lasts about a week
FLEET = FleetConfig(n_machines=16, n_days=HISTORY + 2 * SHADOW, readings_per_day=24, seed=5)
GATE = {"ops": {"challenger_gate": {"config": {"min_rows": 100}}}}


def _train(iterations: int) -> dict:
    config = {"iterations": iterations, "n_folds": 2, "learning_rate": 0.1 if iterations > 5 else 0.001}
    result = materialize("training_set catboost_model lightgbm_model champion_model",
                         run_config={"ops": {"catboost_model": {"config": config}, "lightgbm_model": {"config": config}}})
    return _metadata(result, "champion_model")


def _metadata(result, asset: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _shadow_days(first: int, last: int) -> dict:
    """Ingest the days and log both models' predictions (each row sees only its past), then ask the gate on the last day."""
    days = (PARTITION_START + dt.timedelta(days=first), PARTITION_START + dt.timedelta(days=last))
    materialize("raw_telemetry raw_events dbt_daily_models machine_features champion_predictions", days)
    return _gate(days[1])


def _gate(day: dt.date, **config) -> dict:
    run_config = {"ops": {"challenger_gate": {"config": {**GATE["ops"]["challenger_gate"]["config"], **config}}}}
    return _metadata(materialize("challenger_gate", (day, day), run_config=run_config), "challenger_gate")


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PM_DATA_DIR", str(tmp_path_factory.mktemp("promotion") / "data"))
        warehouse_with_features(FLEET, HISTORY)
        yield


def test_the_gate_promotes_a_better_challenger_and_drops_a_worse_one(history):
    weak = _train(iterations=2)
    assert weak["decision"] == "first champion"
    strong = _train(iterations=80)
    assert strong["decision"] == "challenger in shadow"
    assert registry.alias_version(registry.CHAMPION) == weak["champion_version"]

    verdict = _shadow_days(HISTORY, HISTORY + SHADOW - 1)
    assert verdict["decision"] == "promoted", verdict
    assert verdict["rows"] >= 100 and verdict["challenger_rul_rmse"] < verdict["champion_rul_rmse"]
    assert registry.alias_version(registry.CHAMPION) == strong["challenger_version"]
    assert registry.alias_version(registry.CHALLENGER) is None
    assert verdict["reference"]["champion_version"] == strong["challenger_version"]  # drift is now watched against the new one
    # ... on the last days it was proven on in shadow, up to the promotion day, not on its training window's end
    promoted_day = PARTITION_START + dt.timedelta(days=HISTORY + SHADOW - 1)
    assert verdict["reference"]["to"] == str(dt.datetime.combine(promoted_day + dt.timedelta(days=1), dt.time()))
    assert verdict["reference"]["from"] == str(dt.datetime.combine(promoted_day - dt.timedelta(days=6), dt.time()))

    worse = _train(iterations=2)
    assert worse["decision"] == "challenger in shadow"
    verdict = _shadow_days(HISTORY + SHADOW, HISTORY + 2 * SHADOW - 1)
    # no machine failed in this week: healthy rows alone do not decide, nor does a difference the machines do not bear out
    assert verdict["decision"] == "waiting" and "0 of them failed" in verdict["why"], verdict
    # the champion's rows of the week before, unlabelled when the challenger was trained, matured since: they count too
    assert verdict["earlier_rows"] > 0 and verdict["rows"] == verdict["trial_rows"] + verdict["earlier_rows"], verdict
    assert registry.alias_version(registry.CHALLENGER) == worse["challenger_version"]
    verdict = _gate(PARTITION_START + dt.timedelta(days=HISTORY + 2 * SHADOW - 1), min_failures=0, max_shadow_days=5)
    assert verdict["decision"] == "challenger expired", verdict  # undecided past its trial: dropped
    assert verdict["comparison_lower"] <= 0 < verdict["comparison_difference"]  # worse on these rows, not clearly over machines
    assert verdict["challenger_rul_rmse"] > verdict["champion_rul_rmse"]
    assert registry.alias_version(registry.CHAMPION) == strong["challenger_version"]
    assert registry.alias_version(registry.CHALLENGER) is None

    mlflow.set_tracking_uri(registry.tracking_uri())
    runs = mlflow.search_runs(experiment_names=[registry.EXPERIMENT], filter_string="tags.decision = 'challenger expired'")
    assert len(runs) == 1 and runs["metrics.challenger_live_rul_rmse"][0] > runs["metrics.champion_live_rul_rmse"][0]


@pytest.fixture
def trained_then_watched(tmp_path, monkeypatch):
    """A model trained on the first days of a fleet, and the days after it ingested."""
    monkeypatch.setenv("PM_DATA_DIR", str(tmp_path / "data"))
    warehouse_with_features(FLEET, HISTORY)
    _train(iterations=2)
    materialize("raw_telemetry raw_events dbt_daily_models", (PARTITION_START + dt.timedelta(days=HISTORY),
                                                              PARTITION_START + dt.timedelta(days=FLEET.n_days - 1)))
    return dt.datetime.combine(PARTITION_START + dt.timedelta(days=FLEET.n_days), dt.time())


def test_failures_since_the_newest_training_set_ask_for_a_new_model(trained_then_watched):
    end, newest = trained_then_watched, registry.newest_version()
    tags = registry.version_tags(newest)
    with warehouse.connect(paths.warehouse_path(), read_only=True) as con:
        new = con.execute("select count(*) from machine_events where event_type = $f and ts >= $since",
                          {"f": FAILURE, "since": dt.datetime.fromisoformat(tags["labels_as_of"])}).fetchone()[0]
        assert new > 0 and int(tags["failures"]) > 0
        enough = new_failures_check(con, PerformanceConfig(min_new_failures=new, new_failure_share=0), end, "day")
        too_few = new_failures_check(con, PerformanceConfig(min_new_failures=new + 1, new_failure_share=0), end, "day")
        by_share = new_failures_check(con, PerformanceConfig(min_new_failures=1, new_failure_share=(new + 1) / int(tags["failures"])),
                                      end, "day")
    assert not enough.passed and enough.metadata["new_failures"].value == new and enough.metadata["model_version"].value == newest
    assert too_few.passed and by_share.passed and by_share.metadata["retrain_from"].value == new + 1
