"""The Service types the deployment overlays use (k8s/overlays/kind, cloud):
each renders, validates against Kubernetes 1.31, changes only the gateway
Service's type against the stage-1 overlay it builds on, and keeps every
Service between components a ClusterIP."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

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


@pytest.mark.parametrize(
    ("overlay", "gateway_type"), [("kind", "NodePort"), ("cloud", "LoadBalancer")]
)
def test_overlay_changes_only_the_gateway_service_type(overlay: str, gateway_type: str) -> None:
    """The edge Service type is the overlay's one change: anything else
    differing from stage-1 would be an accident of the patch."""
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
    for key, doc in docs.items():
        if key != ("Service", "gateway"):
            assert doc == base[key], key


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
