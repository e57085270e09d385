"""Scores by machine id, from the fleet snapshot the daily pipeline publishes, hot-swapped when it is replaced."""

import datetime as dt
import re
import time

import polars as pl
import pytest
from litestar.testing import TestClient

from pm_assets.storage import paths, shared_snapshots
from pm_assets.storage.atomic import write_atomic
from pm_serving.app import create_app
from pm_serving.metrics import EXPORTED
from pm_serving.settings import Settings

from .conftest import machine_payload


@pytest.fixture
def client(served_data_dir):
    with TestClient(app=create_app(Settings(poll_seconds=0.1))) as c:
        yield c


def test_a_machine_s_latest_score_and_404_for_an_unknown_one(client):
    snapshot = pl.read_parquet(paths.fleet_scores_snapshot_path())
    row = snapshot.row(3, named=True)
    body = client.get(f"/machines/{row['machine_id']}").json()
    assert body["rul_hours"] == pytest.approx(row["rul_hours"]) and body["risk_level"] == row["risk_level"]
    assert body["failure_probability"] == pytest.approx(row["failure_probability"])
    assert body["model_version"] == row["model_version"] and body["as_of"].startswith(row["ts"].isoformat()[:16])
    missing = client.get("/machines/NO-SUCH-MACHINE")
    assert missing.status_code == 404 and "NO-SUCH-MACHINE" in missing.json()["error"]


def test_the_worklist_is_most_urgent_first_and_filters_by_risk(client):
    everything = client.get("/machines", params={"limit": 1000}).json()
    ranks = {"high": 0, "medium": 1, "low": 2}
    keys = [(ranks[m["risk_level"]], -m["failure_probability"]) for m in everything["machines"]]
    assert keys == sorted(keys) and everything["total"] == len(everything["machines"]) == 10
    low = client.get("/machines", params={"risk": "low", "limit": 2}).json()
    assert low["total"] == sum(m["risk_level"] == "low" for m in everything["machines"]) and len(low["machines"]) <= 2
    assert all(m["risk_level"] == "low" for m in low["machines"])
    assert client.get("/machines", params={"risk": "purple"}).status_code == 400
    assert client.get("/machines", params={"limit": 0}).status_code == 400


def test_a_new_snapshot_is_served_without_a_restart(client):
    path = paths.fleet_scores_snapshot_path()
    before = pl.read_parquet(path)
    machine = before["machine_id"][0]
    changed = before.with_columns(pl.when(pl.col("machine_id") == machine).then(1.5).otherwise(pl.col("rul_hours")).alias("rul_hours"),
                                  pl.lit("high").alias("risk_level"))
    try:
        write_atomic(path, changed.write_parquet)
        deadline = time.monotonic() + 10
        while client.get(f"/machines/{machine}").json()["rul_hours"] != 1.5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get(f"/machines/{machine}").json()["rul_hours"] == 1.5
        assert client.get("/machines", params={"risk": "high"}).json()["total"] == 10
    finally:
        write_atomic(path, before.write_parquet)


def test_the_plan_and_each_machine_s_planned_day_and_range(client):
    scores = pl.read_parquet(paths.fleet_scores_snapshot_path())
    plan_date = scores["ts"].max().date()
    first = plan_date + dt.timedelta(days=1)
    ids = scores["machine_id"].to_list()
    planned = pl.DataFrame({
        "plan_date": [plan_date] * len(ids), "machine_id": ids, "service": [i < 2 for i in range(len(ids))],
        "planned_day": [first + dt.timedelta(days=i) if i < 2 else None for i in range(len(ids))],
        "day_index": [i if i < 2 else None for i in range(len(ids))], "expected_cost_saved": [900.0, 500.0] + [0.0] * (len(ids) - 2),
        "failure_risk": [0.2] * len(ids), "cost_without_service": [3000.0] * len(ids), "rul_hours": scores["rul_hours"],
        "rul_lower": scores["rul_lower"], "rul_upper": scores["rul_upper"], "reason": ["why"] * len(ids), "model_version": ["1"] * len(ids)})
    # the monitoring assets' latest figures, as drift_report and model_performance publish them
    shared_snapshots.publish_figures("drift", {"day": "2025-03-01", "drifted_share": 0.25, "prediction_psi": float("nan")})
    shared_snapshots.publish_figures("performance", {"day": "2025-03-01", "failures_caught": 3, "failures_missed": 1,
                                                     "live_rul_rmse": 21.5, "rul_range_coverage": 0.875})
    shared_snapshots.publish_figures("drift", {"day": "2025-02-27", "drifted_share": 0.5})  # a backfilled earlier day: not the latest
    write_atomic(paths.maintenance_plan_snapshot_path(), planned.write_parquet)
    try:
        deadline = time.monotonic() + 5
        while (body := client.get("/plan", params={"days": 7})).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        plan = body.json()
        assert plan["first_day"] == first.isoformat() and [s["machine_id"] for s in plan["services"]] == ids[:2]
        assert plan["expected_cost_saved"] == 1400.0 and set(plan["services"][0]) >= {"planned_day", "rul_lower", "rul_upper", "reason"}
        assert [s["machine_id"] for s in client.get("/plan", params={"days": 1}).json()["services"]] == ids[:1]
        assert client.get("/plan", params={"days": 0}).status_code == 400
        machine = client.get(f"/machines/{ids[1]}").json()
        assert machine["planned_day"] == (first + dt.timedelta(days=1)).isoformat()
        assert machine["rul_lower"] <= machine["rul_hours"] <= machine["rul_upper"]
        assert client.get(f"/machines/{ids[3]}").json()["planned_day"] is None
        assert client.get(f"/machines/{ids[3]}").json()["plan_reason"] == "why"  # the plan's word on a machine it does not service too
        # the fleet and its plan in /metrics, beside every other metric the dashboards may query
        assert client.post("/predict", json=machine_payload()).status_code == 200
        metrics = client.get("/metrics").text
        assert set(EXPORTED) - {"pm_fleet_prediction_psi"} <= {line.split("{")[0].split(" ")[0] for line in metrics.splitlines()
                                                               if line.startswith("pm_")}
        assert 'pm_fleet_planned_services{plan_day="1"} 1.0' in metrics and 'pm_fleet_planned_services{plan_day="2"} 1.0' in metrics
        assert "pm_fleet_plan_expected_cost_saved 1400.0" in metrics
        assert 'pm_fleet_matured_failures{outcome="caught"} 3.0' in metrics and 'pm_fleet_matured_failures{outcome="missed"} 1.0' in metrics
        assert "pm_fleet_live_rul_rmse 21.5" in metrics and "pm_fleet_rul_range_coverage 0.875" in metrics
        assert "pm_fleet_drifted_sensor_share 0.25" in metrics and "\npm_fleet_prediction_psi " not in metrics  # not judged: no sample
        by_risk = re.findall(r'^pm_fleet_machines\{risk_level="(\w+)"\} (\S+)$', metrics, re.MULTILINE)
        assert sum(float(n) for _, n in by_risk) == len(ids) and {level for level, _ in by_risk} == {"low", "medium", "high"}
    finally:
        for path in (paths.maintenance_plan_snapshot_path(), paths.monitoring_snapshot_path("drift"), paths.monitoring_snapshot_path("performance")):
            path.unlink()
