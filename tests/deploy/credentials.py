"""The credentials the deployment artefacts give each component, as the
least-privilege tests read them: compose's services (each stage's env file,
compose's interpolation) and the rendered Kubernetes overlays (each
secretKeyRef resolved against the dev overlay's Secrets); and a PostgreSQL
server of a test's own, to run the stores' init SQL against.

A credential is a URL that names a user (``postgresql://monolith:...@``), or
a password variable. A component is an app of the stage table; the services
that run an app's image are that app's, except the data migrations' read of
the monolith's database (its own role) and compose's ``bus_declare``
one-shots (the topology user, which declares other components' queues).
"""

from __future__ import annotations

import base64
import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from blogtest.ports import free_port
from tests.deploy import compose as compose_file
from tests.deploy import test_k8s as k8s

# The role of the data migrations that read the monolith's database.
READER = "migration_reader"  # [stage 2]
READER_VARIABLE = "MONOLITH_DATABASE_URL"  # [stage 2]
TOPOLOGY = "topology"  # [stage 3]
# The names each data store's administrator may go by: no component has one.
ADMIN_NAMES = {"postgres", "root", "admin"}


@dataclass(frozen=True)
class Credential:
    variable: str
    user: str | None  # None: a bare password
    secret: str
    url: str | None = None

    @property
    def scheme(self) -> str | None:
        return urlsplit(self.url).scheme if self.url else None

    @property
    def database(self) -> str:
        """The database a URL opens (its path), and where it authenticates."""
        parts = urlsplit(self.url or "")
        source = parse_qs(parts.query).get("authSource", [""])[0]
        return parts.path.strip("/") + (f"?authSource={source}" if source else "")


def credentials_in(env: Mapping[str, object]) -> list[Credential]:
    """Every credential-bearing value of an environment."""
    found = []
    for variable, value in env.items():
        text = "" if value is None else str(value)
        parts = urlsplit(text)
        if parts.scheme and parts.netloc and parts.username:
            user = unquote(parts.username)
            found.append(Credential(variable, user, unquote(parts.password or ""), text))
        elif variable.upper().replace("-", "_").endswith("PASSWORD") and text:
            found.append(Credential(variable, None, text))
    return found


def owner(component: str, variable: str) -> str:
    """Whose role or user a component's variable must name."""
    # >>> stage 2: the data migrations read the monolith's database with a role of their own
    if variable == READER_VARIABLE:
        return READER
    # <<< stage 2
    return component


def expected_database(credential: Credential, who: str) -> str:
    """The one database a credential of ``who`` opens (and authenticates in)."""
    # >>> stage 2: the reader opens the monolith's database; the comments, theirs
    if who == READER:
        return "blog_monolith"
    if credential.scheme == "mongodb":
        return f"{who}?authSource={who}"
    # <<< stage 2
    # >>> stage 3: one vhost for every component
    if credential.scheme == "amqp":
        return ""
    # <<< stage 3
    return f"blog_{who}"


# --- compose ----------------------------------------------------------------------


def compose_component(service: dict) -> str | None:
    """The component whose credentials a compose service may hold (None: a
    data store, or a one-shot that prepares one)."""
    app = compose_file.app_of(service)
    if app is None:
        return None
    # >>> stage 3: the one-shots that declare the consumers' queues
    if "bus_declare" in service.get("command", []):
        return TOPOLOGY
    # <<< stage 3
    return app


def compose_services() -> Iterator[tuple[str, str, dict]]:
    """(stage file, service name, service) of every stage and every job run by hand."""
    for stage_file, extra in compose_file.stages_and_jobs():
        for name, service in compose_file.compose(stage_file, extra).items():
            yield stage_file, name, service


def store_admins(services: Mapping[str, dict]) -> set[str]:
    """The administrators' passwords the stores of a compose project are given."""
    admin_variables = {"POSTGRES_PASSWORD"}
    admin_variables |= {"MONGO_INITDB_ROOT_PASSWORD"}  # [stage 2]
    admin_variables |= {"RABBITMQ_PASSWORD"}  # [stage 3]
    return {
        str(service["environment"][variable])
        for service in services.values()
        if compose_component(service) is None
        for variable in admin_variables
        if variable in service.get("environment", {})
    }


# --- Kubernetes -------------------------------------------------------------------


def k8s_overlays() -> tuple[str, ...]:
    """The overlays whose pods run components: each stage's, and the data migrations'."""
    return tuple(o for o in k8s.OVERLAYS if o != "dev" and not o.endswith("/ingress"))


@dataclass(frozen=True)
class SecretValue:
    secret: str
    key: str
    value: str


@functools.cache
def dev_secrets() -> dict[str, dict[str, str]]:
    """The dev overlay's Secrets, decoded: name -> key -> value."""
    return {
        name: {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
        for name, secret in k8s.by_name(k8s.build("dev"), "Secret").items()
    }


def resolved_env(container: dict, docs=None) -> dict[str, SecretValue | str]:
    """A container's environment: literals, and each secretKeyRef's dev value."""
    secrets = dev_secrets()
    configmaps = k8s.by_name(docs or (), "ConfigMap")
    env: dict[str, SecretValue | str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmaps[source["configMapRef"]["name"]]["data"])
        else:
            name = source["secretRef"]["name"]
            for key, value in secrets[name].items():
                env[key] = SecretValue(name, key, value)
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            value = secrets[ref["name"]][ref["key"]]
            env[var["name"]] = SecretValue(ref["name"], ref["key"], value)
        else:
            env[var["name"]] = var.get("value", "")
    return env


def plain(env: Mapping[str, SecretValue | str]) -> dict[str, str]:
    return {k: v.value if isinstance(v, SecretValue) else v for k, v in env.items()}


def k8s_component_containers() -> Iterator[tuple[str, str, dict, dict]]:
    """(overlay, pod name, container, resolved env) of every app container."""
    for overlay in k8s_overlays():
        docs = k8s.build(overlay)
        for doc, spec in k8s.pod_specs(docs):
            for container in k8s.containers(spec):
                if k8s.component_of(container):
                    name = f"{doc['metadata']['name']}/{container['name']}"
                    yield overlay, name, container, resolved_env(container, docs)


def store_pods() -> dict[str, tuple[dict, dict]]:
    """The dev overlay's data stores: name -> (its container, its resolved env)."""
    docs = k8s.build("dev")
    found = {}
    for doc in k8s.of_kind(docs, "StatefulSet"):
        container = doc["spec"]["template"]["spec"]["containers"][0]
        found[doc["metadata"]["name"]] = (container, resolved_env(container, docs))
    return found


def k8s_data(kind: str, name: str) -> dict[str, str]:
    """The data of a ConfigMap of the dev overlay (decoded, for a Secret)."""
    if kind == "Secret":
        return dev_secrets()[name]
    return k8s.by_name(k8s.build("dev"), kind)[name]["data"]


# --- a PostgreSQL server of the test's own -------------------------------------------


def swap_host(url: str, host: str, port: int) -> str:
    """``url`` pointed at another server (same user, password, database)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def postgres_bindir() -> Path:
    """The newest PostgreSQL server installed (initdb, pg_ctl, psql)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        # A test that cannot make its own server must not pass by doing less.
        raise RuntimeError("PostgreSQL's initdb is needed (apt-get install postgresql)")
    return found[-1].parent


@dataclass(frozen=True)
class PrivatePostgres:
    """A throw-away server: its superuser ``postgres`` on the socket only
    (trust), everyone else over TCP with a password (scram-sha-256), as in
    the postgres image."""

    bindir: Path
    socket_dir: Path
    port: int

    def admin_args(self, database: str) -> list[str]:
        return ["--host", str(self.socket_dir), "--port", str(self.port), "--username",
                "postgres", "--no-password", "--no-psqlrc", "--dbname", database]  # fmt: skip

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def psql(self, database: str, *args: str, env: Mapping[str, str] | None = None):
        """psql as the postgres image's entrypoint runs an init script."""
        return subprocess.run(
            [str(self.bindir / "psql"), "-v", "ON_ERROR_STOP=1", *self.admin_args(database), *args],
            env={"PATH": os.environ.get("PATH", ""), **(env or {})},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A new cluster under /tmp (the server runs as the postgres user, who
    must reach it), removed afterwards; the shared server is never touched."""
    bindir = postgres_bindir()
    folder = Path(tempfile.mkdtemp(prefix="blog-pg-"))
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data, sockets, port = folder / "data", folder / "run", free_port()
    sockets.mkdir()
    if as_postgres:
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(sockets, "postgres", "postgres")

    def run(*command: str) -> None:
        result = subprocess.run(
            [*as_postgres, *command], capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, f"{command[0]}: {result.stdout}{result.stderr}"

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
            "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")  # fmt: skip
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-t", "60",
            "-l", str(folder / "server.log"), "start")  # fmt: skip
        yield PrivatePostgres(bindir, sockets, port)
    finally:
        if (data / "postmaster.pid").exists():
            stop = [
                *as_postgres,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-m",
                "immediate",
                "stop",
            ]
            subprocess.run(stop, capture_output=True, timeout=60, check=False)
        shutil.rmtree(folder, ignore_errors=True)
