"""`manage.py check --deploy` is clean for every web Deployment of every
stage's Kubernetes overlay, run with the environment that Deployment gives its
container: HTTPS only (redirect, HSTS, secure cookies), no debug, a real
secret key. No cluster here: the overlay is built with `kubectl kustomize`
(as tests/deploy/test_k8s.py does), ConfigMap refs are resolved from the
rendered ConfigMaps, Secret refs from the dev overlay's Secrets.

Every address in that environment (database, MongoDB, the other components)
is moved to a local socket that accepts and never answers: the check must
connect to none of them (it does not: no database checks are asked for, and
the OpenAPI document that drf-spectacular's deploy check generates is made
offline)."""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

from stages import table
from tests.deploy.test_k8s import REPO, build, by_name, component_of

# (stage, Deployment, app): each stage's web processes, by the stage table.
WEB_DEPLOYMENTS = [
    (stage, process.name, process.app)
    for stage in table.STAGES
    for process in table.topology(stage).processes
    if process.role == "web" and process.app in table.APPS
]
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://")


def _secret_value(secrets: dict[str, dict], ref: dict) -> str:
    data = secrets[ref["name"]]["data"]
    return base64.b64decode(data[ref["key"]]).decode()


def container_env(overlay: str, deployment: str, app: str) -> dict[str, str]:
    """The environment of ``app``'s container in ``deployment``: envFrom
    first, then env (which wins, as in Kubernetes), every value resolved."""
    docs = build(overlay)
    configmaps = by_name(docs, "ConfigMap")
    secrets = by_name(build("dev"), "Secret")
    spec = by_name(docs, "Deployment")[deployment]["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if component_of(c) == app]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmaps[source["configMapRef"]["name"]]["data"])
        else:
            name = source["secretRef"]["name"]
            data = secrets[name]["data"]
            env.update({k: _secret_value(secrets, {"name": name, "key": k}) for k in data})
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        source = var["valueFrom"]
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[var["name"]] = configmaps[ref["name"]]["data"][ref["key"]]
        elif "secretKeyRef" in source:
            env[var["name"]] = _secret_value(secrets, source["secretKeyRef"])
        else:
            raise AssertionError(f"{deployment}: {var['name']} from {source}: not resolved here")
    return env


@contextmanager
def silent_listener() -> Iterator[tuple[int, socket.socket]]:
    """A local port whose connections the kernel accepts and nobody answers:
    what reaches it is counted afterwards (``connections_made``)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    try:
        yield sock.getsockname()[1], sock
    finally:
        sock.close()


def connections_made(sock: socket.socket) -> int:
    made = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return made
        conn.close()
        made += 1


def moved_to(url: str, port: int) -> str:
    """``url`` with its host and port replaced by 127.0.0.1:``port``
    (credentials, path and query kept)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.mark.parametrize(("stage", "deployment", "app"), WEB_DEPLOYMENTS)
def test_check_deploy_is_clean_with_the_deployments_environment(stage, deployment, app):
    env = container_env(f"stage-{stage}", deployment, app)
    assert env["DJANGO_SETTINGS_MODULE"] == f"{table.APPS[app].settings}.production"
    assert env.get("DJANGO_SECURE_SSL_REDIRECT", "1") not in ("0", "false", "no", "off")
    addresses = sorted(name for name, value in env.items() if _URL.match(value))
    assert addresses, f"{deployment}: no address in its environment"
    with silent_listener() as (port, listener):
        moved = {name: moved_to(env[name], port) for name in addresses}
        result = subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            cwd=REPO / table.APPS[app].folder,
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PYTHONDONTWRITEBYTECODE": "1",
                **env,
                **moved,
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        made = connections_made(listener)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"stage {stage} {deployment}:\n{output}"
    assert "System check identified no issues" in result.stdout, output
    assert made == 0, f"stage {stage} {deployment}: connected to one of {addresses}"
