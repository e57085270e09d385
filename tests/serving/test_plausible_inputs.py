"""Garbage never gets a confident score: impossible values, readings outside the model's experience, repeated and
future timestamps, unknown settings and event types, on every scoring route."""

import datetime as dt

import pytest
from litestar.testing import TestClient

from pm_serving.app import create_app
from pm_serving.settings import Settings

from .conftest import as_columns, machine_payload


@pytest.fixture(scope="module")
def client(served_data_dir):
    with TestClient(app=create_app(Settings(max_readings=100))) as c:
        yield c


def _with(payload: dict, sensor: str, value: float, readings: range | None = None) -> dict:
    chosen = readings or range(len(payload["readings"]))
    return {**payload, "readings": [dict(r, sensors={**r["sensors"], sensor: value}) if i in chosen else r
                                    for i, r in enumerate(payload["readings"])]}


def _routes(client: TestClient, payload: dict) -> dict[str, object]:
    """The same machine through /predict, /predict/columns and /predict/batch (beside a normal machine)."""
    batch = client.post("/predict/batch", json={"machines": [machine_payload("M0002"), payload]})
    return {
        "/predict": client.post("/predict", json=payload),
        "/predict/columns": client.post("/predict/columns", json={"machines": [as_columns(payload)]}),
        "/predict/batch": batch,
    }


def test_an_impossible_value_is_refused_naming_the_reading_as_ingestion_quarantines_it(client):
    payload = _with(machine_payload(), "sensor_01", 1e308)
    for route, response in _routes(client, payload).items():
        assert response.status_code == 422, (route, response.text)
        problem = response.json()["detail"]
        assert "within ±1e+07" in problem["problem"] and "1e+308" in problem["problem"], route
        assert problem["field"].endswith(("readings[0].sensors.sensor_01", "sensors.sensor_01[0]")), (route, problem["field"])


def test_readings_outside_the_models_experience_get_unknown_risk_naming_the_sensor(client):
    normal = client.post("/predict", json=machine_payload()).json()
    assert normal["risk_level"] != "unknown"
    garbage = _with(machine_payload(), "sensor_05", -1e6)
    for route, response in _routes(client, garbage).items():
        assert response.status_code == 200, (route, response.text)
        predictions = response.json().get("predictions", [response.json()])
        odd = predictions[-1]
        assert odd["risk_level"] == "unknown" and odd["rul_hours"] is None and odd["rul_lower"] is None, route
        assert "sensor_05 at -1e+06 is outside what the model was trained on" in odd["problem"], route
        if route == "/predict/batch":
            assert predictions[0]["risk_level"] != "unknown"  # the other machine of the batch is still scored
    one_spike = _with(machine_payload(), "sensor_05", -1e6, range(3, 4))  # a single such reading is enough
    assert client.post("/predict", json=one_spike).json()["risk_level"] == "unknown"


def test_repeated_timestamps_count_once_before_the_minimum(client):
    payload = machine_payload(n=15)
    doubled = {**payload, "readings": [r for r in payload["readings"] for _ in range(2)]}  # 30 readings, 15 instants
    for route in ("/predict", "/predict/columns"):
        body = doubled if route == "/predict" else {"machines": [as_columns(doubled)]}
        response = client.post(route, json=body)
        assert response.status_code == 422, response.text
        assert "at least 30 readings with distinct timestamps, got 15 (15 repeat an earlier timestamp)" in response.json()["error"]
    enough = machine_payload(n=40)
    resent = {**enough, "readings": enough["readings"] + [_with({"readings": enough["readings"][5:6]}, "sensor_02", 999.0)["readings"][0]]}
    assert client.post("/predict", json=resent).json() == client.post("/predict", json=enough).json()  # the first sent counts


def test_a_reading_from_the_future_is_refused(client):
    payload = machine_payload()
    future = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=365 * 4)
    payload["readings"][7] = {**payload["readings"][7], "ts": future.isoformat()}
    response = client.post("/predict", json=payload)
    assert response.status_code == 422 and response.json()["detail"]["field"] == "body.readings[7].ts", response.text
    assert "in the future" in response.json()["error"]
    columns = client.post("/predict/columns", json={"machines": [as_columns(payload)]})
    assert columns.status_code == 422 and columns.json()["detail"]["field"] == "body.machines[0].ts[7]", columns.text


def test_unknown_settings_and_event_types_are_refused_like_unknown_sensors(client):
    payload = machine_payload()
    payload["readings"][0] = {**payload["readings"][0], "settings": {**payload["readings"][0]["settings"], "op_setting_9": 1.0}}
    response = client.post("/predict", json=payload)
    assert response.status_code == 422 and "unknown operating settings ['op_setting_9']" in response.json()["error"], response.text
    events = {**machine_payload(), "events": [{"ts": "2025-03-01T03:00:00", "event_type": "overhaul"}]}
    response = client.post("/predict", json=events)
    assert response.status_code == 400 and "event_type" in response.json()["error"] and "overhaul" in response.json()["error"], response.text


@pytest.mark.parametrize("body, said", [
    (b"", "invalid request body: it is empty; send a JSON object"),
    (b'{"machine_id": "M1", "readings": [{"ts": "2025-03-01T00:00:00", "sensors": {"sensor_01": NaN}}]}', "NaN for `sensor_01`"),
    (b'{"machine_id": "M1", "readings": [{"ts": "2025-03-01T00:00:00", "sensors": {"sensor_04": -Infinity}}]}', "-Infinity for `sensor_04`"),
])
def test_an_empty_body_and_non_json_numbers_are_named_plainly(client, body, said):
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400 and said in response.json()["error"], response.text


def test_a_huge_unknown_machine_id_is_not_echoed_whole(client):
    response = client.get("/machines/" + "x" * 10_000)
    assert response.status_code == 404 and len(response.text) < 400 and "(10000 characters)" in response.json()["error"], response.text[:300]


def test_a_batch_is_checked_at_once_as_each_machine_would_be_alone(client):
    """The stacked checks of a batch give every machine what it gets sent alone (scored, or unknown with its problem),
    and a refused batch names the first machine, in request order, with an error."""
    shuffled = machine_payload("M0003", n=40)
    shuffled = {**shuffled, "readings": shuffled["readings"][20:] + shuffled["readings"][:20] + shuffled["readings"][3:5]}
    partly_missing = machine_payload("M0004")
    partly_missing["readings"][-1] = {**partly_missing["readings"][-1], "sensors": {"sensor_02": None}}
    machines = [machine_payload("M0001", n=30), _with(machine_payload("M0002", n=35), "sensor_05", -1e6, range(33, 34)),
                shuffled, partly_missing, machine_payload("M0005", n=45)]
    batch = client.post("/predict/batch", json={"machines": machines})
    assert batch.status_code == 200, batch.text
    alone = [client.post("/predict", json=m).json() for m in machines]
    assert batch.json()["predictions"] == alone
    assert [p["risk_level"] == "unknown" for p in alone] == [False, True, False, False, False]
    assert alone[2] == client.post("/predict", json=machine_payload("M0003", n=40)).json()  # sorted, repeats dropped
    future = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=400)
    late = {**machines[4], "readings": machines[4]["readings"][:-1] + [{**machines[4]["readings"][-1], "ts": future.isoformat()}]}
    refused = client.post("/predict/batch", json={"machines": [machines[0], _with(machines[2], "sensor_01", 1e308, range(6, 7)), late]})
    assert refused.status_code == 422 and refused.json()["detail"]["field"] == "body.machines[1].readings[6].sensors.sensor_01", refused.text
    refused = client.post("/predict/batch", json={"machines": [machines[0], late]})
    assert refused.json()["detail"]["field"] == "body.machines[1].readings[44].ts", refused.text
