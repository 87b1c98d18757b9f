"""The managed-stores overlay (k8s/overlays/managed): stage 4 with its data
stores outside the cluster. No cluster here: the overlay is built with
`kubectl kustomize` and checked as tests/deploy/test_k8s.py and
test_k8s_network.py check the others: every document validates (Kubernetes
1.31, strict); each store the components' URLs name is an ExternalName
Service and runs no workload; the Services between components stay
ClusterIP; nothing else differs from stage 4 but the store policies; and the
network policies, evaluated as a cluster does, allow exactly what stage 4
allows beside the dev overlay's in-cluster stores, with each store moved to
an address of its placeholder range, the broker to its TLS port.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest

from stages import table
from tests.deploy.credentials import plain, resolved_env
from tests.deploy.test_k8s import (
    GATEWAY_API_SCHEMAS,
    KUBERNETES_VERSION,
    POD_KINDS,
    build,
    by_name,
    containers,
    of_kind,
    pod_specs,
)
from tests.deploy.test_k8s_network import (
    Flow,
    Network,
    applied,
    assert_flows,
    expected,
    front_door_flows,
    mutated,
    network,
    pod,
    running_in,
    workloads,
)

OVERLAY = "managed"
STAGE = 4
# Each dev overlay store (its StatefulSet and Service name) -> an address in
# the placeholder range the overlay's policies give it (network.yaml):
# replacing a range there means replacing its address here.
EXTERNAL_ADDRESSES = {"postgres": "192.0.2.10", "mongo": "192.0.2.70", "rabbitmq": "192.0.2.130"}
# Plain AMQP is checked too: the broker outside the cluster is reached over
# TLS (amqps, 5671) only.
EXTRA_PORTS = ((53, "UDP"), (53, "TCP"), (443, "TCP"), (5672, "TCP"))


def store_services(docs: tuple[dict, ...]) -> dict[str, dict]:
    return {
        name: svc
        for name, svc in by_name(docs, "Service").items()
        if svc["spec"].get("type") == "ExternalName"
    }


def url_hosts(docs: tuple[dict, ...]) -> set[str]:
    """The host of every URL in the environment of the overlay's containers
    (ConfigMap values, and the dev Secrets' values for its secretKeyRefs)."""
    hosts = set()
    for _doc, spec in pod_specs(docs):
        for container in containers(spec):
            for value in plain(resolved_env(container, docs)).values():
                if "://" in value and urlsplit(value).hostname:
                    hosts.add(urlsplit(value).hostname)
    return hosts


def test_the_overlay_builds_and_validates() -> None:
    docs = build(OVERLAY)
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), "duplicate objects"
    for doc in docs:
        assert doc["metadata"]["namespace"] == "blog", doc["metadata"]
        if doc["kind"] in GATEWAY_API_SCHEMAS:
            schema = json.loads(GATEWAY_API_SCHEMAS[doc["kind"]].read_text())
            jsonschema.Draft202012Validator(schema).validate(doc)
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_stores_the_urls_name_are_external_name_services_and_run_nowhere() -> None:
    """Every URL host that is no component's Service is a store, and an
    ExternalName Service (a placeholder under example.com, to replace), with
    no pods behind it: no StatefulSet, no store workload, no selector."""
    docs = build(OVERLAY)
    stores = store_services(docs)
    components = set(by_name(docs, "Service")) - set(stores)
    assert url_hosts(docs) - components == set(stores) == set(EXTERNAL_ADDRESSES)
    for name, svc in stores.items():
        assert svc["spec"]["externalName"].endswith(".example.com"), name
        assert "selector" not in svc["spec"], name
        assert "clusterIP" not in svc["spec"], name
        assert svc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "blog", name
    assert not of_kind(docs, "StatefulSet")
    for doc in docs:
        if doc["kind"] in POD_KINDS:
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert labels["app.kubernetes.io/component"] != "database", doc["metadata"]["name"]
    # A managed broker takes AMQP over TLS: the port a broker-url must name.
    assert [p["port"] for p in stores["rabbitmq"]["spec"]["ports"]] == [5671]


def test_services_between_components_stay_cluster_ip() -> None:
    docs = build(OVERLAY)
    stores = store_services(docs)
    others = {n: s for n, s in by_name(docs, "Service").items() if n not in stores}
    assert set(others) == set(by_name(build(f"stage-{STAGE}"), "Service"))
    for name, svc in others.items():
        assert svc["spec"].get("type", "ClusterIP") == "ClusterIP", name


def test_only_the_stores_and_their_policies_differ_from_stage_4() -> None:
    """The workloads, ConfigMaps, routes and the other policies are stage 4's
    as they are (so what tests/deploy/test_k8s.py and test_check_deploy.py
    check of stage 4 holds here); the store policies change their
    destinations only."""
    base = {(d["kind"], d["metadata"]["name"]): d for d in build(f"stage-{STAGE}")}
    docs = {(d["kind"], d["metadata"]["name"]): d for d in build(OVERLAY)}
    added = {("Service", name) for name in EXTERNAL_ADDRESSES}
    # The stores' ingress policies: stage 4 names them <store>-from-<component>.
    removed = {
        key
        for key in base
        if key[0] == "NetworkPolicy" and key[1].split("-from-")[0] in EXTERNAL_ADDRESSES
    }
    assert removed, "stage 4 has store ingress policies"
    assert docs.keys() == (base.keys() - removed) | added
    changed = set()
    for key, doc in docs.items():
        if key in added or doc == base[key]:
            continue
        assert key[0] == "NetworkPolicy", key
        assert {**doc, "spec": {**doc["spec"], "egress": None}} == {
            **base[key],
            "spec": {**base[key]["spec"], "egress": None},
        }, key
        changed.add(key[1])
    assert changed == {
        "posts-database",
        "comments-database",
        "posts-events-broker",
        "comments-events-broker",
    }


# --------------------------------------------------------------------- the network


def managed_network(mode: str) -> tuple[Network, tuple[dict, ...], table.Topology]:
    """The overlay's policies over the workloads of ``mode`` and an address of
    each store outside the cluster (``managed-<store>``, at its Service's port)."""
    docs = build(OVERLAY)
    topology = table.stage(STAGE).topology(mode)
    running = running_in(topology, docs)
    stores = store_services(docs)
    outside = [
        pod(
            f"managed-{name}",
            None,
            {},
            ip=EXTERNAL_ADDRESSES[name],
            ports=tuple((None, p["port"], p["protocol"]) for p in stores[name]["spec"]["ports"]),
        )
        for name in sorted(stores)
    ]
    endpoints = [w for w in workloads(docs) if w.name in running] + outside
    policies = [dict(p) for p in of_kind(docs, "NetworkPolicy")]
    return Network(policies, endpoints, EXTRA_PORTS), docs, topology


def wanted_flows(mode: str, docs: tuple[dict, ...], net: Network) -> set[Flow]:
    """Stage 4's flows beside the dev overlay's stores (what
    test_k8s_network.py holds the stage to), with each store's pod replaced by
    its address outside and the port of its ExternalName Service; the stores'
    own flows (their DNS) are gone with their pods, and the gateway, which
    takes anyone, takes those addresses too."""
    dev_docs = applied("dev", f"stage-{STAGE}")
    topology = table.stage(STAGE).topology(mode)
    inside = expected(topology, dev_docs, network(dev_docs, running_in(topology, dev_docs)))
    ports = {
        name: f"{svc['spec']['ports'][0]['port']}/{svc['spec']['ports'][0]['protocol']}"
        for name, svc in store_services(docs).items()
    }
    wanted = set()
    for src, dst, port in inside:
        if src in ports:
            continue
        wanted.add((src, f"managed-{dst}", ports[dst]) if dst in ports else (src, dst, port))
    outside = [f"managed-{name}" for name in ports]
    return wanted | front_door_flows(topology, docs, outside)


@pytest.mark.parametrize("mode", table.stage(STAGE).modes)
def test_the_policies_let_out_to_each_store_exactly_its_users(mode: str) -> None:
    """Each component reaches its own stores outside, on their ports, and
    nothing else outside (another store's range, the broker's plain port, the
    internet); between components, as at stage 4."""
    net, docs, topology = managed_network(mode)
    wanted = wanted_flows(mode, docs, net)
    # Not vacuous: the databases are reached in every mode, the broker by the
    # relays and consumers of the modes that run them, and by nothing else.
    reached = {dst for _src, dst, _port in wanted}
    assert {"managed-postgres", "managed-mongo"} <= reached
    broker_users = {src for src, dst, _port in wanted if dst == "managed-rabbitmq"}
    assert broker_users == {p.name for p in topology.processes if p.role in ("relay", "consumer")}
    assert_flows(net, wanted, topology, docs, f"managed {mode}")


def egress_to(cidr: str, *ports: int) -> dict:
    return {
        "egress": [
            {
                "to": [{"ipBlock": {"cidr": cidr}}],
                "ports": [{"protocol": "TCP", "port": p} for p in ports],
            }
        ]
    }


@pytest.mark.parametrize(
    ("name", "spec", "caught"),
    [
        # the comments lose their MongoDB
        ("comments-database", {}, ("needed but not", "('comments', 'managed-mongo', '27017/TCP')")),
        # the posts let out to the MongoDB range instead of their PostgreSQL's
        (
            "posts-database",
            egress_to("192.0.2.64/26", 5432),
            ("allowed but not", "('posts', 'managed-mongo', '5432/TCP')"),
        ),
        # the relays let out anywhere on the broker's port
        (
            "posts-events-broker",
            egress_to("0.0.0.0/0", 5671),
            ("allowed but not", "('posts-relay', 'internet', '5671/TCP')"),
        ),
        # plain AMQP to the broker outside
        (
            "comments-events-broker",
            egress_to("192.0.2.128/26", 5671, 5672),
            ("allowed but not", "('comments-relay', 'managed-rabbitmq', '5672/TCP')"),
        ),
    ],
)
def test_a_missing_or_loose_store_rule_is_caught(name: str, spec: dict, caught: tuple) -> None:
    """The check above is not vacuous: each of these changes to the overlay's
    policies fails it, saying what is wrong."""
    mode = table.stage(STAGE).default_mode
    net, docs, topology = managed_network(mode)
    wanted = wanted_flows(mode, docs, net)
    broken = Network(mutated(net.policies, name, **spec), net.endpoints, EXTRA_PORTS)
    with pytest.raises(AssertionError) as failure:
        assert_flows(broken, wanted, topology, docs, "broken")
    assert all(part in str(failure.value) for part in caught), failure.value
