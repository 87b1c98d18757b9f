"""One stage of the blog as real processes, for the black-box suites (the
contract suite, the browser test, `make parity`) and the system tests.

What runs comes from the stage table (``stages/table.py``): the stage's
processes in order, with their settings. This module only decides how each
kind of process is started here: the apps under gunicorn (and so on for
what later stages bring).

Two runtime profiles: ``real`` (default) runs the Django databases on
PostgreSQL (a throw-away database each); ``embedded`` runs them on SQLite
files in a folder under the stack's ``log_dir``.

On ``real``, each component runs with least privilege, as it would in
production: an app's processes log in to PostgreSQL as a role of their own
that owns the app's database and can open no other (its migrations run as
that role too); the same for what later stages bring. What is handed in
(``databases``, and so on) is used as it is given.
"""

from __future__ import annotations

import getpass  # [stage 1]
import os
import shutil  # [stage 1]
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from blogbus.broker import filesystem_url  # [stage 3]
from blogtest.mongo import mongo_wire_process  # [stage 2]
from blogtest.ports import free_port
from blogtest.postgres import owned_database
from blogtest.processes import Process, http_ready, restart, running
from stages import table

from .broker import own_users, own_vhost  # [stage 3]
from .live_server import REPO_ROOT

GATEWAYS = ("nginx", "dev")
PROFILES = ("real", "embedded")
# The stage the contract suite and the browser test start when told none:
# this checkout's last (on main the microservices, at a stage's tag that
# stage), so `make test` checks the stage a checkout is about.
DEFAULT_STAGE = max(table.STAGES)


@dataclass(frozen=True)
class Stack:
    url: str
    served_by: frozenset[str]
    # The processes started for the stage, by name, for fault tests.
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    # Where each component listens, by name (each app, and the stores a stage has).
    urls: dict[str, str] = field(default_factory=dict)
    # How each process was started, for `restart`, and where its log is.
    specs: dict[str, Process] = field(default_factory=dict)
    log_dir: Path | None = None
    # By app, its database URL (with its own login on the real profile).
    databases: dict[str, str] = field(default_factory=dict)
    # >>> stage 3: events need a broker
    # The stack's broker URL, when the stage runs events (on the real profile,
    # a vhost of its own with the admin's login: for tests that look at queues).
    broker: str | None = None
    # By app that talks to the broker, its own broker URL (its login).
    brokers: dict[str, str] = field(default_factory=dict)
    # <<< stage 3
    # By app, its token for the /internal/ routes of the others (new per stack).  # [stage 2]
    tokens: dict[str, str] = field(default_factory=dict)  # [stage 2]

    def restart(self, name: str) -> None:
        """Starts process ``name`` again (after a kill), stopped with the rest at exit."""
        assert self.log_dir is not None, "a stack started by stage_stack knows its log_dir"
        restart(self.specs[name], self.processes, self.log_dir)


def check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; one of {PROFILES}")


def stack_database(profile: str, name: str, *, log_dir: Path, stack: ExitStack) -> str:
    """The URL of a fresh, empty database for one app: a throw-away
    PostgreSQL database with a login role of its own, its owner, that
    opens no other database (real), or a new SQLite file under
    ``log_dir/data`` (embedded)."""
    check_profile(profile)
    if profile == "embedded":
        folder = log_dir / "data"
        folder.mkdir(parents=True, exist_ok=True)
        path = (folder / f"{name}.sqlite3").resolve()
        if path.exists():
            raise FileExistsError(f"{path} exists: one database file per app and stack")
        return f"sqlite:///{path}"
    return stack.enter_context(owned_database(name))


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


def broker_apps(topology: table.Topology) -> tuple[str, ...]:
    """The apps whose processes talk to the broker, in start order."""
    apps = (p.app for p in topology.processes if "{broker}" in "".join(dict(p.env).values()))
    return tuple(dict.fromkeys(apps))


def consumed_by(topology: table.Topology, app: str) -> tuple[str, ...]:
    """The routing keys ``app``'s consumer binds its queue by (none: no consumer)."""
    return next((c.keys for c in topology.consumers if c.service == app), ())


def published_by(topology: table.Topology, app: str) -> tuple[str, ...]:
    """The event types ``app`` publishes: those the stage's other consumers
    take and its own does not (its relay publishes with `mandatory`: an
    event that no queue takes would stay pending)."""
    own = consumed_by(topology, app)
    keys = (k for c in topology.consumers if c.service != app for k in c.keys if k not in own)
    return tuple(dict.fromkeys(keys))


def broker_logins(
    profile: str, topology: table.Topology, broker: str, *, name: str, stack: ExitStack
) -> dict[str, str]:
    """By app that talks to the broker, a broker URL with a login of its own:
    a user in the stack's vhost that may do only what the app's part of the
    bus needs, deleted afterwards (real; `own_users`). None on embedded: a
    folder has no users."""
    check_profile(profile)
    if profile == "embedded":
        return {}
    roles = {
        app: (consumed_by(topology, app), published_by(topology, app))
        for app in broker_apps(topology)
    }
    return stack.enter_context(own_users(broker, roles, prefix=name))
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


# >>> stage 2: the data migration into stage 2, as `make migrate-stage 2` runs it
def import_monolith_comments(monolith_database: str, mongo_url: str) -> None:
    """Copies (and verifies) the comments of the monolith's database into the
    comments service's MongoDB at ``mongo_url``."""
    env = {
        "MONOLITH_DATABASE_URL": monolith_database,
        "MONGO_URL": mongo_url,
        "MONGO_DB": "comments",
    }
    manage("comments", env, "import_monolith_comments", "--quiet")


# <<< stage 2
# >>> stage 1: the gateway, real nginx or the dev router
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
             "--listen", f"127.0.0.1:{port}", "--out", str(conf), "--user", getpass.getuser()],
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
    # <<< stage 1


def app_process(process: table.Process, port: int, env: dict[str, str]) -> Process:
    """An app's web server: gunicorn, 2 sync workers."""
    app = table.APPS[process.app]
    # >>> stage 3: its outbox relay and its consumer, long-running commands
    if process.role in ("relay", "consumer"):
        args = [app.relay_command]
        if process.role == "consumer":
            args = ["bus_consume", "--service", app.name]
        return Process(
            name=process.name,
            command=[sys.executable, "manage.py", *args],
            cwd=app_dir(app.name),
            env=env,
            deadline_s=5.0,
        )
    # <<< stage 3
    command = [
        sys.executable, "-m", "gunicorn", app.wsgi, "-b", f"127.0.0.1:{port}",
        "-w", "2", "--no-control-socket",
        # The longest request line gunicorn takes (its default, 4094, answers
        # longer ones with an HTML 414): the gateway's limit is the same.
        "--limit-request-line", "8190",
    ]  # fmt: skip
    return Process(
        name=process.name,
        command=command,
        cwd=app_dir(app.name),
        env=env,
        ready=http_ready(f"http://127.0.0.1:{port}/healthz"),
    )


@contextmanager
def stage_stack(
    stage: int,
    *,
    log_dir: Path,
    mode: str | None = None,
    profile: str = "real",
    databases: dict[str, str] | None = None,
    gateway: str = "nginx",  # nginx or dev  # [stage 1]
    mongo_url: str | None = None,  # [stage 2]
    mongo_db: str | None = None,  # [stage 2]
    broker: str | None = None,  # [stage 3]
) -> Iterator[Stack]:
    """Stage ``stage`` in ``mode`` (its default when None) as real processes,
    on ``profile``.

    Stores can be handed in, to walk one data set through the stages:
    ``databases`` (app -> database URL, migrated here), and the running
    stores of later stages (``mongo_url``, with ``mongo_db`` the database the
    comments service uses there: default its own); what is not given is made
    fresh (and thrown away afterwards)."""
    check_profile(profile)
    topology = table.topology(stage, mode)
    databases = dict(databases or {})
    with ExitStack() as stack:
        ports = {app: free_port() for app in topology.apps}
        addresses = {app: f"http://127.0.0.1:{port}" for app, port in ports.items()}
        processes: list[Process] = []
        # >>> stage 2: the comments' store
        if topology.of_role("store") and mongo_url is None:
            mongo_port = free_port()
            processes.append(mongo_wire_process(mongo_port, log_dir / "mongo-data"))
            mongo_url = f"mongodb://127.0.0.1:{mongo_port}"
        if mongo_url is not None:
            addresses["mongodb"] = mongo_url
        # <<< stage 2
        # >>> stage 3: events need a broker
        brokers: dict[str, str] = {}
        if topology.has_events and broker is None:
            broker = stack_broker(profile, f"stage{stage}", log_dir=log_dir, stack=stack)
            brokers = broker_logins(profile, topology, broker, name=f"stage{stage}", stack=stack)
        if broker is not None:
            addresses["broker"] = broker
            brokers = {app: brokers.get(app, broker) for app in broker_apps(topology)}
        # <<< stage 3
        where: dict[str, object] = dict(addresses)
        # >>> stage 2: the credentials of the /internal/ routes, new for each stack
        tokens = table.new_tokens()
        where |= table.credentials(tokens)
        # <<< stage 2
        envs: dict[str, dict[str, str]] = {}
        for process in topology.processes:
            if process.app not in table.APPS:  # a store or the gateway
                continue
            env = {**app_settings(process.app), **process.environment(where)}
            if "MONGO_URL" in env and mongo_db:  # [stage 2]
                env["MONGO_DB"] = mongo_db  # [stage 2]
            if "BROKER_URL" in env:  # its own login  # [stage 3]
                env["BROKER_URL"] = brokers[process.app]  # [stage 3]
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
            databases=databases,
            broker=broker,  # [stage 3]
            brokers=brokers,  # [stage 3]
            tokens=tokens,  # [stage 2]
        )
