"""The refactoring stages, as data: the one table that says, for every stage
(and mode), which processes run with which settings, and which files the
stage brings.

Read by `make up` (``scripts/up.py``), the test stacks and `make parity`
(``tests/support/harness.py``, ``scripts/parity.py``), `make seed`, the
deploy checks (``tests/deploy/``: compose and the Kubernetes manifests must
run what this table says) and the stage history (``stages.history``: which
files each generated stage tree holds). The routes of each stage, from the
gateway on, live in their own table.

A process's ``env`` holds the settings that *make* the stage (who serves
what, who calls whom); an address is written as a placeholder, ``{app}`` for
that app's base URL (e.g. ``{monolith}``: http://127.0.0.1:8000), which each
runner fills in for its profile. Two runtime profiles run the same
topology: ``embedded`` (`make up`: SQLite files under ``.data/``, Django's
runserver) and ``real`` (tests, compose, Kubernetes: PostgreSQL, gunicorn).
"""

from __future__ import annotations

import functools
import hashlib  # [stage 2]
import json  # [stage 2]
import os  # [stage 2]
import re
import secrets  # [stage 2]
from collections.abc import (
    Callable,  # [stage 3]
    Mapping,
)
from dataclasses import dataclass
from pathlib import Path  # [stage 2]

# --- The deployable apps ------------------------------------------------------------


@dataclass(frozen=True)
class App:
    """A Django project with its own manage.py, settings package and port."""

    name: str
    folder: str  # relative to the repository root
    settings: str  # settings package: <settings>.local, .test, .production
    wsgi: str
    port: int  # `make up`'s port (environment variable ``port_env``)
    port_env: str
    sql: bool = True  # keeps its data in a SQL database (DATABASE_URL)
    relay_command: str = "outbox_relay"  # its outbox relay's management command  # [stage 3]


APPS: dict[str, App] = {
    "monolith": App(
        "monolith", ".", "monolith.config.settings", "monolith.config.wsgi", 8000, "MONOLITH_PORT"
    ),
    # >>> stage 4: the posts service
    "posts": App(
        "posts",
        "services/posts",
        "posts_service.settings",
        "posts_service.wsgi",
        8001,
        "POSTS_PORT",
    ),
    # <<< stage 4
    # >>> stage 2: the comments service
    "comments": App(
        "comments",
        "services/comments",
        "comments_service.settings",
        "comments_service.wsgi",
        8002,
        "COMMENTS_PORT",
        sql=False,  # MongoDB (MONGO_URL), behind comments/repository.py
        # >>> stage 3: the outbox is the pending event inside each comment document
        relay_command="comments_outbox_relay",
        # <<< stage 3
    ),
    # <<< stage 2
}


# --- Processes and topologies ------------------------------------------------------

# What a process is.
ROLES = (
    "web",  # the app's HTTP server
    "gateway",  # [stage 1]
    "store",  # the comments' MongoDB-wire server (embedded profile, tests)  # [stage 2]
    "relay",  # an app's outbox relay  # [stage 3]
    "consumer",  # an app's event consumer (bus_consume)  # [stage 3]
)


@dataclass(frozen=True)
class Process:
    name: str  # the Procfile line, the compose service, the Kubernetes Deployment
    app: str  # an APPS key, or "gateway" / "mongodb"
    role: str
    env: tuple[tuple[str, str], ...] = ()

    def environment(self, addresses: Mapping[str, object]) -> dict[str, str]:
        """The settings with the placeholders filled in from ``addresses``."""
        return {key: value.format_map(addresses) for key, value in self.env}


# >>> stage 3: who consumes which events
@dataclass(frozen=True)
class Consumer:
    """A service's durable queue ``<service>.blog-events`` and the routing keys
    (event types) bound to it. The service's ``BLOGBUS_CONSUMERS`` setting
    names a handler for each key (stages/tests checks that they agree)."""

    service: str
    keys: tuple[str, ...]
    # <<< stage 3


@dataclass(frozen=True)
class Topology:
    """One stage in one mode: its processes, in start order (and its consumers)."""

    stage: int
    mode: str  # "-" (the stage has one way of talking), "sync" or "async"
    processes: tuple[Process, ...]
    consumers: tuple[Consumer, ...] = ()  # [stage 3]

    @property
    def apps(self) -> tuple[str, ...]:
        """The apps serving HTTP, in start order."""
        return tuple(p.app for p in self.processes if p.role == "web")

    @property
    def served_by(self) -> frozenset[str]:
        """The values a response's X-Served-By may take."""
        return frozenset(p.app for p in self.processes if p.role in ("web", "gateway"))

    @property
    def has_gateway(self) -> bool:
        return any(p.role == "gateway" for p in self.processes)

    # >>> stage 3: events
    @property
    def has_events(self) -> bool:
        return bool(self.consumers)
        # <<< stage 3

    def process(self, name: str) -> Process:
        for process in self.processes:
            if process.name == name:
                return process
        raise KeyError(f"stage {self.stage} ({self.mode}) has no process {name!r}")

    def of_role(self, role: str) -> tuple[Process, ...]:
        return tuple(p for p in self.processes if p.role == role)


def _env(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(values.items())


MONOLITH = Process("monolith", "monolith", "web")

# >>> stage 1: the facade
GATEWAY_TO_MONOLITH = Process("gateway", "gateway", "gateway", _env(MONOLITH_URL="{monolith}"))
# <<< stage 1


# >>> stage 2: comments extracted
# The /internal/ routes take a credential per caller (blogweb.internal, ADR
# 0006): an app's web process sends its own token (INTERNAL_TOKEN) and
# accepts the callers that its INTERNAL_CALLERS lists, each as
# ``<app>:<SHA-256 of that app's token>``. Tokens are secrets, so this table
# only names them: ``{token[app]}`` is that app's token, ``{caller[app]}`` the
# entry a callee lists for it. Each runner fills them in (``credentials``):
# `make up` from tokens kept under .data/, the test stacks from new ones per
# stack, compose and Kubernetes from their own secrets. Relays and consumers
# call no /internal/ route: they get none.
def internal_credentials(app: str, *, callers: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The settings of ``app``'s web process that call and answer /internal/ routes."""
    accepted = ",".join(f"{{caller[{caller}]}}" for caller in callers)
    return _env(INTERNAL_TOKEN=f"{{token[{app}]}}", INTERNAL_CALLERS=accepted)


CALLER_PLACEHOLDER = re.compile(r"\{caller\[([a-z]+)\]\}")


def accepted_callers(process: Process) -> tuple[str, ...]:
    """The apps whose calls ``process`` accepts on its /internal/ routes."""
    return tuple(CALLER_PLACEHOLDER.findall(dict(process.env).get("INTERNAL_CALLERS", "")))


def credentials(tokens: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """What the credential placeholders stand for, given each app's token."""
    return {
        "token": dict(tokens),
        "caller": {
            app: f"{app}:{hashlib.sha256(token.encode()).hexdigest()}"
            for app, token in tokens.items()
        },
    }


def new_tokens() -> dict[str, str]:
    """A new random token for each app (a test stack's)."""
    return {app: secrets.token_urlsafe(32) for app in APPS}


TOKENS_FILE = "internal-tokens.json"


def kept_tokens(data_dir: Path) -> dict[str, str]:
    """The tokens of the embedded profile, kept in ``data_dir``/TOKENS_FILE
    (readable by its owner only) so that every process `make up` starts, and
    `make seed`, agree; made on first use. Delete the file for new ones."""
    path = data_dir / TOKENS_FILE
    try:
        tokens = json.loads(path.read_text())
    except (OSError, ValueError):
        tokens = {}
    if isinstance(tokens, dict) and set(APPS) <= set(tokens):
        return {app: str(tokens[app]) for app in APPS}
    tokens = new_tokens()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(tokens, file, indent=2)
    return tokens


MONGODB = Process("mongodb", "mongodb", "store")
# Branch by abstraction: the monolith's comments app now calls the service.
MONOLITH_COMMENTS_REMOTE = _env(COMMENTS_BACKEND="service", COMMENTS_URL="{comments}")
# It calls the comments service, which asks it whether a post exists.
MONOLITH_INTERNAL = internal_credentials("monolith", callers=("comments",))
GATEWAY_TO_MONOLITH_AND_COMMENTS = Process(
    "gateway", "gateway", "gateway", _env(MONOLITH_URL="{monolith}", COMMENTS_URL="{comments}")
)


def comments_service(
    *,
    posts_owner: str,
    post_lookup: str = "sync",  # [stage 3]
    events: bool = False,  # [stage 3]
) -> tuple[Process, ...]:
    """The comments service, asking ``posts_owner`` whether a post exists
    (and answering its calls)."""
    env = _env(MONGO_URL="{mongodb}", POSTS_URL=f"{{{posts_owner}}}")
    web = internal_credentials("comments", callers=(posts_owner,))
    # >>> stage 3: or keeping a replica of posts from their events (post_lookup=async)
    # Said in every mode: the service's own default is async.
    env = (*env, ("POST_LOOKUP", post_lookup))
    if events:
        env = (*env, ("BROKER_URL", "{broker}"))
        return (
            Process("comments", "comments", "web", (*env, *web)),
            Process("comments-relay", "comments", "relay", env),
            Process("comments-consumer", "comments", "consumer", env),
        )
    # <<< stage 3
    return (Process("comments", "comments", "web", (*env, *web)),)


# <<< stage 2
# >>> stage 3: events
COMMENTS_CONSUMER = Consumer("comments", ("post.created", "post.deleted"))
MONOLITH_CONSUMER = Consumer("monolith", ("comment.created", "comment.deleted"))


def events(post_lookup: str = "async", comment_counts: str = "async") -> Topology:
    """Stage 3: the monolith publishes post events through its outbox and
    counts comments from comment events (``comment_counts``); the comments
    service keeps a replica of posts (``post_lookup``). Either side can be
    set back to its sync call, to compare the two on one stage."""
    monolith_env = (
        *MONOLITH_COMMENTS_REMOTE,
        ("COMMENT_COUNTS", comment_counts),
        ("PUBLISH_EVENTS", "1"),
        ("BROKER_URL", "{broker}"),
    )
    return Topology(
        3,
        _mode(post_lookup, comment_counts),
        (
            MONGODB,
            Process("monolith", "monolith", "web", (*monolith_env, *MONOLITH_INTERNAL)),
            Process("monolith-relay", "monolith", "relay", monolith_env),
            Process("monolith-consumer", "monolith", "consumer", monolith_env),
            *comments_service(posts_owner="monolith", post_lookup=post_lookup, events=True),
            GATEWAY_TO_MONOLITH_AND_COMMENTS,
        ),
        (MONOLITH_CONSUMER, COMMENTS_CONSUMER),
    )


def _mode(post_lookup: str, comment_counts: str) -> str:
    if post_lookup == comment_counts:
        return post_lookup
    return f"post_lookup={post_lookup},comment_counts={comment_counts}"


# <<< stage 3
# >>> stage 4: microservices
POSTS_CONSUMER = Consumer("posts", ("comment.created", "comment.deleted"))
GATEWAY_TO_SERVICES = Process(
    "gateway", "gateway", "gateway", _env(POSTS_URL="{posts}", COMMENTS_URL="{comments}")
)


def microservices(post_lookup: str, comment_counts: str) -> Topology:
    """Stage 4: the posts service (its own database) and the comments service
    behind the gateway. Sync, they call each other; async, each keeps what it
    needs from the other's events (``post_lookup`` for the comments service,
    ``comment_counts`` for the posts service; the relays and consumers run as
    soon as either side is async)."""
    events = "async" in (post_lookup, comment_counts)
    posts_env = _env(COMMENTS_URL="{comments}", COMMENT_COUNTS=comment_counts)
    # It calls the comments service, which asks it whether a post exists.
    web = internal_credentials("posts", callers=("comments",))
    posts: tuple[Process, ...] = (Process("posts", "posts", "web", (*posts_env, *web)),)
    if events:
        posts_env = (*posts_env, ("BROKER_URL", "{broker}"))
        posts = (
            Process("posts", "posts", "web", (*posts_env, *web)),
            Process("posts-relay", "posts", "relay", posts_env),
            Process("posts-consumer", "posts", "consumer", posts_env),
        )
    return Topology(
        4,
        _mode(post_lookup, comment_counts),
        (
            MONGODB,
            *comments_service(posts_owner="posts", post_lookup=post_lookup, events=events),
            *posts,
            GATEWAY_TO_SERVICES,
        ),
        (POSTS_CONSUMER, COMMENTS_CONSUMER) if events else (),
    )


# <<< stage 4


# --- The stages ----------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    number: int
    slug: str  # the tag is stage-<number>-<slug>
    title: str
    patterns: tuple[str, ...]  # the refactoring patterns the step applies
    summary: str  # what runs, in one line
    next_step: str  # what the step after this one changes ("" for the last)
    topologies: dict[str, Topology]  # by mode
    default_mode: str
    # Files the stage brings (globs, `**` for any depth). A file belongs to
    # the newest stage whose globs match it; every tracked file must match.
    files: tuple[str, ...]
    # Runtime profiles `make parity` runs the stage on (real: every mode).
    parity_profiles: tuple[str, ...] = ("real",)
    # Identifiers that exist from this stage on: an earlier stage's tree that
    # holds one has leaked a later stage (stages/verify.py checks each tag).
    terms: tuple[str, ...] = ()
    # >>> stage 2: data changes owner
    # The data migration that leads into this stage: (app, management command).
    data_migration: tuple[str, str] | None = None
    # <<< stage 2
    # >>> stage 3: either seam, sync or async
    # Builds the topology with each side set on its own: (post_lookup,
    # comment_counts) -> Topology, for the stages that have both sides.
    sides: Callable[[str, str], Topology] | None = None
    # <<< stage 3

    @property
    def tag(self) -> str:
        return f"stage-{self.number}-{self.slug}"

    @property
    def note(self) -> str:
        return f"migration_notes/{self.number:02d}-{self.slug}.md"

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(self.topologies)

    def topology(self, mode: str | None = None) -> Topology:
        mode = mode or self.default_mode
        if mode not in self.topologies:
            raise ValueError(
                f"stage {self.number} runs in mode {' or '.join(self.topologies)}, not {mode!r}"
            )
        return self.topologies[mode]


STAGES: dict[int, Stage] = {
    0: Stage(
        0,
        "monolith",
        "The monolith",
        ("modular monolith", "seams (api.py) between the apps"),
        "one Django process, one database: routing, middleware, logic and data in one place",
        "Stage 1 puts a gateway in front of the monolith (strangler fig, first step): "
        "every request still goes to the monolith, but through a route table.",
        {"-": Topology(0, "-", (MONOLITH,))},
        "-",
        files=(
            # The monolith and its contract plumbing.
            "manage.py",
            "monolith/**",
            "libs/pyproject.toml",
            "libs/README.md",
            "libs/blogweb/**",
            "libs/blogtest/**",
            "web/**",
            "requirements/**",
            # The black-box suites every stage answers.
            "tests/contract/**",
            "tests/e2e/**",
            "tests/support/__init__.py",
            "tests/support/live_server.py",
            "tests/support/harness.py",
            "tests/system/test_database_down.py",
            "tests/system/test_chunked_body.py",
            "tests/system/test_stage_walk.py",
            "tests/system/test_fuzz.py",
            "tests/deploy/**",
            "tests/tools/**",
            # The stage table, the stage history and the repository's tooling.
            "stages/**",
            "scripts/up.py",
            "scripts/seed.py",
            "scripts/parity.py",
            "Makefile",
            "pyproject.toml",
            "README.md",
            ".gitignore",
            ".ci/**",
            "tools/**",
            "bench/README.md",
            "bench/run.py",
            "bench/common.py",
            "bench/cpu.py",
            "bench/report.py",
            "bench/server.py",
            "bench/wrk.py",
            "bench/profile_endpoints.py",
            "bench/results/monolith-*",
            "docs/architecture.md",
            "docs/configuration.md",
            "docs/adr/0004-*",
            "migration_notes/00-monolith.md",
            # Deployment of the monolith.
            ".dockerignore",
            "docker/README.md",
            "docker/compose.yaml",
            "docker/healthcheck.py",
            "docker/monolith.Dockerfile",
            "docker/stage0.env",
            "k8s/README.md",
            "k8s/base/monolith/**",
            "k8s/base/network/**",
            "docker/postgres/monolith-db.sql",
            "docs/least-privilege.md",
            "k8s/overlays/dev/**",
            "k8s/overlays/stage-0/**",
            "k8s/schemas/**",
            ".github/**",
        ),
    ),
    # >>> stage 1: the facade
    1: Stage(
        1,
        "facade",
        "The facade",
        ("strangler fig: own the front door", "API gateway"),
        "a gateway (nginx, or the dev router) in front of the monolith, sending it everything",
        "Stage 2 moves the comment routes to a new comments service on MongoDB (strangler "
        "fig, branch by abstraction, parallel run, data migration).",
        {"-": Topology(1, "-", (MONOLITH, GATEWAY_TO_MONOLITH))},
        "-",
        files=(
            "gateway/**",
            "migration_notes/01-facade.md",
            "docker/gateway.Dockerfile",
            "docker/stage1.env",
            "tests/deploy/test_gateway_image.py",
            "k8s/base/gateway/**",
            "k8s/overlays/stage-1/**",
            "k8s/overlays/kind/**",
            "k8s/overlays/cloud/**",
            "tests/deploy/test_k8s_service_types.py",
        ),
        terms=("gateway/", "gateway.devrouter", "gateway.render", "GATEWAY_PORT", "MONOLITH_URL"),
    ),
    # <<< stage 1
    # >>> stage 2: comments extracted
    2: Stage(
        2,
        "comments-extracted",
        "Comments extracted",
        ("strangler fig", "branch by abstraction", "parallel run", "data migration"),
        "the comment routes go to the comments service (MongoDB); sync HTTP calls both ways",
        "Stage 3 replaces the calls with events: transactional outboxes, a broker, idempotent "
        "consumers, a replica of posts and counters kept from events.",
        {
            "sync": Topology(
                2,
                "sync",
                (
                    MONGODB,
                    Process(
                        "monolith",
                        "monolith",
                        "web",
                        (*MONOLITH_COMMENTS_REMOTE, *MONOLITH_INTERNAL),
                    ),
                    *comments_service(posts_owner="monolith"),
                    GATEWAY_TO_MONOLITH_AND_COMMENTS,
                ),
            )
        },
        "sync",
        files=(
            "services/comments/**",
            "libs/blogweb/http.py",
            "libs/blogweb/internal.py",
            "libs/blogweb/tests/test_internal.py",
            "tests/system/test_internal_auth.py",
            "docker/mongo/**",
            "k8s/overlays/dev/mongo-comments-user.js",
            "tests/deploy/test_least_privilege_mongo.py",
            "docs/adr/0006-*",
            "libs/blogtest/mongo.py",
            "libs/blogtest/monolith.py",
            "libs/blogweb/tests/test_http_client.py",
            "monolith/comments/remote.py",
            "tests/system/test_store_faults.py",
            "tests/system/test_parallel_run.py",
            "docs/adr/0005-*",
            "monolith/comments/tests/fake_service.py",
            "monolith/comments/tests/test_remote.py",
            "gateway/shadow.py",
            "gateway/shadowlog.py",
            "scripts/migrate_stage.py",
            "bench/migration.py",
            "migration_notes/02-comments-extracted.md",
            "docker/comments.Dockerfile",
            "docker/stage2.env",
            "k8s/base/comments/**",
            "k8s/overlays/dev/mongo.yaml",
            "k8s/base/data-migration-stage-2/**",
            "k8s/components/comments-extracted/**",
            "k8s/overlays/migrate-stage-2/**",
            "k8s/overlays/stage-2/**",
        ),
        data_migration=("comments", "import_monolith_comments"),
        terms=(
            "services/comments",
            "comments_service",
            "COMMENTS_BACKEND",
            "MONGO_URL",
            "pymongo",
            "secantus",
            "import_monolith_comments",
            "migrate-stage",
        ),
    ),
    # <<< stage 2
    # >>> stage 3: events
    3: Stage(
        3,
        "events",
        "Events",
        (
            "transactional outbox",
            "publish-subscribe",
            "idempotent consumer (inbox)",
            "dead-letter queue",
            "event-carried state (replica, counters)",
        ),
        "the calls become events: outbox relays, a broker, consumers, a replica and counters",
        "Stage 4 takes the posts out of the monolith into a posts service with its own "
        "database; the monolith leaves the request path.",
        {"async": events()},
        "async",
        files=(
            "libs/blogbus/**",
            "libs/tests/**",
            "bench/relay.py",
            "monolith/comments/events.py",
            "monolith/comments/migrations/0002_comment_count.py",
            "monolith/comments/management/**",
            "monolith/comments/tests/test_events.py",
            "services/comments/comments/events.py",
            "services/comments/comments/outbox_relay.py",
            "services/comments/comments/management/commands/comments_outbox_relay.py",
            "services/comments/comments/tests/test_outbox.py",
            "services/comments/comments/tests/test_replica.py",
            "services/comments/comments/tests/test_bus_worker.py",
            "tests/support/broker.py",
            "tests/system/test_event_faults.py",
            "scripts/broker_users.py",
            "docker/rabbitmq/**",
            "k8s/overlays/dev/rabbitmq-definitions.conf",
            "k8s/overlays/dev/rabbitmq-definitions/**",
            "tests/deploy/test_least_privilege_broker.py",
            "tests/system/test_least_privilege.py",
            "tests/system/test_deleted_post_window.py",
            "bench/deleted_window.py",
            "docs/adr/0001-*",
            "docs/adr/0002-*",
            "docs/adr/0003-*",
            "migration_notes/03-events.md",
            "docker/stage3.env",
            "k8s/base/comments-events/**",
            "k8s/overlays/dev/rabbitmq.yaml",
            "k8s/base/monolith-events/**",
            "k8s/components/events/**",
            "k8s/overlays/stage-3/**",
        ),
        parity_profiles=("real", "embedded"),
        terms=(
            "blogbus",
            "PUBLISH_EVENTS",
            "BROKER_URL",
            "bus_consume",
            "outbox_relay",
            "RabbitMQ",
            "rabbitmq",
        ),
        sides=events,
    ),
    # <<< stage 3
    # >>> stage 4: microservices
    4: Stage(
        4,
        "microservices",
        "Microservices",
        ("database per service", "strangler fig: the monolith retired", "sync or async seams"),
        "the posts service and the comments service behind the gateway; the monolith is out",
        "",
        {"async": microservices("async", "async"), "sync": microservices("sync", "sync")},
        "async",
        files=(
            "services/posts/**",
            "tests/system/test_stage4_faults.py",
            "tests/system/test_idempotent_retry.py",
            "tests/system/fault_drill.py",
            "tests/system/test_fault_drill.py",
            "tests/system/test_compare_run.py",
            "docs/request-walkthrough.md",
            "bench/compare*.py",
            "tests/tools/test_compare_*.py",
            "docker/postgres/posts-db.sql",
            "k8s/overlays/dev/rabbitmq-definitions/posts.json",
            "tests/deploy/test_posts_openapi.py",
            "tests/system/test_embedded_events.py",
            "bench/events.py",
            "bench/results/events-*",
            "bench/results/compare-*/compare.json",
            "bench/results/compare-*/*.png",
            "migration_notes/04-microservices.md",
            "docker/posts.Dockerfile",
            "docker/stage4.env",
            "docker/stage4-sync.env",
            "k8s/base/posts/**",
            "k8s/base/posts-events/**",
            "k8s/base/data-migration-stage-4/**",
            "k8s/components/microservices/**",
            "k8s/overlays/migrate-stage-4/**",
            "k8s/overlays/stage-4/**",
            "k8s/overlays/managed/**",
            "tests/deploy/test_k8s_managed.py",
            # The workshop: exercises built on the stage history (./exercise).
            "exercise",
            "workshop/**",
            "docs/workshop/**",
        ),
        data_migration=("posts", "import_monolith_posts"),
        parity_profiles=("real", "embedded"),
        terms=("services/posts", "posts_service", "import_monolith_posts"),
        sides=microservices,
    ),
    # <<< stage 4
}

NEWEST = max(STAGES)

# Files whose markers are data, not markers: the generator's own tests hold
# marked-up sample files in strings. They are copied as they are.
LITERAL = ("stages/tests/test_markers.py", "stages/tests/test_history.py")


def stage(number: int) -> Stage:
    if number not in STAGES:
        raise ValueError(f"unknown stage {number}: this tree has stages {sorted(STAGES)}")
    return STAGES[number]


def topology(
    number: int,
    mode: str | None = None,
    *,  # [stage 3]
    post_lookup: str | None = None,  # [stage 3]
    comment_counts: str | None = None,  # [stage 3]
) -> Topology:
    """Stage ``number`` in ``mode`` (its default when None)."""
    found = stage(number)
    # >>> stage 3: one seam set apart from the mode
    if (post_lookup or comment_counts) and found.sides is not None:
        side = "async" if found.topology(mode).mode == "async" else "sync"
        return found.sides(post_lookup or side, comment_counts or side)
    # <<< stage 3
    return found.topology(mode)


def side_by_side(topology: Topology) -> tuple[Process, ...]:
    """What `make up` and compose run: the stage, and the monolith beside it
    when the stage has taken it out of the path, so that both can be compared."""
    if "monolith" in topology.apps:
        return topology.processes
    return (MONOLITH, *topology.processes)


# >>> stage 1: the gateway's make verbs serve the newest stage that has one
def newest_with_gateway() -> int | None:
    found = [n for n, s in STAGES.items() if s.topology().has_gateway]
    return max(found) if found else None
    # <<< stage 1


# >>> stage 3: the consumers
def consumers(number: int, mode: str | None = None) -> tuple[Consumer, ...]:
    return topology(number, mode).consumers


def consumer_of(service: str) -> Consumer:
    """The newest stage's consumer of ``service`` (its keys are the same at every stage)."""
    for number in sorted(STAGES, reverse=True):
        for top in STAGES[number].topologies.values():
            for found in top.consumers:
                if found.service == service:
                    return found
    raise KeyError(f"no stage has a consumer for {service!r}")
    # <<< stage 3


def stage_of_path(path: str) -> int:
    """The stage that brings the tracked file ``path``: the newest stage whose
    globs match it (a later stage claims files inside an earlier one's folder,
    e.g. ``monolith/comments/remote.py`` inside stage 0's ``monolith/**``)."""
    hits = [n for n, s in STAGES.items() if any(glob_match(path, g) for g in s.files)]
    if not hits:
        raise LookupError(
            f"{path} belongs to no stage (add it to a Stage's files in stages/table.py)"
        )
    return max(hits)


def glob_match(path: str, pattern: str) -> bool:
    """``**`` matches any number of folders, ``*`` anything within one name."""
    return re.fullmatch(_glob_regex(pattern), path) is not None


@functools.cache
def _glob_regex(pattern: str) -> str:
    parts = re.split(r"(\*\*/?|\*|\?)", pattern)
    out = []
    for part in parts:
        if part in ("**", "**/"):
            out.append(".*")
        elif part == "*":
            out.append("[^/]*")
        elif part == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(part))
    return "".join(out)
