"""The Service types the deployment overlays use (k8s/overlays/kind, cloud):
each renders, validates against Kubernetes 1.31, changes only the gateway
Service's type against the stage-1 overlay it builds on (and, on kind, turns
the HTTPS redirect off in the Django web Deployments: a local cluster has no
TLS listener), and keeps every Service between components a ClusterIP."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.test_check_deploy import container_env
from tests.deploy.test_k8s import component_of

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = REPO / "k8s" / "overlays"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
KUBERNETES_VERSION = "1.31.0"
SCHEMAS = REPO / "k8s" / "schemas"
GATEWAY_API_SCHEMAS = {"HTTPRoute": "httproute_v1.json", "Gateway": "gateway_v1.json"}


def render(overlay: str) -> list[dict[str, Any]]:
    """Build an overlay as `kubectl apply -k` would, without a cluster."""
    out = subprocess.run(
        [KUBECTL, "kustomize", str(OVERLAYS / overlay)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_key(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Index rendered objects by (kind, name) to compare overlays."""
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


# What the kind overlay adds to the app container of each Django web
# Deployment: plain HTTP is not redirected to HTTPS, which nothing answers on
# a local cluster (k8s/overlays/kind/kustomization.yaml says so).
NO_REDIRECT = {"name": "DJANGO_SECURE_SSL_REDIRECT", "value": "0"}


def django_web_deployments(docs: dict[tuple[str, str], dict[str, Any]]) -> set[tuple[str, str]]:
    """The web Deployments whose app container runs a Django component (the
    nginx gateway's image reads no environment)."""
    return {
        key
        for key, doc in docs.items()
        if doc["kind"] == "Deployment"
        and doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "web"
        and component_of(doc["spec"]["template"]["spec"]["containers"][0]) not in (None, "gateway")
    }


@pytest.mark.parametrize(
    ("overlay", "gateway_type", "env_added"),
    [("kind", "NodePort", [NO_REDIRECT]), ("cloud", "LoadBalancer", [])],
)
def test_overlay_changes_only_the_gateway_service_type(
    overlay: str, gateway_type: str, env_added: list[dict[str, str]]
) -> None:
    """The edge Service type is the overlay's one change, but for the env the
    kind overlay documents (``env_added``, appended to the app container of
    each Django web Deployment): anything else differing from stage-1 would be
    an accident of a patch."""
    base, docs = by_key(render("stage-1")), by_key(render(overlay))
    assert docs.keys() == base.keys()
    gateway = docs[("Service", "gateway")]
    assert gateway["spec"]["type"] == gateway_type
    expected = copy.deepcopy(base[("Service", "gateway")])
    expected["spec"] = {**expected["spec"], "type": gateway_type}
    spec = dict(gateway["spec"])
    spec.pop("externalTrafficPolicy", None)
    ports = [{k: v for k, v in p.items() if k != "nodePort"} for p in spec["ports"]]
    assert {**spec, "ports": ports} == expected["spec"]
    web = django_web_deployments(base)
    assert web, "stage 1 runs a Django web Deployment"
    for key, doc in docs.items():
        if key == ("Service", "gateway"):
            continue
        if key in web:
            container = doc["spec"]["template"]["spec"]["containers"][0]
            before = base[key]["spec"]["template"]["spec"]["containers"][0].get("env", [])
            assert container.get("env", []) == [*before, *env_added], key
            doc = copy.deepcopy(doc)
            doc["spec"]["template"]["spec"]["containers"][0]["env"] = before
        assert doc == base[key], key


def test_kind_turns_the_https_redirect_off_and_keeps_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the environment each Django web Deployment gives its container,
    the production settings redirect to HTTPS in the stage-1 overlay (what
    tests/deploy/test_check_deploy.py checks) and do not on kind, where HSTS
    and secure cookies stay as they are."""
    from blogweb.settings import production_settings

    docs = by_key(render("kind"))
    web = django_web_deployments(docs)
    assert web, "stage 1 runs a Django web Deployment"
    for key in sorted(web):
        name = key[1]
        app = component_of(docs[key]["spec"]["template"]["spec"]["containers"][0])
        settings = {}
        for overlay in ("stage-1", "kind"):
            with monkeypatch.context() as patched:
                for variable in [v for v in os.environ if v.startswith("DJANGO_")]:
                    patched.delenv(variable)
                for variable, value in container_env(overlay, name, app).items():
                    patched.setenv(variable, value)
                settings[overlay] = production_settings()
        assert settings["stage-1"]["SECURE_SSL_REDIRECT"] is True, name
        assert settings["kind"]["SECURE_SSL_REDIRECT"] is False, name
        assert {**settings["kind"], "SECURE_SSL_REDIRECT": True} == settings["stage-1"], name


@pytest.mark.parametrize("overlay", ["kind", "cloud"])
def test_overlay_validates_and_other_services_stay_cluster_ip(overlay: str) -> None:
    """Only the edge is exposed: between services, ClusterIP."""
    for doc in render(overlay):
        if doc["kind"] in GATEWAY_API_SCHEMAS:
            schema = json.loads((SCHEMAS / GATEWAY_API_SCHEMAS[doc["kind"]]).read_text())
            jsonschema.Draft202012Validator(schema).validate(doc)
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        if doc["kind"] == "Service" and doc["metadata"]["name"] != "gateway":
            assert doc["spec"].get("type", "ClusterIP") == "ClusterIP"


def test_kind_node_port_is_the_one_the_cluster_config_maps() -> None:
    """localhost:8080 reaches the gateway only if both files agree."""
    gateway = by_key(render("kind"))[("Service", "gateway")]
    config = yaml.safe_load((OVERLAYS / "kind" / "kind-cluster.yaml").read_text())
    mapped = {m["containerPort"] for n in config["nodes"] for m in n["extraPortMappings"]}
    assert gateway["spec"]["ports"][0]["nodePort"] in mapped
