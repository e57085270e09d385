"""Input that could mislead: time zones, nesting, oversized machines in a batch, dead sensors, the columnar shape."""

import datetime as dt
import json

import pytest
from litestar.testing import TestClient

from pm_serving.app import create_app
from pm_serving.settings import Settings

from .conftest import as_columns, machine_payload


@pytest.fixture(scope="module")
def client(served_data_dir):
    with TestClient(app=create_app(Settings(max_readings=100))) as c:
        yield c


def _shifted(payload: dict, offset_hours: int, every: int = 1) -> dict:
    """The same instants written with a UTC offset (on every `every`-th reading; the others stay naive UTC)."""
    zone = dt.timezone(dt.timedelta(hours=offset_hours))
    readings = [{**r, "ts": dt.datetime.fromisoformat(r["ts"]).replace(tzinfo=dt.UTC).astimezone(zone).isoformat()} if i % every == 0 else r
                for i, r in enumerate(payload["readings"])]
    return {**payload, "readings": readings}


def test_offsets_are_converted_to_utc_and_naive_times_taken_as_utc(client):
    naive = client.post("/predict", json=machine_payload()).json()
    for body in (_shifted(machine_payload(), 5), _shifted(machine_payload(), -7, every=2)):  # all aware; mixed
        response = client.post("/predict", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["ts"] == naive["ts"] == "2025-03-02T15:00:00Z"
        assert response.json()["rul_hours"] == pytest.approx(naive["rul_hours"])


@pytest.mark.parametrize("path, body", [
    ("/predict", b"[" * 50_000 + b"]" * 50_000),
    ("/predict/batch", b'{"machines":' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    ("/predict", b'{"machine_id":"M","readings":[{"ts":"2025-01-01T00:00:00","sensors":{"s":' + b"[" * 50_000 + b"]" * 50_000 + b"}}]}"),
])
def test_deeply_nested_bodies_are_a_400(client, path, body):
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert any(words in response.json()["error"].lower() for words in ("expected", "nested too deeply"))


def test_the_reading_cap_applies_to_each_machine_of_a_batch(client):
    machines = [machine_payload("M1"), machine_payload("M2", n=101)]
    response = client.post("/predict/batch", json={"machines": machines})
    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "body.machines[1].readings"
    assert "at most 100 readings" in response.json()["error"]


def test_a_batch_of_too_many_machines_is_refused_naming_the_limit(served_data_dir):
    with TestClient(app=create_app(Settings(max_batch_machines=3))) as small:
        for path, machines in (("/predict/batch", [machine_payload(f"M{i}") for i in range(4)]),
                               ("/predict/columns", [as_columns(machine_payload(f"M{i}")) for i in range(4)])):
            response = small.post(path, json={"machines": machines})
            assert response.status_code == 422, response.text
            assert response.json()["detail"]["field"] == "body.machines" and "at most 3 machines per batch, got 4" in response.json()["error"]
        assert small.post("/predict/batch", json={"machines": [machine_payload(f"M{i}") for i in range(3)]}).status_code == 200


def _nulled(payload: dict, sensors: list[str], last: int) -> dict:
    readings = [dict(r, sensors={**r["sensors"], **({s: None for s in sensors} if i >= len(payload["readings"]) - last else {})})
                for i, r in enumerate(payload["readings"])]
    return {**payload, "readings": readings}


def _sparse(payload: dict) -> dict:
    """Every sensor still reports now and then, but most values are missing: each reading keeps 3 of 10 sensors."""
    readings = [dict(r, sensors={s: (v if (int(s[-2:]) + i) % 10 < 3 else None) for s, v in r["sensors"].items()})
                for i, r in enumerate(payload["readings"])]
    return {**payload, "readings": readings}


@pytest.mark.parametrize("dead, problem", [
    (_nulled(machine_payload(), [f"sensor_{j:02d}" for j in range(1, 11)], last=35), "no value of sensor_01"),
    (_nulled(machine_payload(), ["sensor_07"], last=30), "no value of sensor_07 in the last 30 readings"),
    (_sparse(machine_payload()), "only 30% of the sensor values"),
])
def test_a_machine_without_usable_sensor_data_gets_unknown_risk_not_low(client, dead, problem):
    body = client.post("/predict", json=dead).json()
    assert body["risk_level"] == "unknown" and body["rul_hours"] is None and body["failure_probability"] is None
    assert problem in body["problem"]
    batch = client.post("/predict/batch", json={"machines": [machine_payload(), dead]}).json()["predictions"]
    assert batch[0]["risk_level"] != "unknown" and batch[1]["risk_level"] == "unknown"


def test_columns_and_readings_give_the_same_predictions(client):
    machines = [machine_payload(f"M{i:04d}", n=30 + 3 * i) for i in range(4)]
    machines[2] = _nulled(machines[2], ["sensor_03"], last=4)  # a few missing values
    rows = client.post("/predict/batch", json={"machines": machines})
    columns = client.post("/predict/columns", json={"machines": [as_columns(m) for m in machines]})
    assert rows.status_code == columns.status_code == 200, columns.text
    assert rows.json() == columns.json()


def test_uneven_columns_name_the_column(client):
    machine = as_columns(machine_payload())
    machine["sensors"]["sensor_04"] = machine["sensors"]["sensor_04"][:-1]
    response = client.post("/predict/columns", json={"machines": [machine]})
    assert response.status_code == 422 and "sensor_04" in response.json()["error"]


def test_driving_sensors_are_given_for_risky_machines_or_on_request(client):
    low = client.post("/predict", json=machine_payload()).json()
    assert low["risk_level"] == "low" and low["top_sensors"] == []
    explained = client.post("/predict", json={**machine_payload(), "explain": True}).json()
    assert explained["rul_hours"] == low["rul_hours"] and explained["top_sensors"]
    assert all(s.startswith("sensor_") for s in explained["top_sensors"])


def test_a_wrong_api_key_is_refused_whatever_its_length(served_data_dir):
    with TestClient(app=create_app(Settings(api_key="s3cret"))) as guarded:
        for key in ("", "s", "s3cre", "s3cret!", "S3CRET", "s3cret" * 100):
            assert guarded.get("/model", headers={"X-API-Key": key}).status_code == 401
        assert json.loads(guarded.get("/model", headers={"X-API-Key": "s3cret"}).text)["alias"] == "champion"
