"""The service over a real loopback socket: hot swap under load, a failed load, and schemathesis."""

import shutil
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import mlflow
import schemathesis
from hypothesis import HealthCheck, given, settings
from mlflow import MlflowClient

from pm_assets.drivers.sample_model import train_and_register
from pm_assets.storage import registry
from pm_serving.app import create_app
from pm_serving.model import ModelHolder
from pm_serving.settings import Settings

from .conftest import machine_payload
from .server import running


def test_hot_swap_under_concurrent_requests_drops_nothing(served_data_dir):
    before = registry.alias_version(registry.CHAMPION)
    statuses, versions, stop = [], [], threading.Event()

    def hammer(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                response = client.post("/predict", json=machine_payload())
                statuses.append(response.status_code)
                if response.status_code == 200:
                    versions.append(response.json()["model_version"])

    with running(create_app(Settings(poll_seconds=0.2))) as url:
        threads = [threading.Thread(target=hammer, args=(url,)) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        after = train_and_register(library="catboost", iterations=20)  # moves the champion alias
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not versions or versions[-1] != after):
            time.sleep(0.2)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        model = httpx.get(f"{url}/model").json()
    assert set(statuses) == {200}, f"failed requests: {[s for s in statuses if s != 200][:5]}"
    assert before in versions and after in versions and versions[-1] == after
    assert versions.index(after) > versions.index(before)
    assert model["version"] == after and model["library"] == "catboost"


def test_a_model_that_fails_to_load_leaves_the_old_one_serving(served_data_dir):
    holder = ModelHolder(Settings())
    assert holder.refresh() and holder.current is not None
    serving = holder.current.version
    broken = train_and_register(iterations=5)
    source = MlflowClient().get_model_version(registry.MODEL_NAME, broken).source
    location = mlflow.get_logged_model(source.split("/")[-1]).artifact_location
    shutil.rmtree(Path(urlparse(location).path))
    assert holder.refresh() is False
    assert holder.current.version == serving
    assert holder.last_error and "failed" in holder.last_error
    registry.set_alias(serving, registry.CHAMPION)  # leave the registry serving a loadable model


def test_no_generated_input_makes_a_server_error(served_data_dir):
    """Schemathesis cases from the app's own OpenAPI schema, sent over a real socket, bounded in number."""
    with running(create_app(Settings())) as url:
        schema = schemathesis.openapi.from_url(f"{url}/schema/openapi.json")
        checked = []
        for result in schema.get_all_operations():
            operation = result.ok()

            @given(case=operation.as_strategy())
            @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            def call(case):
                response = case.call(base_url=url, timeout=30)
                assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"

            call()
            checked.append(f"{operation.method.upper()} {operation.path}")
    assert {"POST /predict", "POST /predict/batch", "GET /model"} <= set(checked)
