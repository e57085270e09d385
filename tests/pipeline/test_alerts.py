"""The alert sensors against a real local HTTP receiver on loopback and a real temporary Dagster instance: the right
messages arrive once, a receiver answering 500 is retried and then recorded, and a receiver that is down holds
nothing up."""

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import polars as pl
import pytest

from pm_assets.defs import alerts
from pm_assets.defs.sensors import TRIGGER_CHECK_TAG, TRIGGER_PARTITION_TAG
from pm_assets.storage import paths
from pm_assets.storage.atomic import write_atomic


class Receiver:
    """A webhook receiver: records each JSON body; answers `failures` 500s first."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.hits = 0
        self.failures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.hits += 1
                if receiver.failures > 0:
                    receiver.failures -= 1
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"receiver broken")
                    return
                receiver.bodies.append(body)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def texts(self) -> list[str]:
        taken, self.bodies = [b["text"] for b in self.bodies], []
        return taken


@pytest.fixture
def receiver(data_dir, monkeypatch):
    received = Receiver()
    monkeypatch.setenv(alerts.WEBHOOK_ENV, received.url)
    monkeypatch.setenv("PM_PAGE_URL", "http://planner.example:8000")
    yield received
    received.server.shutdown()


def _evaluate(sensor: dg.SensorDefinition, instance) -> str:
    result = sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SkipReason)  # an alert sensor requests no run: it only tells
    return result.skip_message


def _publish(risk: dict[str, str], due: list[str], day: dt.date = dt.date(2025, 4, 1)) -> None:
    """Fleet scores with these risk levels, and the plan made on `day` servicing `due` on its first day (the day after)."""
    ids = sorted(risk)
    write_atomic(paths.fleet_scores_snapshot_path(), pl.DataFrame({
        "machine_id": ids, "rul_hours": [12.0] * len(ids), "rul_lower": [4.0] * len(ids), "rul_upper": [30.0] * len(ids),
        "failure_probability": [0.9 if risk[m] == "high" else 0.01 for m in ids], "risk_level": [risk[m] for m in ids],
        "top_sensors": [["sensor_04", "sensor_11"]] * len(ids)}).write_parquet)
    write_atomic(paths.maintenance_plan_snapshot_path(), pl.DataFrame({
        "plan_date": [day] * len(ids), "machine_id": ids, "service": [m in due for m in ids],
        "planned_day": [day + dt.timedelta(days=1) if m in due else None for m in ids],
        "reason": [f"why {m}" for m in ids]}).write_parquet)


def test_machines_are_announced_once_per_state_change_with_evidence_and_their_page(receiver, instance):
    _publish({"M1": "high", "M2": "low", "M3": "medium"}, due=["M2"])
    _evaluate(alerts.alert_machines, instance)
    first = sorted(receiver.texts())
    assert len(first) == 2
    assert first[0].startswith("Machine M1 entered high risk: RUL 12 h (90 %: 4–30 h), failure probability 90%")
    assert "sensor_04, sensor_11" in first[0] and first[0].endswith("http://planner.example:8000/#machine=M1")
    assert first[1].startswith("Machine M2: service planned for 2025-04-02") and "plan: why M2" in first[1]

    assert _evaluate(alerts.alert_machines, instance) == alerts.NOTHING_NEW and receiver.texts() == []  # debounced
    # the next day's plan: M1 leaves high risk, M3 enters it, M2 is still due (re-planned for the new first day)
    _publish({"M1": "low", "M2": "low", "M3": "high"}, due=["M2"], day=dt.date(2025, 4, 2))
    _evaluate(alerts.alert_machines, instance)
    assert [t.split(":")[0] for t in receiver.texts()] == ["Machine M3 entered high risk"]  # M2 stays due: told once
    _publish({"M1": "high", "M2": "low", "M3": "high"}, due=[])  # M1 is back: a new state change
    _evaluate(alerts.alert_machines, instance)
    assert [t.split(":")[0] for t in receiver.texts()] == ["Machine M1 entered high risk"]

    _publish({f"M{i:04d}": "high" for i in range(60)}, due=[])  # a fleet-wide shift: a bounded number of messages
    _evaluate(alerts.alert_machines, instance)
    flood = receiver.texts()
    assert len(flood) == 21 and flood[-1].startswith("40 more machines entered high risk")


@dg.asset(name="drift_report", check_specs=[dg.AssetCheckSpec("feature_drift", asset="drift_report")])
def drifted():
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name="feature_drift", passed=False, metadata={"partition": "2025-04-09", "drifted_share": 0.625},
                              description="5 of 8 sensors drifted (at most 10 %)")


@dg.asset(name="challenger_gate")
def promoted():
    return dg.MaterializeResult(metadata={"decision": "promoted", "champion_version": "7", "champion_version_before": "5",
                                          "champion_rul_rmse": 31.25, "challenger_rul_rmse": 22.5,
                                          "live_coverage": float("nan")})


@dg.asset(name="challenger_gate")
def nothing_to_judge():
    return dg.MaterializeResult(metadata={"decision": "no challenger", "champion_version": "7"})


@dg.asset(name="champion_model")
def kept():
    return dg.MaterializeResult(metadata={"decision": "kept", "champion_version": "7", "champion_version_before": "7"})


@dg.asset
def retrained():
    return dg.MaterializeResult()


def test_a_failed_check_a_retraining_and_a_promotion_are_each_told_once(receiver, instance):
    for sensor in (alerts.alert_failed_checks, alerts.alert_retraining, alerts.alert_promotions):
        _evaluate(sensor, instance)  # the first evaluation marks where telling starts
    assert receiver.texts() == []

    dg.materialize([drifted], instance=instance)
    _evaluate(alerts.alert_failed_checks, instance)
    [check] = receiver.texts()
    assert check.startswith("Check feature_drift of drift_report failed on 2025-04-09: 5 of 8 sensors drifted (at most 10 %)")
    assert "http://127.0.0.1:3000/runs/" in check

    job = dg.Definitions(assets=[retrained], jobs=[dg.define_asset_job("retrain", selection=[retrained])]).resolve_job_def("retrain")
    run = job.execute_in_process(instance=instance, tags={TRIGGER_CHECK_TAG: "feature_drift", TRIGGER_PARTITION_TAG: "2025-04-09"})
    _evaluate(alerts.alert_retraining, instance)
    assert receiver.texts() == [f"Retraining started (run {run.run_id[:8]}): requested because feature_drift failed on 2025-04-09 "
                                f"http://127.0.0.1:3000/runs/{run.run_id}"]

    dg.materialize([promoted], instance=instance)
    dg.materialize([kept], instance=instance)  # no change of champion: nothing to tell
    dg.materialize([nothing_to_judge], instance=instance)
    _evaluate(alerts.alert_promotions, instance)
    [promotion] = receiver.texts()
    assert promotion.startswith("Model v7 is the champion now (was v5): decision promoted") and "challenger_rul_rmse 22.5" in promotion
    assert "nan" not in promotion  # a figure not judged is left out

    for sensor in (alerts.alert_failed_checks, alerts.alert_retraining, alerts.alert_promotions):
        assert _evaluate(sensor, instance) == alerts.NOTHING_NEW
    assert receiver.texts() == []


def test_a_failing_receiver_is_retried_then_the_alert_is_kept_and_a_receiver_that_is_down_holds_nothing_up(receiver, instance):
    receiver.failures = 2  # two 500s, then it takes the message
    _publish({"M1": "high"}, due=[])
    assert "1 of 1 alert(s) delivered" in _evaluate(alerts.alert_machines, instance)
    assert receiver.hits == 3 and len(receiver.texts()) == 1

    receiver.failures, receiver.hits = 100, 0  # broken for good: four tries, then kept, and the sensor does not fail
    _publish({"M1": "high", "M2": "high", "M3": "high"}, due=[])
    outcome = _evaluate(alerts.alert_machines, instance)
    assert "0 of 2 alert(s) delivered" in outcome and "2 not delivered" in outcome
    assert receiver.hits == 4  # the second message is not tried once the receiver failed every try of the first
    kept = [json.loads(line) for line in (paths.alerts_dir() / "undelivered.jsonl").read_text().splitlines()]
    assert [k["payload"]["text"].split(":")[0] for k in kept] == ["Machine M2 entered high risk", "Machine M3 entered high risk"]
    assert kept[0]["problem"].startswith("HTTP 500: receiver broken (after 4 tries)")

    receiver.server.shutdown()
    receiver.server.server_close()  # nothing listens on the port any more
    _publish({"M1": "high", "M2": "high", "M3": "high", "M4": "high"}, due=[])
    started = time.monotonic()
    outcome = _evaluate(alerts.alert_machines, instance)
    assert "0 of 1 alert(s) delivered" in outcome and time.monotonic() - started < 10
    assert "ConnectError" in (paths.alerts_dir() / "undelivered.jsonl").read_text().splitlines()[-1]


def test_without_a_webhook_the_sensors_tell_nobody_and_keep_no_state(data_dir, instance, monkeypatch):
    monkeypatch.delenv(alerts.WEBHOOK_ENV, raising=False)
    _publish({"M1": "high"}, due=[])
    assert "PM_ALERT_WEBHOOK_URL is not set" in _evaluate(alerts.alert_machines, instance)
    assert alerts.notify_all(instance) == {} and not paths.alerts_dir().exists()
