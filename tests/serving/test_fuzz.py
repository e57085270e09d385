"""Property-based requests over a real socket (the slow tier): no generated input makes a server error, and no
reading outside what the model has seen ever gets a score."""

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pm_assets.core.reading_ranges import accepted
from pm_assets.storage import registry
from pm_serving.app import create_app
from pm_serving.settings import Settings

from .conftest import as_columns, machine_payload
from .server import running

pytestmark = pytest.mark.slow
FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def test_no_generated_request_of_any_route_is_a_server_error(served_data_dir):
    with running(create_app(Settings())) as url:
        schema = schemathesis.openapi.from_url(f"{url}/schema/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()

            @given(case=operation.as_strategy())
            @FUZZ
            def call(case):
                response = case.call(base_url=url, timeout=30)
                assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"

            call()


def test_a_reading_outside_the_models_experience_never_gets_a_score(served_data_dir):
    spec = registry.load_version(registry.alias_version(registry.CHAMPION)).bundle.feature_spec
    columns = [c for c in spec.sensors + spec.settings if c in spec.reading_ranges]
    with running(create_app(Settings())) as url, httpx.Client(base_url=url, timeout=30) as client:

        @given(column=st.sampled_from(columns), reading=st.integers(0, 39), above=st.booleans(),
               beyond=st.floats(1e-6, 1e12), columnar=st.booleans())
        @FUZZ
        def probe(column, reading, above, beyond, columnar):
            low, high = accepted(*spec.reading_ranges[column])
            value = high + beyond * max(1.0, abs(high)) if above else low - beyond * max(1.0, abs(low))
            payload = machine_payload(n=40)
            kind = "sensors" if column.startswith("sensor_") else "settings"
            payload["readings"][reading][kind][column] = value
            response = (client.post("/predict/columns", json={"machines": [as_columns(payload)]}) if columnar
                        else client.post("/predict", json=payload))
            assert response.status_code in (200, 422), response.text[:300]
            if response.status_code == 200:
                body = response.json()
                answer = body["predictions"][0] if columnar else body
                assert answer["risk_level"] == "unknown" and answer["rul_hours"] is None, (column, value, answer)
                assert column in answer["problem"]

        probe()
