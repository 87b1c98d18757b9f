"""One stage of the blog as real processes, for the black-box suites: the
contract suite (`CONTRACT_STAGE`, `CONTRACT_GATEWAY`) and `make parity`.

Stage 0 is the monolith alone; stage 1 puts the gateway (real nginx with the
rendered config, or the dev router) in front of it; stage 2 moves the comment
routes to the comments service (a MongoDB-wire server), sync calls both ways;
stage 3 replaces those calls with events (outbox relays, consumers, a RabbitMQ
vhost of the stack's own); stage 4 is the posts service (its own PostgreSQL
database) and the comments service behind the gateway, sync or async.

Two runtime profiles (ARCHITECTURE, "Runtime profiles"): ``real`` (default)
runs the Django databases on PostgreSQL (a throw-away database each) and the
events on RabbitMQ (a vhost of the stack's own); ``embedded`` runs them on
SQLite files and on blogbus's ``filesystem://`` broker, both in a folder
under the stack's ``log_dir``. Comments are on the SecantusDB MongoDB-wire
server in both."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from blogbus.broker import filesystem_url

from .broker import own_vhost
from .live_server import REPO_ROOT, free_port, fresh_database, gunicorn_monolith
from .live_server import monolith_env as monolith_settings
from .processes import Process, http_ready, restart, running, tcp_ready

GATEWAYS = ("nginx", "dev")
PROFILES = ("real", "embedded")
RUNNABLE_STAGES = (0, 1, 2, 3, 4)
SERVICES = REPO_ROOT / "services"


@dataclass(frozen=True)
class Stack:
    url: str
    served_by: frozenset[str]
    # The processes started for the stage, by name, for fault tests.
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    # Where each component listens, by name (monolith, posts, comments; mongodb
    # when the stack started the MongoDB-wire server).
    urls: dict[str, str] = field(default_factory=dict)
    # How each process was started, for `restart`, and where its log is.
    specs: dict[str, Process] = field(default_factory=dict)
    log_dir: Path | None = None
    # The stack's broker URL (async stages) and, by component, its database URL.
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
    """The URL of a fresh, empty database for one Django component: a
    throw-away PostgreSQL database (real), or a new SQLite file under
    ``log_dir/data`` (embedded)."""
    check_profile(profile)
    if profile == "embedded":
        folder = log_dir / "data"
        folder.mkdir(parents=True, exist_ok=True)
        path = (folder / f"{name}.sqlite3").resolve()
        if path.exists():
            raise FileExistsError(f"{path} exists: one database file per component and stack")
        return f"sqlite:///{path}"
    return stack.enter_context(fresh_database(name))


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


def nginx_binary() -> str:
    return os.environ.get("NGINX_BIN") or shutil.which("nginx") or "/usr/sbin/nginx"


def gateway_process(
    stage: int, kind: str, upstreams: dict[str, str], folder: Path
) -> tuple[Process, str]:
    """The gateway of ``stage`` in front of ``upstreams``, and its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**upstreams}
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
            cwd=REPO_ROOT, env={**os.environ, **env}, check=True, timeout=60,
        )  # fmt: skip
        command = [nginx_binary(), "-p", str(folder), "-c", str(conf)]
    else:
        raise ValueError(f"unknown gateway {kind!r}; one of {GATEWAYS}")
    process = Process(
        name=f"gateway-{kind}",
        command=command,
        cwd=REPO_ROOT,
        env=env,
        ready=http_ready(f"{url}/healthz"),
    )
    return process, url


def django_service(name: str, wsgi: str, port: int, env: dict[str, str]) -> Process:
    return Process(
        name=name,
        command=[
            sys.executable,
            "-m",
            "gunicorn",
            wsgi,
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "2",
            "--no-control-socket",
        ],
        cwd=SERVICES / name,
        env={"DJANGO_DEBUG": "0", **service_settings(name), **env},
        ready=http_ready(f"http://127.0.0.1:{port}/healthz"),
    )


def service_settings(name: str) -> dict[str, str]:
    # Explicit: a test process has the monolith's settings in its environment.
    return {"DJANGO_SETTINGS_MODULE": f"{name}_service.settings.local"}


def migrate_service(name: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=SERVICES / name, env={**os.environ, **service_settings(name), **env},
        check=True, timeout=180,
    )  # fmt: skip


def mongodb_process(port: int, folder: Path) -> Process:
    return Process(
        name="mongodb-wire",
        command=[
            sys.executable,
            "-m",
            "secantus",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(folder),
        ],
        cwd=REPO_ROOT,
        ready=tcp_ready(port),
    )


def worker(name: str, cwd: Path, args: list[str], env: dict[str, str]) -> Process:
    """A relay or a consumer: a long-running management command."""
    return Process(
        name=name, command=[sys.executable, "manage.py", *args], cwd=cwd, env=env, deadline_s=5
    )


def consumer(name: str, cwd: Path, service: str, env: dict[str, str]) -> Process:
    """``bus_consume`` for ``service``; its broker is ``BROKER_URL`` in ``env``."""
    return worker(name, cwd, ["bus_consume", "--service", service], env)


def declare(cwd: Path, env: dict[str, str], service: str, keys: list[str]) -> None:
    """The service's queue and bindings exist before any event is published."""
    args = ["bus_declare", "--service", service]
    for key in keys:
        args += ["--key", key]
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=cwd, env={**os.environ, **env}, check=True, timeout=60, capture_output=True,
    )  # fmt: skip


def comments_processes(
    *, port: int, mongo_port: int, posts_owner_url: str, mode: str, broker: str | None
) -> list[Process]:
    """The comments service; in async mode also its outbox relay and its
    consumer of post events (the replica)."""
    env = {
        **service_settings("comments"),
        "MONGO_URL": f"mongodb://127.0.0.1:{mongo_port}",
        "MONGO_DB": "comments",
        "POSTS_URL": posts_owner_url,
        "POST_LOOKUP": mode,
    }
    if broker:
        env["BROKER_URL"] = broker
    processes = [django_service("comments", "comments_service.wsgi", port, env)]
    if mode == "async":
        cwd = SERVICES / "comments"
        declare(cwd, env, "comments", ["post.created", "post.deleted"])
        processes += [
            worker("comments-relay", cwd, ["comments_outbox_relay"], env),
            consumer("comments-consumer", cwd, "comments", env),
        ]
    return processes


@contextmanager
def comments_extracted_stack(
    *,
    gateway: str,
    log_dir: Path,
    stack: ExitStack,
    stage: int = 2,
    monolith_database: str | None = None,
    mongo_port: int | None = None,
    profile: str = "real",
) -> Iterator[Stack]:
    """Stage 2 (sync calls both ways) or 3 (events): comment routes to the
    comments service, the rest to the monolith. Stage 2: the monolith asks
    the service for counts (branch by abstraction) and answers its post
    lookups. Stage 3: the monolith publishes post events through its outbox
    and counts comments from comment events; the comments service keeps a
    replica of posts. Without a database and a running MongoDB-wire server
    given, fresh ones are made (on ``profile``)."""
    mode = "async" if stage == 3 else "sync"
    monolith_port, comments_port = free_port(), free_port()
    monolith_url = f"http://127.0.0.1:{monolith_port}"
    comments_url = f"http://127.0.0.1:{comments_port}"
    database = monolith_database or stack_database(
        profile, f"stage{stage}", log_dir=log_dir, stack=stack
    )
    extra = {"COMMENTS_BACKEND": "service", "COMMENTS_URL": comments_url}
    broker = None
    if mode == "async":
        broker = stack_broker(profile, f"stage{stage}", log_dir=log_dir, stack=stack)
        extra |= {"COMMENT_COUNTS": "async", "PUBLISH_EVENTS": "1", "BROKER_URL": broker}
    monolith_env = monolith_settings(database, **extra)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=REPO_ROOT, env={**os.environ, **monolith_env}, check=True, timeout=180,
    )  # fmt: skip
    processes = []
    if mongo_port is None:
        mongo_port = free_port()
        processes.append(mongodb_process(mongo_port, log_dir / "mongo-data"))
    mongo_url = f"mongodb://127.0.0.1:{mongo_port}"
    if mode == "async":
        declare(REPO_ROOT, monolith_env, "monolith", ["comment.created", "comment.deleted"])
    processes += comments_processes(
        port=comments_port,
        mongo_port=mongo_port,
        posts_owner_url=monolith_url,
        mode=mode,
        broker=broker,
    )
    processes.append(
        Process(
            name="monolith",
            command=[
                sys.executable,
                "-m",
                "gunicorn",
                "monolith.config.wsgi",
                "-b",
                f"127.0.0.1:{monolith_port}",
                "-w",
                "2",
                "--no-control-socket",
            ],
            cwd=REPO_ROOT,
            env=monolith_env,
            ready=http_ready(f"{monolith_url}/healthz"),
        )
    )
    if mode == "async":
        processes += [
            worker("monolith-relay", REPO_ROOT, ["outbox_relay"], monolith_env),
            consumer("monolith-consumer", REPO_ROOT, "monolith", monolith_env),
        ]
    gateway_dir = log_dir / "gateway"
    gateway_dir.mkdir(parents=True, exist_ok=True)
    spec, url = gateway_process(
        stage, gateway, {"MONOLITH_URL": monolith_url, "COMMENTS_URL": comments_url}, gateway_dir
    )
    started = stack.enter_context(running([*processes, spec], log_dir))
    specs = [*processes, spec]
    yield Stack(
        url=url,
        served_by=frozenset({"monolith", "comments", "gateway"}),
        processes=started,
        urls={"monolith": monolith_url, "comments": comments_url, "mongodb": mongo_url},
        specs={p.name: p for p in specs},
        log_dir=log_dir,
        broker=broker,
        databases={"monolith": database},
    )


@contextmanager
def microservices_stack(
    *,
    gateway: str,
    log_dir: Path,
    stack: ExitStack,
    mode: str = "sync",
    posts_database: str | None = None,
    mongo_port: int | None = None,
    broker: str | None = None,
    profile: str = "real",
) -> Iterator[Stack]:
    """Stage 4: posts and comments services behind the gateway. ``mode``
    sync: they call each other; async: replica and counter fed by events,
    each service with its outbox relay and its consumer. Without a posts
    database and a running MongoDB-wire server (and, async, a broker) given,
    fresh ones are made (on ``profile``)."""
    posts_port, comments_port = free_port(), free_port()
    posts_url = f"http://127.0.0.1:{posts_port}"
    comments_url = f"http://127.0.0.1:{comments_port}"
    posts_env = {
        **service_settings("posts"),
        "DATABASE_URL": posts_database
        or stack_database(profile, "posts", log_dir=log_dir, stack=stack),
        "COMMENTS_URL": comments_url,
        "COMMENT_COUNTS": mode,
    }
    if mode == "async":
        broker = broker or stack_broker(profile, "stage4", log_dir=log_dir, stack=stack)
        posts_env["BROKER_URL"] = broker
    migrate_service("posts", posts_env)
    processes = []
    if mongo_port is None:
        mongo_port = free_port()
        processes.append(mongodb_process(mongo_port, log_dir / "mongo-data"))
    mongo_url = f"mongodb://127.0.0.1:{mongo_port}"
    posts_dir = SERVICES / "posts"
    if mode == "async":
        declare(posts_dir, posts_env, "posts", ["comment.created", "comment.deleted"])
    processes += comments_processes(
        port=comments_port,
        mongo_port=mongo_port,
        posts_owner_url=posts_url,
        mode=mode,
        broker=broker,
    )
    processes.append(django_service("posts", "posts_service.wsgi", posts_port, posts_env))
    if mode == "async":
        processes += [
            worker("posts-relay", posts_dir, ["outbox_relay"], posts_env),
            consumer("posts-consumer", posts_dir, "posts", posts_env),
        ]
    gateway_dir = log_dir / "gateway"
    gateway_dir.mkdir(parents=True, exist_ok=True)
    spec, url = gateway_process(
        4, gateway, {"POSTS_URL": posts_url, "COMMENTS_URL": comments_url}, gateway_dir
    )
    started = stack.enter_context(running([*processes, spec], log_dir))
    specs = [*processes, spec]
    yield Stack(
        url=url,
        served_by=frozenset({"posts", "comments", "gateway"}),
        processes=started,
        urls={"posts": posts_url, "comments": comments_url, "mongodb": mongo_url},
        specs={p.name: p for p in specs},
        log_dir=log_dir,
        broker=broker if mode == "async" else None,
        databases={"posts": posts_env["DATABASE_URL"]},
    )


@contextmanager
def stage_stack(
    stage: int, *, gateway: str, log_dir: Path, mode: str = "sync", profile: str = "real"
) -> Iterator[Stack]:
    """Stage ``stage`` as real processes; ``mode`` (sync or async) chooses how
    the stage-4 services talk (stage 3 is async, stage 2 sync by definition);
    ``profile`` (real or embedded) where the databases and the broker live."""
    if stage not in RUNNABLE_STAGES:
        raise ValueError(f"stage {stage} is not runnable yet (runnable: {RUNNABLE_STAGES})")
    check_profile(profile)
    with ExitStack() as stack:
        if stage == 4:
            yield stack.enter_context(
                microservices_stack(
                    gateway=gateway, log_dir=log_dir, stack=stack, mode=mode, profile=profile
                )
            )
            return
        if stage in (2, 3):
            yield stack.enter_context(
                comments_extracted_stack(
                    gateway=gateway, log_dir=log_dir, stack=stack, stage=stage, profile=profile
                )
            )
            return
        database = stack_database(profile, f"stage{stage}", log_dir=log_dir, stack=stack)
        monolith_dir = log_dir / "monolith"
        monolith_dir.mkdir(parents=True, exist_ok=True)
        monolith = stack.enter_context(gunicorn_monolith(database=database, log_dir=monolith_dir))
        if stage == 0:
            yield Stack(url=monolith.url, served_by=frozenset({"monolith"}))
            return
        gateway_dir = log_dir / "gateway"
        gateway_dir.mkdir(parents=True, exist_ok=True)
        spec, url = gateway_process(stage, gateway, {"MONOLITH_URL": monolith.url}, gateway_dir)
        stack.enter_context(running([spec], gateway_dir))
        yield Stack(url=url, served_by=frozenset({"monolith", "gateway"}))
