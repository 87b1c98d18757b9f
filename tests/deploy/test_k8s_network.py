"""The network policies of the Kubernetes manifests (k8s/base/network/ and
each part's network.yaml): no cluster here, so every overlay is built with
`kubectl kustomize` together with what runs beside it (the dev overlay's
data stores) and its NetworkPolicies are evaluated as a cluster enforces
them. What they let talk to what must be exactly what the stage table
(stages/table.py) says the stage needs, in each of its modes: the edge to
the routes' Services, each app to its own store, the calls the table's
addresses name, the Jobs to their stores, and the cluster DNS. Nothing else:
no pod reaches another app's database or /internal/ routes by where it sits
in the network.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import kubernetes_validate
import pytest

from stages import table
from tests.deploy.test_k8s import (
    KUBERNETES_VERSION,
    OVERLAYS,
    POD_KINDS,
    build,
    by_name,
    expected_jobs,
    of_kind,
)

NAMESPACE = "blog"
# The edge: the pods of the Gateway API implementation (Envoy Gateway) and of
# the ingress controller (ingress-nginx), in the namespaces their installs
# use (k8s/README.md). They send the routes the HTTPRoute/Ingress gives a
# Service straight to its pods.
EDGE_NAMESPACES = ("envoy-gateway-system", "ingress-nginx")
SQL_STORE = "postgres"
# A store placeholder of the stage table -> the dev overlay's StatefulSet.
STORES: dict[str, str] = {}
STORES["mongodb"] = "mongo"  # [stage 2]
STORES["broker"] = "rabbitmq"  # [stage 3]
# Who opens a connection for which placeholder of its env: a web process
# calls the apps it names and uses the stores it names, a gateway calls them.
APP_CALLERS = ["web"]
STORE_USERS: dict[str, tuple[str, ...]] = {"web": ()}
APP_CALLERS.append("gateway")  # [stage 1]
STORE_USERS["web"] = ("mongodb",)  # [stage 2]
# >>> stage 3: relays and consumers
# Relays and consumers use their stores, the broker among them, and call no
# app. A web process is given the broker's address too, but writes its
# events to its outbox, in its own database.
STORE_USERS["relay"] = STORE_USERS["consumer"] = ("mongodb", "broker")
# <<< stage 3
PLACEHOLDER = re.compile(r"\{([a-z]+)\}")  # {monolith}, not {token[monolith]}
DNS = ("53/UDP", "53/TCP")

Flow = tuple[str, str, str]  # (source, destination, "port/PROTOCOL")


@dataclass(frozen=True)
class Endpoint:
    """A pod (of a workload, or one standing for a kind of outsider), or an
    address outside the cluster (``namespace`` None, ``ip`` set)."""

    name: str
    namespace: str | None
    labels: tuple[tuple[str, str], ...] = ()
    ports: tuple[tuple[str | None, int, str], ...] = ()  # (name, number, protocol)
    ip: str | None = None

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def governed(self) -> bool:
        """Whether the policies under test can select it (the blog namespace)."""
        return self.namespace == NAMESPACE


def pod(name: str, namespace: str | None, labels: Mapping[str, str], **rest) -> Endpoint:
    return Endpoint(name, namespace, tuple(sorted(labels.items())), **rest)


# Those who are not the blog's pods: the edge, the cluster DNS, a pod of
# another namespace labelled like the monolith's web pods (a podSelector
# alone selects in the policy's own namespace), an address on the internet;
# and a stray pod in the blog namespace (`kubectl run`), which should reach
# nothing but the DNS.
EDGE = tuple(pod(ns, ns, {"app.kubernetes.io/name": ns}) for ns in EDGE_NAMESPACES)
KUBE_DNS = pod("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, ports=((None, 53, "UDP"),))
OUTSIDERS = (
    *EDGE,
    KUBE_DNS,
    pod(
        "lookalike",
        "default",
        {"app.kubernetes.io/name": "monolith", "app.kubernetes.io/component": "web"},
    ),
    pod("internet", None, {}, ip="203.0.113.7"),
)
STRAY = pod("stray", NAMESPACE, {"run": "debug"})


# --------------------------------------------------------------------- the evaluator


def selects(selector: Mapping, labels: Mapping[str, str]) -> bool:
    """A label selector; the empty one selects everything."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def namespace_labels(namespace: str) -> dict[str, str]:
    """What every namespace carries (Kubernetes 1.21 on); selectors here use nothing else."""
    return {"kubernetes.io/metadata.name": namespace}


def peer_admits(peer: Mapping, policy_namespace: str, other: Endpoint) -> bool:
    """One entry of a rule's from/to: a podSelector alone means the policy's
    namespace; with a namespaceSelector both must match; an ipBlock matches
    addresses (here: outside the cluster only)."""
    if "ipBlock" in peer:
        if other.ip is None:
            return False
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(cidr) for cidr in block.get("except", [])
        )
    if other.namespace is None:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], namespace_labels(other.namespace)):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector", {}), other.label_map)


def port_admits(ports: list | None, destination: Endpoint, port: int, protocol: str) -> bool:
    """A rule's ports (none: all); a named port is the destination pod's."""
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        if "port" not in entry:
            return True
        first = entry["port"]
        if isinstance(first, str):
            named = [
                n for name, n, proto in destination.ports if (name, proto) == (first, protocol)
            ]
            if not named:
                continue
            first = named[0]
        if first <= port <= entry.get("endPort", first):
            return True
    return False


def policy_types(policy: Mapping) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]


@dataclass
class Network:
    """The NetworkPolicies of what is applied, and the endpoints they govern."""

    policies: list[dict]
    endpoints: list[Endpoint]
    extra_ports: tuple[tuple[int, str], ...] = ((53, "UDP"), (53, "TCP"), (443, "TCP"))
    _selected: dict = field(default_factory=dict)

    def selecting(self, direction: str, subject: Endpoint) -> list[dict]:
        key = (direction, subject)
        if key not in self._selected:
            self._selected[key] = [
                p
                for p in self.policies
                if p["metadata"]["namespace"] == subject.namespace
                and direction in policy_types(p)
                and selects(p["spec"]["podSelector"], subject.label_map)
            ]
        return self._selected[key]

    def admits(
        self,
        direction: str,
        subject: Endpoint,
        other: Endpoint,
        dst: Endpoint,
        port: int,
        protocol: str,
    ) -> bool:
        """Whether ``subject``'s policies of ``direction`` let ``other`` in
        (Ingress) or out to (Egress): a pod no policy of that direction selects
        is open; else some rule of some selecting policy must admit (they add up)."""
        if not subject.governed:
            return True
        selecting = self.selecting(direction, subject)
        if not selecting:
            return True
        rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in selecting:
            namespace = policy["metadata"]["namespace"]
            for rule in policy["spec"].get(rules_key, []):
                peers = rule.get(peers_key)
                if peers and not any(peer_admits(p, namespace, other) for p in peers):
                    continue
                if port_admits(rule.get("ports"), dst, port, protocol):
                    return True
        return False

    def ports(self) -> set[tuple[int, str]]:
        found = {(n, proto) for e in self.endpoints for _name, n, proto in e.ports}
        return found | set(self.extra_ports)

    def allowed(self, sides: tuple[str, ...] = ("Egress", "Ingress")) -> set[Flow]:
        """Every (source, destination, port) a connection may take: the
        source's egress and the destination's ingress both admit it. With
        one side only: what that side admits, whatever the other says."""
        everyone = [*self.endpoints, *OUTSIDERS, STRAY]
        ports = sorted(self.ports())
        flows = set()
        for src in everyone:
            for dst in everyone:
                if not any({"Egress": src, "Ingress": dst}[side].governed for side in sides):
                    continue
                for port, protocol in ports:
                    if all(
                        self.admits("Egress", src, dst, dst, port, protocol)
                        if side == "Egress"
                        else self.admits("Ingress", dst, src, dst, port, protocol)
                        for side in sides
                    ):
                        flows.add((src.name, dst.name, f"{port}/{protocol}"))
        return flows

    def everyone(self) -> set[str]:
        return {e.name for e in (*self.endpoints, *OUTSIDERS, STRAY)}

    def governed(self) -> set[str]:
        return {e.name for e in (*self.endpoints, STRAY) if e.governed}


# --------------------------------------------------------------------- what is applied


def applied(*overlays: str) -> tuple[dict, ...]:
    """The objects of the overlays applied together (an object two of them
    ship, such as the default deny, must be the same in both)."""
    found: dict[tuple[str, str], dict] = {}
    for overlay in overlays:
        for doc in build(overlay):
            key = (doc["kind"], doc["metadata"]["name"])
            assert found.get(key, doc) == doc, f"{overlay} ships another {key}"
            found[key] = doc
    return tuple(found.values())


def workloads(docs: Iterable[dict]) -> list[Endpoint]:
    """A pod of each Deployment, StatefulSet and Job."""
    found = []
    for doc in docs:
        if doc["kind"] not in POD_KINDS:
            continue
        template = doc["spec"]["template"]
        ports = tuple(
            (p.get("name"), p["containerPort"], p.get("protocol", "TCP"))
            for c in template["spec"]["containers"]
            for p in c.get("ports", [])
        )
        found.append(
            pod(doc["metadata"]["name"], NAMESPACE, template["metadata"]["labels"], ports=ports)
        )
    return found


def target(docs: tuple[dict, ...], service: str, port: int | None = None) -> tuple[str, str]:
    """The workload a Service sends to, and its pods' port (``port``: the
    Service port; None: its first)."""
    spec = by_name(docs, "Service")[service]["spec"]
    entry = next(p for p in spec["ports"] if port in (None, p["port"]))
    (workload,) = [
        d
        for d in docs
        if d["kind"] in POD_KINDS
        and spec["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    wanted = entry.get("targetPort", entry["port"])
    protocol = entry.get("protocol", "TCP")
    for c in workload["spec"]["template"]["spec"]["containers"]:
        for p in c.get("ports", []):
            if wanted in (p.get("name"), p["containerPort"]):
                return workload["metadata"]["name"], f"{p['containerPort']}/{protocol}"
    raise AssertionError(f"Service {service} targets {wanted}, which no container declares")


def network(docs: tuple[dict, ...], running: set[str] | None = None) -> Network:
    """The policies of ``docs`` over their workloads (only ``running`` ones, if given)."""
    endpoints = [w for w in workloads(docs) if running is None or w.name in running]
    return Network([dict(p) for p in of_kind(docs, "NetworkPolicy")], endpoints)


# --------------------------------------------------------------------- what the stage needs


def table_flows(topology: table.Topology, docs: tuple[dict, ...]) -> set[Flow]:
    """What the stage table says talks to what, at the port of the callee's
    Service: each process to its app's database, to the stores and apps its
    settings name (as its role uses them), the schema Jobs to theirs."""
    web = {p.app: p.name for p in topology.of_role("web")}
    pairs: set[tuple[str, str]] = set()
    for process in topology.processes:
        if process.role == "store":
            continue  # the dev overlay runs the data stores
        if table.APPS.get(process.app) and table.APPS[process.app].sql:
            pairs.add((process.name, SQL_STORE))
        for _key, value in process.env:
            for name in PLACEHOLDER.findall(value):
                if name in web and process.role in APP_CALLERS:
                    pairs.add((process.name, web[name]))
                elif name in STORE_USERS.get(process.role, ()):
                    pairs.add((process.name, STORES[name]))
    for job in expected_jobs(topology.stage):
        pairs.add((job, SQL_STORE))
    return {(src, *target(docs, dst)) for src, dst in pairs}


def routed_flows(docs: tuple[dict, ...]) -> set[Flow]:
    """The edge to the Services the HTTPRoute or the Ingress sends to straight."""
    backends = [
        (ref["name"], ref["port"])
        for route in of_kind(docs, "HTTPRoute")
        for rule in route["spec"]["rules"]
        for ref in rule["backendRefs"]
    ]
    backends += [
        (path["backend"]["service"]["name"], path["backend"]["service"]["port"]["number"])
        for ingress in of_kind(docs, "Ingress")
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends, "an overlay routes to something"
    return {(edge.name, *target(docs, name, port)) for edge in EDGE for name, port in backends}


# >>> stage 1: the front door
def front_door_flows(
    topology: table.Topology, docs: tuple[dict, ...], sources: Iterable[str]
) -> set[Flow]:
    """``sources`` to the gateway's port: anyone may knock."""
    gateways = [p.name for p in topology.of_role("gateway")]
    return {(source, *target(docs, g)) for source in sources for g in gateways}


# <<< stage 1


def dns_flows(endpoints: Iterable[Endpoint]) -> set[Flow]:
    return {(e.name, KUBE_DNS.name, port) for e in (*endpoints, STRAY) for port in DNS}


def expected(topology: table.Topology, docs: tuple[dict, ...], net: Network) -> set[Flow]:
    flows = table_flows(topology, docs) | routed_flows(docs) | dns_flows(net.endpoints)
    flows |= front_door_flows(topology, docs, [o.name for o in OUTSIDERS])  # [stage 1]
    return flows


def assert_exact(
    net: Network,
    topology: table.Topology,
    docs: tuple[dict, ...],
    where: str,
    more: Iterable[Flow] = (),  # the flows of what runs beside the stage
) -> None:
    """The flows allowed are the ones the stage table wants (``expected``)."""
    assert_flows(net, expected(topology, docs, net) | set(more), topology, docs, where)


def assert_flows(
    net: Network, wanted: set[Flow], topology: table.Topology, docs: tuple[dict, ...], where: str
) -> None:
    """The flows allowed are ``wanted``; and each side is exact on its own
    (a loose egress is not made good by a strict ingress, nor the other way
    round): the callers' egress admits only what is wanted, the callees'
    ingress too, but for the gateway's, which takes anyone."""
    allowed = net.allowed()
    assert allowed == wanted, f"{where}: {difference(allowed, wanted)}"
    egress = net.allowed(("Egress",))
    wanted_out = {f for f in wanted if f[0] in net.governed()}
    assert egress == wanted_out, f"{where}, egress: {difference(egress, wanted_out)}"
    ingress = net.allowed(("Ingress",))
    wanted_in = {f for f in wanted if f[1] in net.governed()}
    wanted_in |= front_door_flows(topology, docs, net.everyone())  # [stage 1]
    assert ingress == wanted_in, f"{where}, ingress: {difference(ingress, wanted_in)}"


def running_in(topology: table.Topology, docs: tuple[dict, ...]) -> set[str]:
    """The workloads up in ``topology``: its processes, the Jobs, the stores."""
    names = {p.name for p in topology.processes if p.role != "store"}
    missing = names - {w.name for w in workloads(docs)}
    assert not missing, (
        f"no workload for {sorted(missing)} of stage {topology.stage} {topology.mode}"
    )
    return names | {d["metadata"]["name"] for d in docs if d["kind"] in ("Job", "StatefulSet")}


def difference(allowed: set[Flow], wanted: set[Flow]) -> str:
    extra = "\n  ".join(map(str, sorted(allowed - wanted)))
    lacking = "\n  ".join(map(str, sorted(wanted - allowed)))
    return f"allowed but not needed:\n  {extra}\nneeded but not allowed:\n  {lacking}"


# --------------------------------------------------------------------- tests

STAGE_MODES = [(n, mode) for n, stage in table.STAGES.items() for mode in stage.modes]


@pytest.mark.parametrize("routing", ["", "/ingress"])
@pytest.mark.parametrize(("stage", "mode"), STAGE_MODES)
def test_the_policies_allow_exactly_the_flows_of_the_stage(stage, mode, routing):
    """The stage's overlay over the dev overlay. The overlay runs the stage's
    default mode; another mode runs fewer processes under the same policies
    (no relays or consumers, say), which must then allow exactly what that
    mode needs."""
    docs = applied("dev", f"stage-{stage}{routing}")
    topology = table.stage(stage).topology(mode)
    net = network(docs, running_in(topology, docs))
    assert_exact(net, topology, docs, f"stage {stage} {mode}{routing}")


# >>> stage 2: the data migrations run beside the stage before theirs
MIGRATIONS = [n for n, stage in table.STAGES.items() if stage.data_migration]


def stores_of(app: str, topology: table.Topology) -> set[str]:
    """The StatefulSets holding ``app``'s data: PostgreSQL for a SQL app, and
    the stores its web process is given the address of."""
    stores = {SQL_STORE} if table.APPS[app].sql else set()
    for process in topology.processes:
        if process.app == app and process.role == "web":
            for _key, value in process.env:
                stores |= {STORES[p] for p in PLACEHOLDER.findall(value) if p in STORE_USERS["web"]}
    return stores


@pytest.mark.parametrize("stage", MIGRATIONS)
def test_a_data_migration_adds_its_job_to_its_stores(stage):
    """migrate-stage-N is applied while stage N-1 runs: its Job reads the
    monolith's database and writes the new owner's store, and nothing of the
    running stage changes."""
    before = stage - 1
    docs = applied("dev", f"stage-{before}", f"migrate-stage-{stage}")
    app, command = table.stage(stage).data_migration
    job = command.replace("_", "-")
    old = table.topology(before)
    net = network(docs, running_in(old, docs))
    stores = stores_of("monolith", old) | stores_of(app, table.topology(stage))
    jobs = {(job, *target(docs, store)) for store in stores}
    assert_exact(net, old, docs, f"migrate-stage-{stage}", more=jobs)


# <<< stage 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_network_policy_validates_and_is_the_blogs(overlay):
    """Kubernetes 1.31, strict; labelled part-of=blog like the rest, so that
    `kubectl apply --prune -l app.kubernetes.io/part-of=blog` sees them."""
    policies = of_kind(build(overlay), "NetworkPolicy")
    assert policies, f"{overlay} ships no NetworkPolicy"
    for policy in policies:
        kubernetes_validate.validate(policy, KUBERNETES_VERSION, strict=True)
        assert policy["metadata"]["labels"]["app.kubernetes.io/part-of"] == "blog"


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o.startswith("stage-") or o == "dev"])
def test_the_namespace_denies_by_default(overlay):
    """Every pod isolated both ways, DNS its only way out, in the namespace's
    own overlay and in every stage's (so a stage applied alone is not open)."""
    policies = by_name(build(overlay), "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = policies["dns"]["spec"]
    assert dns["podSelector"] == {}
    assert dns["policyTypes"] == ["Egress"]


def test_the_evaluator_reads_policies_as_a_cluster_does():
    """The checks above are only as good as this reading of the API."""
    a = pod("a", NAMESPACE, {"app": "a"})
    b = pod("b", NAMESPACE, {"app": "b"}, ports=(("http", 80, "TCP"),))

    def policy(name: str, selector: dict, **spec) -> dict:
        return {
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"podSelector": selector, **spec},
        }

    def flows(*policies: dict) -> set[Flow]:
        net = Network(list(policies), [a, b], extra_ports=((81, "TCP"),))
        return {f for f in net.allowed() if {f[0], f[1]} <= {"a", "b"}}

    everything = {(s, d, p) for s in "ab" for d in "ab" for p in ("80/TCP", "81/TCP")}
    assert flows() == everything  # no policy: all open
    into_b = policy(
        "into-b",
        {"matchLabels": {"app": "b"}},
        ingress=[
            {"from": [{"podSelector": {"matchLabels": {"app": "a"}}}], "ports": [{"port": "http"}]}
        ],
    )
    isolated_b = {f for f in everything if f[1] != "b"} | {("a", "b", "80/TCP")}
    assert flows(into_b) == isolated_b  # a named port, the policy's namespace
    deny = policy("deny", {}, policyTypes=["Ingress", "Egress"])
    assert flows(into_b, deny) == set()  # b admits a, but a may not go out
    out_of_a = policy("out", {"matchLabels": {"app": "a"}}, egress=[{}])
    assert flows(into_b, deny, out_of_a) == {("a", "b", "80/TCP")}  # they add up
    # A namespaceSelector and a podSelector in one entry: both; other namespaces need one.
    both = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "x"}}}
    both["podSelector"] = {"matchExpressions": [{"key": "app", "operator": "Exists"}]}
    assert not peer_admits(both, NAMESPACE, pod("c", "x", {}))
    assert peer_admits(both, NAMESPACE, pod("c", "x", {"app": "c"}))
    assert not peer_admits({"podSelector": {}}, NAMESPACE, pod("c", "x", {"app": "c"}))
    assert peer_admits({"ipBlock": {"cidr": "203.0.113.0/24"}}, NAMESPACE, OUTSIDERS[-1])
    assert not peer_admits({"ipBlock": {"cidr": "0.0.0.0/0"}}, NAMESPACE, a)


def mutated(policies: list[dict], name: str, **spec) -> list[dict]:
    """The policies with ``name``'s spec changed (or left out: no ``spec``)."""
    found = [p for p in policies if p["metadata"]["name"] == name]
    assert found, name
    if not spec:
        return [p for p in policies if p["metadata"]["name"] != name]
    return [{**p, "spec": {**p["spec"], **spec}} if p in found else p for p in policies]


@pytest.mark.parametrize(
    ("name", "spec", "caught"),
    [
        ("postgres-from-monolith", {}, ("needed but not", "('monolith', 'postgres', '5432/TCP')")),
        # any pod of any namespace let into the database
        (
            "postgres-from-monolith",
            {"ingress": [{"from": [{"namespaceSelector": {}}]}]},
            ("allowed but not", "('lookalike', 'postgres', '5432/TCP')"),
        ),
        # the monolith let out to any port of its database: the ingress holds, not the egress
        (
            "monolith-database",
            {
                "egress": [
                    {
                        "to": [
                            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "postgres"}}}
                        ]
                    }
                ]
            },
            ("egress: allowed but not", "('monolith', 'postgres', '8000/TCP')"),
        ),
        (
            "dns",
            {"egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]},
            ("allowed but not", "('monolith', 'internet', '53/UDP')"),
        ),
    ],
)
def test_a_missing_or_loose_policy_is_caught(name, spec, caught):
    """The check is not vacuous: stage 0's policies pass it, and each of these
    changes to them fails it, saying what is wrong."""
    docs = applied("dev", "stage-0")
    topology = table.topology(0)
    net = network(docs)
    assert_exact(net, topology, docs, "stage 0")
    broken = Network(mutated(net.policies, name, **spec), net.endpoints)
    with pytest.raises(AssertionError) as failure:
        assert_exact(broken, topology, docs, "broken")
    assert all(part in str(failure.value) for part in caught), failure.value
