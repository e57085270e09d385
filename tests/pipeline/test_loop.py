"""End to end on a small fleet: history, first champion, a drifting stream, detection, retraining."""

import datetime as dt
import json

import dagster as dg
import duckdb
import pytest

from pm_assets.core.constants import PARTITION_START
from pm_assets.defs.sensors import SENSOR_NAME, retrain_on_failed_check
from pm_assets.drivers import loop
from pm_assets.drivers.runner import instance, materialize
from pm_assets.sources.simulator import DriftScenario, FleetConfig
from pm_assets.storage import feature_store, paths, registry
from tests.pipeline.conftest import model_config, warehouse_with_features

pytestmark = pytest.mark.slow  # the slow end-to-end tier: `make test-slow`

HISTORY, STREAM = 30, 3


def _first_champion_then_stream(drift: str) -> tuple[str, list[dt.date], loop.LoopSummary]:
    """A first champion on HISTORY days of a 20-machine fleet, then STREAM days streamed, `drift` from the second one."""
    # ~1,000 readings a day: fewer make daily PSI too noisy for the default thresholds
    config = FleetConfig(n_machines=20, n_days=HISTORY + STREAM, readings_per_day=48, seed=17,
                         drift=DriftScenario(drift, start_day=HISTORY + 1, machine_share=1.0))
    _, (_, history_end) = warehouse_with_features(config, HISTORY)
    materialize("training_set catboost_model lightgbm_model champion_model reference_profile", run_config=model_config())
    first = registry.alias_version(registry.CHAMPION)
    days = [history_end + dt.timedelta(days=i) for i in range(1, STREAM + 1)]
    summary = loop.stream(days, PARTITION_START + dt.timedelta(days=HISTORY + 1), log=lambda line: None,
                          retrain_config=model_config(), cooldown_hours=36)  # on the simulated clock: the next day is inside it
    return first, days, summary


def test_drift_is_detected_and_the_model_retrained(data_dir, monkeypatch):
    first, days, summary = _first_champion_then_stream("recalibration")

    assert summary.champion_before == first
    # the day before the drift is quiet; the drift is flagged on its first day, and retraining follows once
    assert summary.drift_detected_day == days[1].isoformat(), summary.days
    assert [c["day"] for c in summary.failed_checks] == [days[1].isoformat(), days[2].isoformat()]
    assert summary.days[0]["drifted_share"] <= 0.1 < summary.days[1]["drifted_share"]
    assert len(summary.retrain_runs) == 1  # the next failing day: the challenger in shadow decides first
    [retrain] = summary.retrains
    assert "feature_drift" in retrain["trigger"] and retrain["decision"] == "challenger in shadow"
    # the challenger predicts beside the champion from the next day on; a week of matured rows will decide
    assert summary.champion_after == first and registry.alias_version(registry.CHALLENGER) == retrain["challenger_version"]
    with duckdb.connect(str(paths.warehouse_path()), read_only=True) as con:
        logged = dict(con.sql("select ts::date::varchar, list(distinct model_version order by model_version) "
                              "from monitoring.predictions group by all").fetchall())
    assert logged == {days[0].isoformat(): [first], days[1].isoformat(): [first],
                      days[2].isoformat(): sorted([first, retrain["challenger_version"]])}
    written = json.loads((paths.data_dir() / "demo_summary.json").read_text())
    assert set(written) >= {"drift_start_day", "drift_detected_day", "retrain_runs", "champion_before", "champion_after",
                            "metric_before", "metric_after"}
    assert (paths.reports_dir() / f"drift_{days[1].isoformat()}.html").exists()
    assert not (paths.reports_dir() / f"drift_{days[0].isoformat()}.html").exists()  # a quiet day writes no Evidently report

    # in the Dagster instance, as the UI shows it: daily runs by job name, the sensor's ticks and the run one requested
    dagster = instance()
    daily_runs = dagster.get_runs(dg.RunsFilter(job_name="daily"))
    assert sorted(run.tags["dagster/partition"] for run in daily_runs) == [d.isoformat() for d in days]
    [retrain_run] = dagster.get_runs(dg.RunsFilter(job_name="retrain"))
    assert retrain_run.run_id == summary.retrain_runs[0]
    assert retrain_run.tags["pm/trigger_partition"] == days[1].isoformat() and retrain_run.tags["dagster/sensor_name"] == SENSOR_NAME
    # a recalibrated sensor is no new operating regime: the retraining kept the spec, and with it the stored features
    [spec_record] = dagster.fetch_materializations(dg.AssetKey("feature_spec"), limit=1).records
    assert spec_record.run_id == retrain_run.run_id and spec_record.asset_materialization.metadata["refitted"].value is False
    assert retrain_run.tags["dagster/run_key"].startswith("retrain-")
    # the daemon of `make ui` starts from the cursor the in-process evaluations kept: it does not request the retraining
    # again, whether it has no cursor of its own yet or an older one
    kept = json.loads(paths.retrain_sensor_cursor_path().read_text())
    assert kept["last_request_at"] > 0 and kept["last_record_id"] > 0
    assert not retrain_on_failed_check.evaluate_tick(dg.build_sensor_context(instance=dagster)).run_requests
    context = dg.build_sensor_context(instance=dagster, cursor=json.dumps({"last_record_id": 1}))
    assert not retrain_on_failed_check.evaluate_tick(context).run_requests


def test_a_new_operating_regime_refits_the_features_and_replaces_the_champion(data_dir, monkeypatch):
    """The retraining after a new flight condition refits the spec, recomputes the stored features with it and
    replaces the champion, which cannot score them; the old one is still judged on features of its own spec."""
    first, days, summary = _first_champion_then_stream("new_regime")

    [retrain] = summary.retrains
    assert retrain["day"] == days[1].isoformat() and retrain["decision"].startswith("champion replaced"), summary.retrains
    # the readings in the new condition failed `unknown_regimes` on its first day, and on no other: the refit knows it
    assert [c["day"] for c in summary.failed_checks if c["check"] == "unknown_regimes"] == [days[1].isoformat()]
    assert "unknown_regimes" in retrain["trigger"]
    healed = registry.load_version(summary.champion_after).bundle
    assert summary.champion_after != first and len(healed.feature_spec.regime_centers) == 4
    [spec_record] = instance().fetch_materializations(dg.AssetKey("feature_spec"), limit=1).records
    assert spec_record.asset_materialization.metadata["recomputed_days"].value == HISTORY + 2
    assert spec_record.asset_materialization.metadata["regimes_carried_over"].value == len(healed.feature_spec.carried_over)
    assert [d["champion"] for d in summary.days] == [first, first, summary.champion_after]
    # the frozen champion's rows, rebuilt from the readings with its own spec, are the stored rows' machines and times
    frozen = registry.load_version(first).bundle
    start = dt.datetime.combine(days[0], dt.time())
    end = dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time())
    with duckdb.connect(str(paths.warehouse_path()), read_only=True) as con:
        stored = feature_store.read_rows(con, start, end)
        rebuilt = feature_store.read_rows_of(con, frozen.feature_spec, start, end)
    assert feature_store.spec_id(frozen.feature_spec) != feature_store.spec_id(healed.feature_spec)
    assert rebuilt.select("machine_id", "ts").equals(stored.select("machine_id", "ts"))
    assert not rebuilt["regime"].equals(stored["regime"])  # the new condition's readings: nearest old regime vs its own
