"""The Kubernetes deployment (`deploy/helm/`) checked offline: the values against the Dagster chart's schema and its
subchart's, merged onto the chart's defaults as Helm does; the serving manifest's pod against Kubernetes' PodSpec;
and every environment variable the files set is one the platform reads (`pm_assets.environment`)."""

import copy
import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from pm_assets import environment

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT.parent / "shared" / "deploy-schemas"
HELM = ROOT / "deploy" / "helm"
K8S_URL = "https://kubernetesjsonschema.dev/v1.18.0/_definitions.json"


@pytest.fixture(scope="module")
def schemas():
    if not SCHEMAS.is_dir():
        pytest.skip(f"the chart's schemas are not at {SCHEMAS} (they live in ../shared, outside the repo)")
    k8s = json.loads((SCHEMAS / "kubernetes" / "v1.18.0" / "_definitions.json").read_text())
    registry = Registry().with_resource(K8S_URL, Resource.from_contents(k8s, default_specification=DRAFT7))
    chart, sub = (json.loads((SCHEMAS / name / "values.schema.json").read_text()) for name in ("dagster-chart", "dagster-user-deployments"))
    defaults = {name: yaml.safe_load((SCHEMAS / name / "values.yaml").read_text()) for name in ("dagster-chart", "dagster-user-deployments")}
    # the stored defaults come from a slightly newer chart than the schema, with one key the schema does not know
    defaults["dagster-chart"]["retention"].pop("backfill", None)
    return {"chart": Draft7Validator(chart, registry=registry), "sub": Draft7Validator(sub, registry=registry),
            "pod": Draft7Validator({"$ref": f"{K8S_URL}#/definitions/io.k8s.api.core.v1.PodSpec"}, registry=registry),
            "defaults": defaults}


def helm_merge(base, override):
    """Helm's merge of values: maps merge recursively, lists and scalars are replaced, a null removes the key."""
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return copy.deepcopy(override)
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = helm_merge(merged.get(key), value) if key in merged else copy.deepcopy(value)
    return merged


def _deepest(error: ValidationError) -> ValidationError:
    """Of an `anyOf` error (optional values are `anyOf` a type and null), the branch that got furthest into the value."""
    while error.context:
        error = max(error.context, key=lambda branch: len(branch.absolute_path))
    return error


def problems(schemas, values: dict) -> list[tuple[str, str]]:
    """(path, message) of every schema error of `values` merged onto the defaults, the subchart's section included."""
    merged = helm_merge(schemas["defaults"]["dagster-chart"], values)
    found = [(e.json_path, e.message) for e in map(_deepest, schemas["chart"].iter_errors(merged))]
    sub = helm_merge(schemas["defaults"]["dagster-user-deployments"], merged.get("dagster-user-deployments", {}))
    found += [(e.json_path.replace("$", "$['dagster-user-deployments']", 1), e.message) for e in map(_deepest, schemas["sub"].iter_errors(sub))]
    return found


def values() -> dict:
    return yaml.safe_load((HELM / "values.yaml").read_text())


def manifests() -> list[dict]:
    return [doc for path in sorted(HELM.glob("*.yaml")) if path.name != "values.yaml"
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_the_values_validate_against_the_chart_and_its_subchart(schemas):
    assert problems(schemas, values()) == []
    merged = helm_merge(schemas["defaults"]["dagster-chart"], values())
    # what the platform needs of them: its own code location, external PostgreSQL, one run per shard, a pod per run
    [deployment] = merged["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "pm_assets.definitions"]
    assert merged["postgresql"]["enabled"] is False and merged["generatePostgresqlPasswordSecret"] is False
    limits = merged["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert {"key": "pm/shard", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
    assert merged["runLauncher"]["type"] == "K8sRunLauncher"


@pytest.mark.parametrize("breakage, path", [
    (lambda v: v["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"].update(maxConcurrentRuns="four"),
     "$.dagsterDaemon.runCoordinator.config.queuedRunCoordinator.maxConcurrentRuns"),  # a wrong type
    (lambda v: v["runLauncher"]["config"]["k8sRunLauncher"].update(envSecret=[{"name": "pm-platform"}]),
     "$.runLauncher.config.k8sRunLauncher"),  # an unknown key (a typo of envSecrets)
    (lambda v: v["dagster-user-deployments"]["deployments"][0].pop("port"),
     "$['dagster-user-deployments'].deployments[0]"),  # a missing required key
])
def test_a_broken_value_fails_with_its_path(schemas, breakage, path):
    broken = values()
    breakage(broken)
    found = problems(schemas, broken)
    assert found and any(p == path for p, _ in found), found


def test_the_serving_pods_are_valid_kubernetes_pods(schemas):
    pods = [doc["spec"]["template"]["spec"] for doc in manifests() if doc["kind"] == "Deployment"]
    assert pods
    for pod in pods:
        assert [e.message for e in schemas["pod"].iter_errors(pod)] == []
        [container] = pod["containers"]
        assert container["args"][:2] == ["pm", "serve"] and container["readinessProbe"]["httpGet"]["path"] == "/ready"
    broken = copy.deepcopy(pods[0])
    broken["containers"][0]["ports"][0]["containerPort"] = "8000"
    assert any(e.json_path == "$.containers[0].ports[0].containerPort" for e in schemas["pod"].iter_errors(broken))


def _env_names(node) -> set[str]:
    """Every environment variable name a values tree or manifest sets: `env` lists and maps, `envVars` strings, and the
    keys of the platform's Secrets."""
    names: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "env" and isinstance(value, list):
                names |= {item["name"] for item in value}
            elif key == "env" and isinstance(value, dict):
                names |= set(value)
            elif key == "envVars":
                names |= {item.split("=")[0] for item in value}
            else:
                names |= _env_names(value)
    elif isinstance(node, list):
        for item in node:
            names |= _env_names(item)
    return names


def test_the_deployment_sets_only_variables_the_platform_reads():
    docs = [values(), *manifests()]
    secrets = {key for doc in manifests() if doc["kind"] == "Secret" and doc["metadata"]["name"] != "dagster-postgresql-secret"
               for key in doc["stringData"]}
    names = _env_names(docs) | secrets
    assert {"PM_SHARDS", "PM_SERVE_FOLLOW", "PM_LAKE_CATALOG", "PM_API_KEY"} <= names  # the walk finds each kind
    assert names <= set(environment.KNOWN), f"set but never read: {sorted(names - set(environment.KNOWN))}"
