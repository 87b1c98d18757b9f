"""Static checks of the Kubernetes manifests (k8s/): no cluster here, so every
overlay is built with `kubectl kustomize` and what it produces is checked:
schemas (kubernetes-validate for Kubernetes 1.31, the vendored Gateway API
schemas for HTTPRoute/Gateway), security, probes, wiring between objects, the
env vars the apps read and the components of each stage (against the stage
table, stages/table.py).
# >>> stage 1: the routes rendered from the gateway's route table
And the committed routes (against a fresh render of gateway/routes.py).
# <<< stage 1
"""

from __future__ import annotations

import functools
import json
import re
import shlex  # [stage 1]
import shutil
import subprocess
import sys  # [stage 1]
from pathlib import (
    Path,
    PurePosixPath,  # [stage 1]
)

import jsonschema
import kubernetes_validate
import pytest
import yaml

from stages import table
from tests.deploy import dockerfiles

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
KUBERNETES_VERSION = "1.31.0"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"

STAGES = tuple(table.STAGES)
OVERLAYS = (
    *(f"stage-{n}" for n in STAGES),
    *(f"stage-{n}/ingress" for n in STAGES),
    "dev",
    "migrate-stage-2",  # [stage 2]
    "migrate-stage-4",  # [stage 4]
)
GATEWAY_API_SCHEMAS = {
    "HTTPRoute": K8S / "schemas" / "httproute_v1.json",
    "Gateway": K8S / "schemas" / "gateway_v1.json",
}
POD_KINDS = ("Deployment", "StatefulSet", "Job")

# Where each image's code lives: the env vars it reads are found there.
LIBS = ["libs/blogweb"]
LIBS.append("libs/blogbus")  # [stage 3]
SOURCES = {
    "monolith": ("monolith", *LIBS, "manage.py"),
    "posts": ("services/posts", *LIBS),  # [stage 4]
    "comments": ("services/comments", *LIBS),  # [stage 2]
}
# The images' Dockerfiles (docker/): what a blog container runs unless the
# manifest overrides it, and as whom.
DOCKERFILES = {name: REPO / "docker" / f"{name}.Dockerfile" for name in SOURCES}
DOCKERFILES["gateway"] = REPO / "docker" / "gateway.Dockerfile"  # [stage 1]
APP_IMAGE = re.compile(rf"^ghcr\.io/example/blog-({'|'.join(DOCKERFILES)}):")
# Read by Django itself, not through os.environ in the project's code.
FRAMEWORK_ENV = {"DJANGO_SETTINGS_MODULE"}
ENV_READ = re.compile(
    r"""(?:os\.environ\.get|os\.environ\[|os\.getenv|env_bool|env_list|env_seconds)\(?\s*["']([A-Z][A-Z0-9_]*)["']"""
)


def expected_deployments(stage: int) -> set[str]:
    """What the stage runs, by Deployment name: the processes of the stage
    table's default mode (data stores: the dev overlay)."""
    return {p.name for p in table.topology(stage).processes if p.role != "store"}


def expected_jobs(stage: int) -> set[str]:
    """The schema migration Job of each SQL app in the stage's request path."""
    return {f"{app}-migrate" for app in table.topology(stage).apps if table.APPS[app].sql}


@functools.cache
def build(overlay: str) -> tuple[dict, ...]:
    result = subprocess.run(
        [KUBECTL, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    docs = tuple(d for d in yaml.safe_load_all(result.stdout) if d)
    assert docs, f"{overlay} produced no documents"
    return docs


def of_kind(docs, kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def by_name(docs, kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in of_kind(docs, kind)}


def pod_specs(docs):
    for doc in docs:
        if doc["kind"] in POD_KINDS:
            yield doc, doc["spec"]["template"]["spec"]


def containers(spec: dict) -> list[dict]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def component_of(container: dict) -> str | None:
    match = APP_IMAGE.match(container["image"])
    return match.group(1) if match else None


@functools.cache
def env_read_by(component: str) -> frozenset[str]:
    names = set(FRAMEWORK_ENV)
    for source in SOURCES[component]:
        path = REPO / source
        files = [path] if path.is_file() else path.rglob("*.py")
        for file in files:
            if "tests" in file.parts or file.name == "test.py" or "bench" in file.parts:
                continue
            names |= set(ENV_READ.findall(file.read_text(encoding="utf-8")))
    return frozenset(names)


def effective_env(docs, container: dict) -> dict[str, str | None]:
    """Name -> literal value (None for a secret) of a container's environment."""
    configmaps = by_name(docs, "ConfigMap")
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmaps[source["configMapRef"]["name"]]["data"])
        else:
            raise AssertionError(f"{container['name']}: envFrom other than a ConfigMap: {source}")
    for var in container.get("env", []):
        env[var["name"]] = var.get("value")
    return env


# --------------------------------------------------------------------- building


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds(overlay):
    docs = build(overlay)
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), f"{overlay}: duplicate objects"
    assert all(d["metadata"].get("namespace") == "blog" for d in docs if d["kind"] != "Namespace")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_document_validates(overlay):
    for doc in build(overlay):
        if doc["kind"] in GATEWAY_API_SCHEMAS:
            schema = json.loads(GATEWAY_API_SCHEMAS[doc["kind"]].read_text())
            jsonschema.Draft202012Validator(schema).validate(doc)
            continue
        # Raises SchemaNotFoundError for a kind it does not know (instead of
        # the CLI's warning), ValidationError for an invalid document.
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_gateway_api_schemas_reject_bad_routes():
    """The vendored schemas are not decoration: they catch what the CRDs catch."""
    schema = json.loads(GATEWAY_API_SCHEMAS["HTTPRoute"].read_text())
    route = next(d for d in build(f"stage-{max(STAGES)}") if d["kind"] == "HTTPRoute")
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(route)
    bad_type = json.loads(json.dumps(route))
    bad_type["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Prefix"
    relative = json.loads(json.dumps(route))
    relative["spec"]["rules"][0]["matches"][0]["path"]["value"] = "api/posts"
    misspelt = json.loads(json.dumps(route))
    misspelt["spec"]["rules"][0]["backendRef"] = misspelt["spec"]["rules"][0].pop("backendRefs")
    for bad in (bad_type, relative, misspelt):
        assert not validator.is_valid(bad)


# --------------------------------------------------------------------- pods


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_containers_are_locked_down_and_sized(overlay):
    for doc, spec in pod_specs(build(overlay)):
        where = f"{overlay} {doc['kind']}/{doc['metadata']['name']}"
        assert spec.get("automountServiceAccountToken") is False, where
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        account = spec.get("serviceAccountName")
        assert account in by_name(build(overlay), "ServiceAccount"), f"{where}: {account}"
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in containers(spec):
            sc = c["securityContext"]
            cw = f"{where} container {c['name']}"
            assert sc["runAsNonRoot"] is True, cw
            assert sc["runAsUser"] != 0, cw
            if component_of(c):
                assert sc["runAsUser"] == 10001, cw
            assert sc["readOnlyRootFilesystem"] is True, cw
            assert sc["allowPrivilegeEscalation"] is False, cw
            assert sc["capabilities"]["drop"] == ["ALL"], cw
            assert "add" not in sc["capabilities"], cw
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", cw
            for kind in ("requests", "limits"):
                assert set(c["resources"][kind]) >= {"cpu", "memory"}, f"{cw}: {kind}"
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, cw
            assert "emptyDir" in volumes[mounts["/tmp"]], cw
            assert ":" in c["image"], cw
            assert not c["image"].endswith(":latest"), cw


@pytest.mark.parametrize("overlay", [f"stage-{n}" for n in STAGES])
def test_web_containers_probe_healthz_and_readyz(overlay):
    docs = build(overlay)
    for dep in of_kind(docs, "Deployment"):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        if labels["app.kubernetes.io/component"] != "web":
            continue
        for c in dep["spec"]["template"]["spec"]["containers"]:
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            for probe, path in (
                ("startupProbe", "/healthz"),
                ("livenessProbe", "/healthz"),
                ("readinessProbe", "/readyz"),
            ):
                get = c[probe]["httpGet"]
                assert get["path"] == path, f"{dep['metadata']['name']} {probe}"
                assert get["port"] in ports or get["port"] in ports.values()
                # Django answers a Host it does not allow with a 400: the
                # kubelet's Host (the pod IP) is replaced by an allowed one.
                host = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}.get("Host")
                if component_of(c) != "gateway":
                    allowed = effective_env(docs, c)["DJANGO_ALLOWED_HOSTS"].split(",")
                    assert host in allowed, f"{dep['metadata']['name']}: probe Host {host}"


@pytest.mark.parametrize("overlay", [*(f"stage-{n}" for n in STAGES), "dev"])
def test_services_select_pods_and_target_their_ports(overlay):
    docs = build(overlay)
    workloads = [*of_kind(docs, "Deployment"), *of_kind(docs, "StatefulSet")]
    for svc in of_kind(docs, "Service"):
        selector = svc["spec"]["selector"]
        selected = [
            w
            for w in workloads
            if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, f"{overlay} Service/{svc['metadata']['name']}: {selected}"
        workload = selected[0]
        assert workload["spec"]["selector"]["matchLabels"].items() <= (
            workload["spec"]["template"]["metadata"]["labels"].items()
        )
        declared = {
            (p.get("name"), p["containerPort"])
            for c in workload["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert any(target in pair for pair in declared), (
                f"{overlay} Service/{svc['metadata']['name']} targets {target}, "
                f"the pods declare {declared}"
            )
    for sts in of_kind(docs, "StatefulSet"):
        service = by_name(docs, "Service")[sts["spec"]["serviceName"]]
        assert service["spec"]["clusterIP"] == "None", "StatefulSets get a headless Service"
        assert sts["spec"]["volumeClaimTemplates"]


@pytest.mark.parametrize("overlay", [f"stage-{n}" for n in STAGES])
def test_pod_disruption_budgets_cover_the_replicated_web_deployments(overlay):
    docs = build(overlay)
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        matched = [
            d
            for d in of_kind(docs, "Deployment")
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matched) == 1, pdb["metadata"]
        assert matched[0]["spec"]["replicas"] >= 2, pdb["metadata"]


def image_instruction(component: str, keyword: str) -> str | None:
    """The last ``keyword`` of the final stage of the component's Dockerfile."""
    values = [args for k, args in dockerfiles.final_stage(DOCKERFILES[component]) if k == keyword]
    return values[-1] if values else None


# >>> stage 1: the gateway writes only to its emptyDir
# Where nginx writes nothing: the std streams (runc hands them to the container's user).
STD_STREAMS = {"stderr", "/dev/stdout", "/dev/stderr", "off"}


def container_argv(container: dict) -> list[str]:
    """What the container runs: its command/args over the image's
    ENTRYPOINT/CMD, as Kubernetes combines them (a command drops the CMD)."""
    component = component_of(container)
    entrypoint = json.loads(image_instruction(component, "ENTRYPOINT") or "[]")
    cmd = json.loads(image_instruction(component, "CMD") or "[]")
    if "command" in container:
        return [*container["command"], *container.get("args", [])]
    return [*entrypoint, *container.get("args", cmd)]


def writable_dirs(spec: dict, container: dict) -> list[PurePosixPath]:
    """The container's writable emptyDir mounts (the root file system is read-only)."""
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    return [
        PurePosixPath(m["mountPath"])
        for m in container.get("volumeMounts", [])
        if "emptyDir" in volumes[m["name"]] and not m.get("readOnly", False)
    ]


@functools.cache
def gateway_config(stage: int) -> str:
    """The nginx.conf the gateway image renders for `stage`: its build stage's
    render command (its options, --std-logs or not), printed to stdout."""
    gateway = dockerfiles.instructions(DOCKERFILES["gateway"])
    run = next(a for k, a in gateway if k == "RUN" and "gateway.render" in a)
    command = shlex.split(run.split("gateway.render", 1)[1].split("&&", 1)[0])
    if "--out" in command:
        at = command.index("--out")
        del command[at : at + 2]
    command = [c.replace("$STAGE", str(stage)) for c in command]
    result = subprocess.run(
        [sys.executable, "-m", "gateway.render", *command],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def nginx_uncovered(argv: list[str], config: str, writable: list[PurePosixPath]) -> list[str]:
    """The paths nginx (started with `argv`) writes under neither a writable
    mount nor the std streams: its -e error log, and every pid / log / temp
    path of the config, relative ones resolved against its -p prefix."""
    assert PurePosixPath(argv[0]).name == "nginx", argv
    prefix = PurePosixPath(argv[argv.index("-p") + 1]) if "-p" in argv else None
    # Without -e, nginx opens its compiled-in error log before reading the config.
    uncovered = [] if "-e" in argv else ["<compiled-in error log>"]
    paths = [argv[argv.index("-e") + 1]] if "-e" in argv else []
    directive = r"^\s*(?:pid|error_log|access_log|\w+_temp_path)\s+(\S+?);?(?:\s|$)"
    paths += re.findall(directive, config, re.MULTILINE)
    for path in paths:
        if path in STD_STREAMS:
            continue
        resolved = PurePosixPath(path)
        if not resolved.is_absolute():
            if prefix is None:
                uncovered.append(f"{path} (relative, no -p prefix)")
                continue
            resolved = prefix / path
        if not any(w == resolved or w in resolved.parents for w in writable):
            uncovered.append(str(resolved))
    return uncovered


@pytest.mark.parametrize("stage", [n for n in STAGES if table.topology(n).has_gateway])
def test_the_gateway_writes_only_to_its_emptydir(stage):
    """nginx writes its pid file and temp folders under its -p prefix, read
    from docker/gateway.Dockerfile's ENTRYPOINT (or the container's
    command/args); its logs, from the config the image renders, go to the std
    streams. The root file system being read-only, all of it must be on an
    emptyDir the container mounts."""
    docs = build(f"stage-{stage}")
    spec = by_name(docs, "Deployment")["gateway"]["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if component_of(c) == "gateway"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    argv = container_argv(container)
    writable = writable_dirs(spec, container)
    config = gateway_config(stage)
    assert "-p" in argv, argv
    uncovered = nginx_uncovered(argv, config, writable)
    assert not uncovered, f"stage {stage}: {argv} writes {uncovered}, not on {writable}"
    # The check is not vacuous: the image's former prefix, or no -e, is caught.
    moved = [*argv]
    moved[moved.index("-p") + 1] = "/srv/gateway"
    assert nginx_uncovered(moved, config, writable) == [
        "/srv/gateway/" + p for p in re.findall(r"^\s*(?:pid|\w+_temp_path) (\S+);", config, re.M)
    ]
    no_e = [*argv]
    del no_e[no_e.index("-e") : no_e.index("-e") + 2]
    assert nginx_uncovered(no_e, config, writable) == ["<compiled-in error log>"]


# <<< stage 1


@pytest.mark.parametrize("overlay", [f"stage-{n}" for n in STAGES])
def test_pods_run_as_the_user_of_their_image(overlay):
    """runAsUser/runAsGroup of every blog container is its image's USER."""
    for doc, spec in pod_specs(build(overlay)):
        for c in containers(spec):
            component = component_of(c)
            if component is None:
                continue
            sc = {**spec["securityContext"], **c["securityContext"]}
            user = image_instruction(component, "USER")
            assert f"{sc['runAsUser']}:{sc['runAsGroup']}" == user, (
                f"{overlay} {doc['metadata']['name']}/{c['name']}: image USER {user}"
            )


# --------------------------------------------------------------------- configuration


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o != "dev"])
def test_every_env_var_set_is_one_the_app_reads(overlay):
    docs = build(overlay)
    for doc, spec in pod_specs(docs):
        for c in containers(spec):
            component = component_of(c)
            if component is None:
                continue
            env = effective_env(docs, c)
            # >>> stage 1: the gateway
            if component == "gateway":
                assert not env, "the gateway image takes its routes at build time"
                continue
            # <<< stage 1
            unknown = set(env) - env_read_by(component)
            assert not unknown, (
                f"{overlay} {doc['metadata']['name']}/{c['name']} sets {sorted(unknown)}, "
                f"which the {component} code never reads"
            )
            # production settings refuse to start without these
            assert {"DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"} <= set(env)
            assert env["DJANGO_SETTINGS_MODULE"].endswith(".settings.production")


def test_the_env_scan_finds_what_the_settings_read():
    """The check above is only as good as this scan."""
    assert {"DATABASE_URL", "DJANGO_SECRET_KEY"} <= env_read_by("monolith")
    assert "COMMENTS_BACKEND" in env_read_by("monolith")  # [stage 2]
    assert {"PUBLISH_EVENTS", "BROKER_URL"} <= env_read_by("monolith")  # [stage 3]
    assert {"MONGO_URL", "POSTS_URL"} <= env_read_by("comments")  # [stage 2]
    assert "POST_LOOKUP" in env_read_by("comments")  # [stage 3]
    assert {"COMMENT_COUNTS", "COMMENTS_URL"} <= env_read_by("posts")  # [stage 4]
    assert "MONGO_URL" not in env_read_by("posts")  # [stage 4]


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o != "dev"])
def test_secret_refs_point_at_keys_of_the_dev_secrets(overlay):
    dev_secrets = by_name(build("dev"), "Secret")
    assert not of_kind(build(overlay), "Secret"), "only the dev overlay ships secret values"
    for doc, spec in pod_specs(build(overlay)):
        for c in containers(spec):
            for var in c.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in dev_secrets, f"{doc['metadata']['name']}: {ref}"
                    assert ref["key"] in dev_secrets[ref["name"]]["data"], ref
            for source in c.get("envFrom", []):
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in dev_secrets


def test_dev_data_stores_read_their_secrets():
    docs = build("dev")
    secrets = by_name(docs, "Secret")
    for _doc, spec in pod_specs(docs):
        for c in spec["containers"]:
            for source in c.get("envFrom", []):
                assert source["secretRef"]["name"] in secrets
    # the URLs in the app secrets name the dev Services
    services = set(by_name(docs, "Service"))
    for secret in secrets.values():
        for key, value in secret["data"].items():
            if key.endswith("-url"):
                import base64

                url = base64.b64decode(value).decode()
                host = re.match(r"^[a-z+]+://[^@]*@([^:/]+)", url).group(1)
                assert host in services, f"{secret['metadata']['name']}.{key}: {host}"


# --------------------------------------------------------------------- stages


@pytest.mark.parametrize("stage", STAGES)
def test_stage_runs_exactly_its_components(stage):
    for overlay in (f"stage-{stage}", f"stage-{stage}/ingress"):
        docs = build(overlay)
        assert set(by_name(docs, "Deployment")) == expected_deployments(stage)
        assert set(by_name(docs, "Job")) == expected_jobs(stage)
        assert not of_kind(docs, "StatefulSet"), "data stores live in the dev overlay"
        web = {
            d["metadata"]["name"]
            for d in of_kind(docs, "Deployment")
            if d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "web"
        }
        assert set(by_name(docs, "Service")) == web
        routing = {d["kind"] for d in docs} & {"HTTPRoute", "Ingress"}
        assert routing == ({"Ingress"} if overlay.endswith("ingress") else {"HTTPRoute"})


def _table_env(stage: int) -> dict[str, dict[str, str]]:
    """Process name -> the stage settings the stage table gives it (stores left
    out: the dev overlay runs them)."""
    addresses: dict[str, object]
    addresses = {name: f"http://{name}:{app.port}" for name, app in table.APPS.items()}
    addresses["mongodb"] = "mongodb://mongo:27017"  # [stage 2]
    addresses["broker"] = "amqp://rabbitmq:5672//"  # [stage 3]
    # The credentials come from Secrets (checked apart): any tokens will do here.  # [stage 2]
    addresses |= table.credentials(table.new_tokens())  # [stage 2]
    topology = table.topology(stage)
    return {p.name: p.environment(addresses) for p in topology.processes if p.role != "store"}


# The settings that make a stage, and the apps' defaults when unset (the
# monolith's COMMENT_COUNTS is sync; the services default to async).
MODE_SETTINGS: dict[str, str] = {}
MODE_SETTINGS |= {"COMMENTS_BACKEND": "local"}  # [stage 2]
MODE_SETTINGS |= {"COMMENT_COUNTS": "sync", "PUBLISH_EVENTS": ""}  # [stage 3]
MODE_SETTINGS |= {"POST_LOOKUP": "async"}  # [stage 3]
APP_DEFAULTS: dict[tuple[str | None, str], str] = {}
APP_DEFAULTS[("posts", "COMMENT_COUNTS")] = "async"  # [stage 4]


@pytest.mark.parametrize("stage", STAGES)
def test_stage_runs_the_processes_of_the_stage_table(stage):
    """Same processes and same communication modes as the stage table says
    (its default mode), which `STAGE=N make up` and the tests run too."""
    processes = _table_env(stage)
    docs = build(f"stage-{stage}")
    deployments = by_name(docs, "Deployment")
    assert set(processes) == set(deployments)
    for name, settings in processes.items():
        c = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        # >>> stage 1: the gateway
        if component_of(c) == "gateway":
            continue  # its upstream addresses are baked in at image build
        # <<< stage 1
        env = effective_env(docs, c)
        for key, mode_default in MODE_SETTINGS.items():
            default = APP_DEFAULTS.get((component_of(c), key), mode_default)
            if key in env_read_by(component_of(c)) or key in settings:
                assert (env.get(key) or default) == (settings.get(key) or default), (
                    f"stage {stage} {name}: {key}"
                )
        for key, value in settings.items():
            if value.startswith("http://"):  # the address of another app
                port = value.rsplit(":", 1)[1]
                assert env[key].endswith(f":{port}"), f"stage {stage} {name}: {key}"
        # >>> stage 3: the relays and consumers reach the broker
        if "BROKER_URL" in settings and not name.endswith(("-relay", "-consumer")):
            continue  # the table gives it to every process of an app; relays and consumers use it
        if name.endswith(("-relay", "-consumer")):
            assert "BROKER_URL" in env
        # <<< stage 3


def test_service_urls_name_services_that_run_at_that_stage():
    for stage in STAGES:
        docs = build(f"stage-{stage}")
        services = {
            s["metadata"]["name"]: s["spec"]["ports"][0]["port"] for s in of_kind(docs, "Service")
        }
        for _doc, spec in pod_specs(docs):
            for c in containers(spec):
                for key, value in effective_env(docs, c).items():
                    if key.endswith("_URL") and value and value.startswith("http://"):
                        host, port = value.removeprefix("http://").split(":")
                        assert services.get(host) == int(port), f"stage {stage} {key}={value}"


# >>> stage 2: the credentials of the /internal/ routes
CREDENTIALS = ("INTERNAL_TOKEN", "INTERNAL_CALLERS")


def dev_secret_values() -> dict[str, dict[str, str]]:
    import base64

    return {
        name: {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
        for name, secret in by_name(build("dev"), "Secret").items()
    }


@pytest.mark.parametrize("stage", STAGES)
def test_web_deployments_read_their_own_credentials_and_accept_the_tables_callers(stage):
    """A web process the stage table gives credentials reads its token and its
    caller's entry from its own Secret; no other container has either."""
    topology = table.topology(stage)
    docs = build(f"stage-{stage}")
    for doc, spec in pod_specs(docs):
        for c in containers(spec):
            refs = {
                var["name"]: var.get("valueFrom", {}).get("secretKeyRef")
                for var in c.get("env", [])
                if var["name"] in CREDENTIALS
            }
            name = doc["metadata"]["name"]
            process = next(
                (
                    p
                    for p in topology.of_role("web")
                    if p.name == name and "INTERNAL_TOKEN" in dict(p.env)
                ),
                None,
            )
            if process is None or doc["kind"] != "Deployment" or c not in spec["containers"]:
                assert not refs, f"stage {stage} {name}/{c['name']}: {sorted(refs)}"
                continue
            own = f"{component_of(c)}-secrets"
            assert refs["INTERNAL_TOKEN"] == {"name": own, "key": "internal-token"}, name
            callers = [f"internal-caller-{a}" for a in table.accepted_callers(process)]
            assert refs["INTERNAL_CALLERS"]["name"] == own, name
            assert [refs["INTERNAL_CALLERS"]["key"]] == callers, f"stage {stage} {name}"


def test_each_apps_secret_holds_its_own_token_and_its_callers_entries_only():
    secrets = dev_secret_values()
    tokens = {
        name.removesuffix("-secrets"): data["internal-token"]
        for name, data in secrets.items()
        if "internal-token" in data
    }
    assert set(tokens) == set(SOURCES)
    assert len(set(tokens.values())) == len(tokens)
    entries = table.credentials(tokens)["caller"]
    for name, data in secrets.items():
        app = name.removesuffix("-secrets")
        for key, value in data.items():
            for other, token in tokens.items():
                assert other == app or token not in value, f"{name}.{key} holds {other}'s token"
            if key.startswith("internal-caller-"):
                assert value == entries[key.removeprefix("internal-caller-")], f"{name}.{key}"
        if app in tokens:
            callers = {
                caller
                for number in STAGES
                for p in table.topology(number).of_role("web")
                if p.app == app
                for caller in table.accepted_callers(p)
            }
            keys = {
                k.removeprefix("internal-caller-") for k in data if k.startswith("internal-caller-")
            }
            assert keys == callers, name


# <<< stage 2
# >>> stage 1: the routes rendered from the gateway's route table
# --------------------------------------------------------------------- routes


@pytest.mark.parametrize("stage", STAGES)
def test_committed_routes_equal_a_fresh_render(stage):
    from gateway import k8s

    for path, text in k8s.outputs(stage).items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.relative_to(REPO)} is stale: run `python -m gateway.k8s --write`"
        )


@pytest.mark.parametrize("stage", STAGES)
def test_routes_send_to_services_of_the_stage(stage):
    from gateway import k8s

    for overlay in (f"stage-{stage}", f"stage-{stage}/ingress"):
        docs = build(overlay)
        services = by_name(docs, "Service")
        backends = []
        for route in of_kind(docs, "HTTPRoute"):
            backends += [b for r in route["spec"]["rules"] for b in r["backendRefs"]]
        for ingress in of_kind(docs, "Ingress"):
            backends += [
                {
                    "name": p["backend"]["service"]["name"],
                    "port": p["backend"]["service"]["port"]["number"],
                }
                for r in ingress["spec"]["rules"]
                for p in r["http"]["paths"]
            ]
        assert backends
        for backend in backends:
            assert backend["name"] in services, f"{overlay}: no Service {backend['name']}"
            assert backend["port"] in [
                p["port"] for p in services[backend["name"]]["spec"]["ports"]
            ]
    k8s.check(stage)


# >>> stage 4: a route the HTTPRoute can express, sent to the posts service
def test_route_check_catches_a_wrong_translation(monkeypatch):
    """gateway.k8s.check fails when a translation would send requests
    straight to the wrong Service."""
    from gateway import k8s
    from gateway import routes as rt

    wrong = k8s.Translation((("PathPrefix", "/api/posts"),), True)
    monkeypatch.setitem(k8s.TRANSLATIONS, rt.COMMENTS_OF_POST, wrong)
    with pytest.raises(ValueError, match="would go to"):
        k8s.check(4)


# <<< stage 4


def test_routes_are_direct_where_exact():
    from gateway import k8s

    # >>> stage 4: the posts service
    direct = {(r.path, r.backend) for r in k8s.rules(4) if r.backend != "gateway"}
    assert direct == {("/api/schema", "posts"), ("/api/docs", "posts"), ("/static", "posts")}
    resolved = k8s.resolve(k8s.rules(4), "/api/posts/1/comments/")
    assert resolved.backend == "gateway"
    # <<< stage 4
    assert k8s.resolve(k8s.rules(1), "/api/posts/").backend == "monolith"
    assert k8s.resolve(k8s.rules(0), "/healthz").backend == "monolith"


# <<< stage 1
