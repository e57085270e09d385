"""The Grafana dashboards (`deploy/grafana/`) query only metrics the service publishes: `pm_serving.metrics.EXPORTED`,
which `tests/serving/test_machines.py` holds to what a real `/metrics` answers. A renamed metric fails here, not on a
blank panel in production."""

import json
import re
from pathlib import Path

import yaml

from pm_serving.metrics import EXPORTED

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"


def _queries(dashboard: dict) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_every_dashboard_query_names_only_metrics_the_service_exports():
    dashboards = {path.stem: json.loads(path.read_text()) for path in sorted((GRAFANA / "dashboards").glob("*.json"))}
    assert {"pm-service", "pm-fleet"} <= set(dashboards)
    used = set()
    for name, dashboard in dashboards.items():
        assert dashboard["uid"] == name and dashboard["panels"], name
        for query in _queries(dashboard):
            metrics = set(re.findall(r"\b(pm_[a-z0-9_]+)", query))
            assert metrics and metrics <= set(EXPORTED), (name, query, sorted(metrics - set(EXPORTED)))
            assert query.count("(") == query.count(")") and query.count("{") == query.count("}"), (name, query)
            used |= metrics
    assert {"pm_requests_total", "pm_request_duration_seconds_bucket", "pm_model_version", "pm_fleet_machines",
            "pm_fleet_planned_services"} <= used


def test_the_provisioning_files_point_at_the_dashboards_datasource():
    [source] = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())["datasources"]
    [provider] = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "pm-platform.yaml").read_text())["providers"]
    assert source["type"] == "prometheus" and provider["type"] == "file" and provider["options"]["path"]
    for path in (GRAFANA / "dashboards").glob("*.json"):
        panels = json.loads(path.read_text())["panels"]
        assert {panel["datasource"]["uid"] for panel in panels} == {source["uid"]}, path.name
