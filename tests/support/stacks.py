"""One stage of the blog as real processes, for the black-box suites (the
contract suite, the browser test, `make parity`) and the system tests.

What runs comes from the stage table (``stages/table.py``): the stage's
processes in order, with their settings, and its consumers. This module only
decides how each kind of process is started here: the apps under gunicorn,
the gateway as real nginx with the rendered config or as the dev router, the
MongoDB-wire server SecantusDB for the comments.

Two runtime profiles: ``real`` (default) runs the Django databases on
PostgreSQL (a throw-away database each) and the events on RabbitMQ (a vhost
of the stack's own); ``embedded`` runs them on SQLite files and on blogbus's
``filesystem://`` broker, both in a folder under the stack's ``log_dir``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from blogbus.broker import filesystem_url  # [stage 3]
from stages import table

from .broker import own_vhost  # [stage 3]
from .live_server import REPO_ROOT, free_port, fresh_database
from .processes import Process, http_ready, restart, running, tcp_ready

GATEWAYS = ("nginx", "dev")
PROFILES = ("real", "embedded")


@dataclass(frozen=True)
class Stack:
    url: str
    served_by: frozenset[str]
    # The processes started for the stage, by name, for fault tests.
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    # Where each component listens, by name (monolith, posts, comments; mongodb
    # when the stage has the comments' store).
    urls: dict[str, str] = field(default_factory=dict)
    # How each process was started, for `restart`, and where its log is.
    specs: dict[str, Process] = field(default_factory=dict)
    log_dir: Path | None = None
    # The stack's broker URL (when the stage runs events) and, by app, its database URL.
    broker: str | None = None
    databases: dict[str, str] = field(default_factory=dict)

    def restart(self, name: str) -> None:
        """Starts process ``name`` again (after a kill), stopped with the rest at exit."""
        assert self.log_dir is not None, "a stack started by stage_stack knows its log_dir"
        restart(self.specs[name], self.processes, self.log_dir)


def check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; one of {PROFILES}")


def stack_database(profile: str, name: str, *, log_dir: Path, stack: ExitStack) -> str:
    """The URL of a fresh, empty database for one app: a throw-away
    PostgreSQL database (real), or a new SQLite file under ``log_dir/data``
    (embedded)."""
    check_profile(profile)
    if profile == "embedded":
        folder = log_dir / "data"
        folder.mkdir(parents=True, exist_ok=True)
        path = (folder / f"{name}.sqlite3").resolve()
        if path.exists():
            raise FileExistsError(f"{path} exists: one database file per app and stack")
        return f"sqlite:///{path}"
    return stack.enter_context(fresh_database(name))


# >>> stage 3: events need a broker
def stack_broker(profile: str, name: str, *, log_dir: Path, stack: ExitStack) -> str:
    """The broker URL every process of the stack shares: a RabbitMQ vhost of
    the stack's own (real), or a ``filesystem://`` folder under ``log_dir``
    (embedded)."""
    check_profile(profile)
    if profile == "embedded":
        folder = log_dir / "bus"
        folder.mkdir(parents=True, exist_ok=True)
        return filesystem_url(folder)
    return stack.enter_context(own_vhost(name))
    # <<< stage 3


def app_dir(app: str) -> Path:
    return REPO_ROOT / table.APPS[app].folder


def app_settings(app: str) -> dict[str, str]:
    # Explicit: a test process has the monolith's test settings in its environment.
    return {"DJANGO_SETTINGS_MODULE": f"{table.APPS[app].settings}.local", "DJANGO_DEBUG": "0"}


def manage(app: str, env: dict[str, str], *args: str) -> None:
    """``manage.py ARGS`` of ``app`` with ``env`` (its settings added); fails loudly."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=app_dir(app), env={**os.environ, **app_settings(app), **env},
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(
            f"{app}: manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
        )


def nginx_binary() -> str:
    return os.environ.get("NGINX_BIN") or shutil.which("nginx") or "/usr/sbin/nginx"


def gateway_process(
    stage: int, kind: str, upstreams: dict[str, str], folder: Path
) -> tuple[Process, str]:
    """The gateway of ``stage`` in front of ``upstreams``, and its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if kind == "dev":
        command = [
            sys.executable, "-m", "gateway.devrouter", "--stage", str(stage),
            "--listen", f"127.0.0.1:{port}", "--quiet",
        ]  # fmt: skip
    elif kind == "nginx":
        conf = folder / "nginx.conf"
        subprocess.run(
            [sys.executable, "-m", "gateway.render", "--stage", str(stage),
             "--listen", f"127.0.0.1:{port}", "--out", str(conf)],
            cwd=REPO_ROOT, env={**os.environ, **upstreams}, check=True, timeout=60,
        )  # fmt: skip
        command = [nginx_binary(), "-p", str(folder), "-c", str(conf)]
    else:
        raise ValueError(f"unknown gateway {kind!r}; one of {GATEWAYS}")
    process = Process(
        name="gateway",
        command=command,
        cwd=REPO_ROOT,
        env=upstreams,
        ready=http_ready(f"{url}/healthz"),
    )
    return process, url


def mongodb_process(port: int, folder: Path) -> Process:
    """The MongoDB-wire server (SecantusDB) the comments service stores in."""
    command = [
        sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
        "--storage-path", str(folder),
    ]  # fmt: skip
    return Process(name="mongodb", command=command, cwd=REPO_ROOT, ready=tcp_ready(port))


def app_process(process: table.Process, port: int, env: dict[str, str]) -> Process:
    """An app's web server (gunicorn, 2 sync workers), relay or consumer."""
    app = table.APPS[process.app]
    if process.role == "web":
        command = [
            sys.executable, "-m", "gunicorn", app.wsgi, "-b", f"127.0.0.1:{port}",
            "-w", "2", "--no-control-socket",
        ]  # fmt: skip
        ready, deadline_s = http_ready(f"http://127.0.0.1:{port}/healthz"), 30.0
    elif process.role == "relay":
        command = [sys.executable, "manage.py", app.relay_command]
        ready, deadline_s = (lambda: True), 5.0
    elif process.role == "consumer":
        command = [sys.executable, "manage.py", "bus_consume", "--service", app.name]
        ready, deadline_s = (lambda: True), 5.0
    else:
        raise ValueError(f"{process.name}: no way to start a {process.role!r} process here")
    return Process(
        name=process.name,
        command=command,
        cwd=app_dir(app.name),
        env=env,
        ready=ready,
        deadline_s=deadline_s,
    )


@contextmanager
def stage_stack(
    stage: int,
    *,
    gateway: str,
    log_dir: Path,
    mode: str | None = None,
    profile: str = "real",
    databases: dict[str, str] | None = None,
    mongo_port: int | None = None,
    broker: str | None = None,
) -> Iterator[Stack]:
    """Stage ``stage`` in ``mode`` (its default when None) as real processes,
    behind ``gateway`` (nginx or dev) from stage 1 on, on ``profile``.

    Stores can be handed in, to walk one data set through the stages:
    ``databases`` (app -> database URL, migrated here), ``mongo_port`` (a
    running MongoDB-wire server) and ``broker``; what is not given is made
    fresh (and thrown away afterwards)."""
    check_profile(profile)
    topology = table.topology(stage, mode)
    databases = dict(databases or {})
    with ExitStack() as stack:
        ports = {app: free_port() for app in topology.apps}
        addresses = {app: f"http://127.0.0.1:{port}" for app, port in ports.items()}
        processes: list[Process] = []
        if topology.of_role("store") and mongo_port is None:
            mongo_port = free_port()
            processes.append(mongodb_process(mongo_port, log_dir / "mongo-data"))
        if mongo_port is not None:
            addresses["mongodb"] = f"mongodb://127.0.0.1:{mongo_port}"
        # >>> stage 3: events need a broker
        if topology.has_events and broker is None:
            broker = stack_broker(profile, f"stage{stage}", log_dir=log_dir, stack=stack)
        if broker is not None:
            addresses["broker"] = broker
        # <<< stage 3
        envs: dict[str, dict[str, str]] = {}
        for process in topology.processes:
            if process.role not in ("web", "relay", "consumer"):
                continue
            env = {**app_settings(process.app), **process.environment(addresses)}
            if table.APPS[process.app].sql:
                if process.app not in databases:
                    databases[process.app] = stack_database(
                        profile, f"{process.app}{stage}", log_dir=log_dir, stack=stack
                    )
                env["DATABASE_URL"] = databases[process.app]
            envs.setdefault(process.app, env)
            processes.append(app_process(process, ports.get(process.app, 0), env))
        for app in databases:
            if app in envs:
                manage(app, envs[app], "migrate", "--noinput", "-v0")
        # >>> stage 3: each queue and its bindings exist before any event is published
        for consumer in topology.consumers:
            keys = [arg for key in consumer.keys for arg in ("--key", key)]
            manage(consumer.service, envs[consumer.service], "bus_declare", "--service",
                   consumer.service, *keys)  # fmt: skip
        # <<< stage 3
        url = addresses[topology.apps[0]]
        # >>> stage 1: the gateway in front
        for process in topology.of_role("gateway"):
            folder = log_dir / "gateway"
            folder.mkdir(parents=True, exist_ok=True)
            spec, url = gateway_process(stage, gateway, process.environment(addresses), folder)
            processes.append(spec)
        # <<< stage 1
        started = stack.enter_context(running(processes, log_dir))
        yield Stack(
            url=url,
            served_by=topology.served_by,
            processes=started,
            urls=addresses,
            specs={p.name: p for p in processes},
            log_dir=log_dir,
            broker=broker,
            databases=databases,
        )
