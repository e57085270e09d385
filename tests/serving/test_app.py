"""The scoring service through Litestar's TestClient (lifespan included) with a real registered model."""

import json

import pytest
from litestar.testing import TestClient

from pm_serving.app import create_app
from pm_serving.settings import Settings

from .conftest import machine_payload


@pytest.fixture
def client(served_data_dir):
    with TestClient(app=create_app(Settings())) as c:
        yield c


def test_health_ready_and_model_card(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert ready["ready"] is True and ready["model_version"]
    card = client.get("/model").json()
    assert card["alias"] == "champion" and card["library"] == "lightgbm"
    assert card["min_readings"] == 30 and len(card["features"]) > 50
    assert 0 < card["threshold"] < 1 and "rul_rmse" in card["metrics"]


def test_predict_one_machine(client, served_data_dir):
    response = client.post("/predict", json=machine_payload())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["machine_id"] == "M0001" and body["ts"].startswith("2025-03-02T15:00")
    assert 0 <= body["rul_hours"] <= 125 and 0 <= body["failure_probability"] <= 1
    assert 0 <= body["rul_lower"] <= body["rul_hours"] <= body["rul_upper"] <= 125  # the calibrated range
    assert body["risk_level"] in {"low", "medium", "high"}
    assert all(s.startswith("sensor_") for s in body["top_sensors"])
    client.app.state.inference_log.flush()
    logged = [json.loads(line) for f in (served_data_dir / "inference").glob("*.jsonl") for line in f.read_text().splitlines()]
    assert any(entry["machine_id"] == "M0001" and entry["model_version"] == body["model_version"] for entry in logged)


def test_predict_batch_matches_single_predictions(client):
    machines = [machine_payload(f"M{i:04d}", n=30 + i) for i in range(5)]
    batch = client.post("/predict/batch", json={"machines": machines})
    assert batch.status_code == 200, batch.text
    predictions = batch.json()["predictions"]
    assert [p["machine_id"] for p in predictions] == [m["machine_id"] for m in machines]
    for machine, prediction in zip(machines, predictions):
        single = client.post("/predict", json=machine).json()
        assert single["rul_hours"] == pytest.approx(prediction["rul_hours"])
        assert single["rul_upper"] == pytest.approx(prediction["rul_upper"])  # batches carry the same ranges
        assert single["failure_probability"] == pytest.approx(prediction["failure_probability"])


def _with(payload: dict, **change) -> dict:
    return {**payload, **change}


def _reading_change(payload: dict, key: str, value) -> dict:
    readings = [dict(r) for r in payload["readings"]]
    readings[3] = {**readings[3], "sensors": {**readings[3]["sensors"], key: value}} if value is not ... else readings[3]
    return {**payload, "readings": readings}


@pytest.mark.parametrize(
    "body, status, words",
    [
        (b'{"machine_id": "M1", "readings": [', 400, "truncated"),
        (json.dumps(_with(machine_payload(), readings="many")).encode(), 400, "readings"),
        (json.dumps(_with(machine_payload(), machine_id=7)).encode(), 400, "machine_id"),
        (json.dumps(_reading_change(machine_payload(), "sensor_02", "hot")).encode(), 400, "sensor"),
        (json.dumps(_reading_change(machine_payload(), "sensor_99", 1.0)).encode(), 422, "unknown sensors ['sensor_99']"),
        (json.dumps(machine_payload(sensors=8)).encode(), 422, "missing sensors ['sensor_09', 'sensor_10']"),
        (json.dumps(_reading_change(machine_payload(), "sensor_02", 1e999)).replace("Infinity", "1e999").encode(), 400, "out of range"),
        (json.dumps(_reading_change(machine_payload(), "sensor_02", 0)).replace("0}", "NaN}", 1).encode(), 400, ""),
        (json.dumps(machine_payload(n=5)).encode(), 422, "needs at least 30 readings"),
        (json.dumps(_with(machine_payload(), model_type="Z")).encode(), 422, "unknown machine type 'Z'"),
        (json.dumps(_with(machine_payload(), colour="red")).encode(), 400, "colour"),
    ],
)
def test_bad_input_gets_a_4xx_that_names_the_problem(client, body, status, words):
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert words.lower() in response.text.lower()


def test_oversized_body_is_refused(served_data_dir):
    with TestClient(app=create_app(Settings(max_body_bytes=10_000))) as small:
        response = small.post("/predict", json=machine_payload())
    assert response.status_code == 413


def test_no_model_means_503_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("PM_DATA_DIR", str(tmp_path / "empty"))
    with TestClient(app=create_app(Settings())) as empty:
        assert empty.get("/health").status_code == 200
        for response in (empty.get("/ready"), empty.post("/predict", json=machine_payload())):
            assert response.status_code == 503
            assert "no model" in response.json()["error"] or "not ready" in response.json()["error"]


def test_api_key_guards_every_route_but_health(served_data_dir):
    with TestClient(app=create_app(Settings(api_key="s3cret"))) as guarded:
        assert guarded.get("/health").status_code == 200
        assert guarded.get("/model").status_code == 401
        assert guarded.post("/predict", json=machine_payload()).status_code == 401
        assert guarded.get("/model", headers={"X-API-Key": "wrong"}).status_code == 401
        assert guarded.get("/model", headers={"X-API-Key": "s3cret"}).status_code == 200


def test_metrics_in_prometheus_format(client):
    client.post("/predict", json=machine_payload())
    text = client.get("/metrics").text
    assert "pm_requests_total" in text and 'path="/predict"' in text
    assert "pm_request_duration_seconds_bucket" in text
    assert "pm_predictions_total{risk_level=" in text
    assert "pm_model_version{version=" in text


def test_openapi_schema_is_served(client):
    schema = client.get("/schema/openapi.json").json()
    assert {"/predict", "/predict/batch", "/model", "/ready", "/health"} <= set(schema["paths"])
    assert "200" in schema["paths"]["/predict"]["post"]["responses"]
