"""The strangler-fig route table: which upstream answers which request, at
every stage, as data.

Both renderings read this one table: ``gateway.render`` turns it into an
nginx.conf, ``gateway.devrouter`` serves it in pure Python on the embedded
profile. Matching semantics are nginx's, so that both agree:

1. ``exact`` routes first (``location = /path``), then ``regex`` routes in
   table order (``location ~ ^...$``), first match wins;
2. routes with the same (match, pattern) form one *group*; inside it the first
   route whose method set contains the request method wins;
3. a path matched by a group whose routes do not take the method goes to the
   stage's ``default`` upstream, or gets a JSON 405 when there is none;
4. a path matched by no group goes to ``default``, or gets a JSON 404.

Constraint (checked by ``validate``): the groups of a stage do not overlap on
the contract's paths, so "first group" and "only group" are the same thing.

Upstreams (``UPSTREAMS``) are the HTTP servers of ``HTTP_UPSTREAMS``, each at
the address of its ``UPSTREAM_ENV`` variable, and ``gateway``: answered by the
gateway itself (``/healthz``, ``/readyz``, a JSON 404 for ``/internal``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent

ANY: frozenset[str] | None = None  # a route that takes every method

HTTP_UPSTREAMS = (
    "monolith",  # the Django monolith
    "posts",  # [stage 4]
    "comments",  # [stage 2]
)
UPSTREAMS = (
    *HTTP_UPSTREAMS,
    "ui",  # [stage 4]
    "gateway",
)

UPSTREAM_ENV = {
    "monolith": ("MONOLITH_URL", "http://127.0.0.1:8000"),
    "posts": ("POSTS_URL", "http://127.0.0.1:8001"),  # [stage 4]
    "comments": ("COMMENTS_URL", "http://127.0.0.1:8002"),  # [stage 2]
}
# >>> stage 4: the upstream ui: the static files of web/, served by the gateway
UI_DIR_ENV = ("UI_DIR", str(REPO_ROOT / "web"))
# <<< stage 4

# Request ids accepted from clients; anything else is replaced by a fresh one.
# Same rule as libs/blogweb/requestid.py (and usable as a PCRE in nginx).
SANE_REQUEST_ID = r"^[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,127}$"

MAX_BODY_BYTES = 1024 * 1024  # nginx: client_max_body_size 1m
# The longest request line (method, target, version, CRLF) the gateway takes:
# what the apps' gunicorn takes (--limit-request-line 8190) and nginx's header
# buffer (large_client_header_buffers 4 8k). Longer: a JSON 414 from the gateway.
MAX_REQUEST_LINE_BYTES = 8192
# How long the gateway waits on an upstream: to connect (one that is down
# refuses at once: a JSON 503), then for each read of its answer (one that
# hangs: a JSON 504). Reads are answered by the components well within their
# own dependencies' limits (a database's 2 s connect timeout, a service
# call's 0.5 s per attempt, MongoDB's 1 s), so a hung one is cut short; a
# write gets longer before the gateway gives up on it, since its client cannot
# tell whether it happened (the create routes take an Idempotency-Key for a
# safe retry).
CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 2.0  # GET, HEAD, OPTIONS
WRITE_TIMEOUT_S = 5.0  # every other method
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def upstream_timeout(method: str, *, read: float, write: float) -> float:
    """The read timeout of a request: ``read`` for a read, ``write`` otherwise."""
    return read if method.upper() in READ_METHODS else write


def add_timeout_arguments(parser: argparse.ArgumentParser) -> None:
    """``--read-timeout`` and ``--write-timeout``, the same for both gateways' CLIs."""
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=READ_TIMEOUT_S,
        help=f"seconds a read waits for its upstream (default {READ_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--write-timeout",
        type=float,
        default=WRITE_TIMEOUT_S,
        help=f"seconds a write waits for its upstream (default {WRITE_TIMEOUT_S:g})",
    )


# Path patterns of the contract's routes, named once for the stages' tables
# and for their Kubernetes translations (gateway/k8s.py). Any id segment is
# accepted: the upstreams answer 404 for a malformed id, and a trailing slash
# is optional (no redirect; both forms are answered).
COMMENTS_OF_POST = r"^/api/posts/[^/]+/comments/?$"  # [stage 2]
# >>> stage 4: the posts service's routes, and the UI served by the gateway
POSTS_ANY = r"^/api/posts(/.*)?$"
API_DOCS = r"^/api/(schema|docs)(/.*)?$"
STATIC_ASSETS = r"^/static/.+$"
UI_FILES = r"^/[^/]+\.(html|js|css|svg|ico|png|webmanifest|map|txt)$"
# <<< stage 4


@dataclass(frozen=True)
class Route:
    methods: frozenset[str] | None  # None: any method
    match: str  # "exact" or "regex"
    pattern: str
    upstream: str
    name: str = ""

    def path_matches(self, path: str) -> bool:
        if self.match == "exact":
            return path == self.pattern
        return re.search(self.pattern, path) is not None

    def takes(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


# >>> stage 2: the parallel run of a read route being moved
@dataclass(frozen=True)
class Shadow:
    """Parallel run of a read route being moved: ``primary`` (the old owner)
    answers the client, ``shadow`` (the new owner) gets a copy whose answer is
    only compared (dev router) or discarded (nginx ``mirror``)."""

    methods: frozenset[str]
    match: str
    pattern: str
    primary: str
    shadow: str
    name: str = ""


# <<< stage 2
@dataclass(frozen=True)
class Stage:
    number: int
    name: str
    routes: tuple[Route, ...]
    default: str | None  # upstream for unmatched requests; None: JSON 404
    shadows: tuple[Shadow, ...] = ()  # [stage 2]
    has_gateway: bool = True


# Routes under /internal/ are for the components behind the gateway to call
# each other, inside the cluster: the gateway answers them with a JSON 404
# itself, at every stage, rather than let a default route forward them.
# Matched on the normalised path (percent-decoding and dot segments resolved,
# as nginx matches locations); leading slashes may repeat, nginx keeping
# `//` as sent (merge_slashes off): `//internal/...` is refused too.
INTERNAL = r"^/+internal(/.*)?$"

_GATEWAY_OWN = (
    Route(ANY, "exact", "/healthz", "gateway", "healthz"),
    Route(ANY, "exact", "/readyz", "gateway", "readyz"),
    Route(ANY, "regex", INTERNAL, "gateway", "internal"),
)


# >>> stage 2: the comment routes move to the comments service, their reads with a parallel run
def _methods(*names: str) -> frozenset[str]:
    found = {n.upper() for n in names}
    if "GET" in found:
        found.add("HEAD")
    return frozenset(found)


GET = _methods("GET")
GET_POST = _methods("GET", "POST")
_COMMENTS_MOVED = (Route(GET_POST, "regex", COMMENTS_OF_POST, "comments", "comments-of-post"),)
_COMMENTS_PARALLEL_RUN = (
    Shadow(GET, "regex", COMMENTS_OF_POST, "monolith", "comments", "comments-of-post"),
)
# <<< stage 2

STAGES: dict[int, Stage] = {
    0: Stage(0, "monolith", (), None, has_gateway=False),
    1: Stage(1, "facade", _GATEWAY_OWN, "monolith"),
    # >>> stage 2: comments extracted
    2: Stage(
        2,
        "comments-extracted",
        (*_GATEWAY_OWN, *_COMMENTS_MOVED),
        "monolith",
        _COMMENTS_PARALLEL_RUN,
    ),
    # <<< stage 2
    # >>> stage 3: events (the same routes)
    3: Stage(3, "events", (*_GATEWAY_OWN, *_COMMENTS_MOVED), "monolith", _COMMENTS_PARALLEL_RUN),
    # <<< stage 3
    # >>> stage 4: microservices (the monolith leaves the path; the gateway serves the UI)
    4: Stage(
        4,
        "microservices",
        (
            *_GATEWAY_OWN,
            Route(ANY, "regex", COMMENTS_OF_POST, "comments", "comments-of-post"),
            Route(ANY, "regex", POSTS_ANY, "posts", "posts"),
            Route(ANY, "regex", API_DOCS, "posts", "api-schema-docs"),
            # Swagger UI assets (drf-spectacular-sidecar) live under STATIC_URL.
            Route(ANY, "regex", STATIC_ASSETS, "posts", "static-assets"),
            Route(GET, "exact", "/", "ui", "ui-index"),
            Route(GET, "regex", UI_FILES, "ui", "ui-files"),
        ),
        None,
        (Shadow(GET, "regex", POSTS_ANY, "monolith", "posts", "posts"),),
    ),
    # <<< stage 4
}


@dataclass(frozen=True)
class Group:
    """Routes sharing one path pattern: one nginx ``location``."""

    match: str
    pattern: str
    routes: tuple[Route, ...]
    fallback: str | None  # for a method no route of the group takes
    shadow: Shadow | None = None  # [stage 2]

    def upstream_for(self, method: str) -> str | None:
        for route in self.routes:
            if route.takes(method):
                return route.upstream
        return self.fallback

    def path_matches(self, path: str) -> bool:
        return self.routes[0].path_matches(path)


@dataclass(frozen=True)
class Table:
    stage: Stage
    groups: tuple[Group, ...]  # exact groups first, then regex groups in order
    default: str | None
    shadow_mode: bool = False  # [stage 2]

    def resolve(self, method: str, path: str) -> tuple[str | None, Group | None]:
        """(upstream, group) for a request; upstream None means: answer 405
        (group set) or 404 (no group)."""
        for group in self.groups:
            if group.path_matches(path):
                return group.upstream_for(method), group
        return self.default, None

    # >>> stage 2: the parallel run
    def shadow_for(self, method: str, path: str) -> Shadow | None:
        if not self.shadow_mode:
            return None
        _, group = self.resolve(method, path)
        if group and group.shadow and method.upper() in group.shadow.methods:
            return group.shadow
        return None

    # <<< stage 2
    def upstreams(self) -> list[str]:
        """HTTP upstreams the stage may send requests to."""
        used = {r.upstream for g in self.groups for r in g.routes}
        used |= {self.default} if self.default else set()
        # >>> stage 2: a parallel run sends to both sides
        for g in self.groups:
            if g.shadow:
                used |= {g.shadow.primary, g.shadow.shadow}
        # <<< stage 2
        return [u for u in HTTP_UPSTREAMS if u in used]


def stage(number: int) -> Stage:
    if number not in STAGES:
        raise ValueError(f"unknown stage {number}; stages are {sorted(STAGES)}")
    return STAGES[number]


def table(number: int) -> Table:
    """The compiled table of a stage."""
    st = _with_gateway(number)
    return _compile(st, st.routes)


def _with_gateway(number: int) -> Stage:
    st = stage(number)
    if not st.has_gateway:
        raise ValueError("stage 0 has no gateway: clients talk to the monolith directly")
    return st


def _compile(st: Stage, routes: tuple[Route, ...]) -> Table:
    """Groups ``routes`` by (match, pattern): exact groups first, then the
    regex groups in the order of their first route."""
    keys: list[tuple[str, str]] = []
    members: dict[tuple[str, str], list[Route]] = {}
    for route in routes:
        key = (route.match, route.pattern)
        if key not in members:
            keys.append(key)
            members[key] = []
        members[key].append(route)
    groups = [Group(m, p, tuple(members[(m, p)]), st.default) for m, p in keys]
    groups.sort(key=lambda g: g.match != "exact")  # stable: regex order kept
    return Table(st, tuple(groups), st.default)


# >>> stage 2: the table of a parallel run
def parallel_run(number: int) -> Table:
    """The compiled table of a stage in shadow mode: the stage's shadow entries
    take over their methods (primary answers, shadow gets a copy)."""
    st = _with_gateway(number)
    pending = list(st.shadows)
    routes: list[Route] = []
    for route in st.routes:
        # A shadow entry goes just before the first route of its pattern, so
        # that it takes its methods without changing the order of patterns.
        for s in [s for s in pending if (s.match, s.pattern) == (route.match, route.pattern)]:
            routes.append(Route(s.methods, s.match, s.pattern, s.primary, f"{s.name}-parallel-run"))
            pending.remove(s)
        routes.append(route)
    routes += [Route(s.methods, s.match, s.pattern, s.primary, s.name) for s in pending]
    shadows = {(s.match, s.pattern): s for s in st.shadows}
    groups = [
        Group(g.match, g.pattern, g.routes, g.fallback, shadows.get((g.match, g.pattern)))
        for g in _compile(st, tuple(routes)).groups
    ]
    return Table(st, tuple(groups), st.default, shadow_mode=True)


# <<< stage 2
def normalised_path(raw: str) -> str:
    """``raw`` as nginx matches it against locations: percent-decoded, ``.``
    and ``..`` segments resolved, repeated slashes kept (merge_slashes off)."""
    segments: list[str] = []
    for segment in unquote(raw).split("/")[1:]:
        if segment == ".":
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    return "/" + "/".join(segments)


def upstream_url(name: str, env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    var, default = UPSTREAM_ENV[name]
    return env.get(var) or default


def upstream_hostport(name: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    url = urlsplit(upstream_url(name, env))
    if url.scheme != "http" or not url.hostname:
        raise ValueError(f"{UPSTREAM_ENV[name][0]} must be http://host:port, got {url.geturl()!r}")
    return url.hostname, url.port or 80


# >>> stage 4: the UI files, served by the gateway
def ui_dir(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    var, default = UI_DIR_ENV
    return Path(env.get(var) or default).resolve()


# <<< stage 4
# Requests of the public contract (and the UI), used to check the table.
CONTRACT_SAMPLES = (
    ("GET", "/api/posts/"),
    ("GET", "/api/posts"),
    ("POST", "/api/posts/"),
    ("POST", "/api/posts"),
    ("GET", "/api/posts/0b1f6c1e-8a4e-4b8e-9f3a-1c2d3e4f5a6b/"),
    ("GET", "/api/posts/not-a-uuid/"),
    ("DELETE", "/api/posts/0b1f6c1e-8a4e-4b8e-9f3a-1c2d3e4f5a6b/"),
    ("GET", "/api/posts/0b1f6c1e-8a4e-4b8e-9f3a-1c2d3e4f5a6b/comments/"),
    ("GET", "/api/posts/not-a-uuid/comments/"),
    ("POST", "/api/posts/0b1f6c1e-8a4e-4b8e-9f3a-1c2d3e4f5a6b/comments/"),
    ("POST", "/api/posts/0b1f6c1e-8a4e-4b8e-9f3a-1c2d3e4f5a6b/comments"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/schema/"),
    ("GET", "/api/docs/"),
    ("GET", "/"),
    ("GET", "/app.js"),
)


def validate() -> None:
    """Raise if a stage's table is not well-formed (see module docstring)."""
    for number, st in STAGES.items():
        if not st.has_gateway:
            continue
        tables = [table(number)]
        tables.append(parallel_run(number))  # [stage 2]
        for tbl in tables:
            for g in tbl.groups:
                # >>> stage 4: the UI files
                ups = {r.upstream for r in g.routes}
                if "ui" in ups and len(ups | ({g.fallback} if g.fallback else set())) > 1:
                    raise ValueError(f"stage {number}: {g.pattern} mixes ui with proxying")
                # <<< stage 4
                for r in g.routes:
                    if r.upstream not in UPSTREAMS:
                        raise ValueError(f"stage {number}: unknown upstream {r.upstream!r}")
                if g.match == "regex":
                    re.compile(g.pattern)
            for _method, path in CONTRACT_SAMPLES:
                hits = [g for g in tbl.groups if g.path_matches(path)]
                # Overlapping patterns are fine (first one wins, in nginx too),
                # but the first must take every method: a request never falls
                # through to a later pattern, only to the stage default.
                if len(hits) > 1 and any(r.methods is not None for r in hits[0].routes[-1:]):
                    raise ValueError(
                        f"stage {number}: {path} matched by {hits[0].pattern} and a later"
                        " pattern; the first must end with an any-method route"
                    )


def describe(number: int) -> str:
    """The stage's table as text (``python -m gateway.routes --stage N``)."""
    st = stage(number)
    if not st.has_gateway:
        return f"stage {number} ({st.name}): no gateway, clients -> monolith\n"
    return _text(table(number), f"stage {number} ({st.name}):")


# >>> stage 2: the table of a parallel run as text
def describe_parallel_run(number: int) -> str:
    """The stage's table in shadow mode (``python -m gateway.routes --stage N --shadow``)."""
    st = stage(number)
    if not st.has_gateway:
        return describe(number)
    return _text(parallel_run(number), f"stage {number} ({st.name}) shadow mode:")


# <<< stage 2
def _text(tbl: Table, title: str) -> str:
    lines = [title]
    for g in tbl.groups:
        for r in g.routes:
            methods = "ANY" if r.methods is None else ",".join(sorted(r.methods))
            lines.append(f"  {methods:<14} {r.match:<5} {r.pattern:<34} -> {r.upstream}")
        # >>> stage 2: where a parallel run sends its copy
        if g.shadow:
            lines.append(f"  {'':<14} {'':<5} {'':<34}    mirror -> {g.shadow.shadow}")
        # <<< stage 2
    lines.append(f"  {'ANY':<14} {'*':<5} {'(anything else)':<34} -> {tbl.default or '404'}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the gateway route table of a stage.")
    parser.add_argument("--stage", type=int, default=int(os.environ.get("STAGE", "1")))
    parser.add_argument("--shadow", action="store_true")  # [stage 2]
    args = parser.parse_args(argv)
    validate()
    # >>> stage 2: the parallel run's table
    if args.shadow:
        sys.stdout.write(describe_parallel_run(args.stage))
        return 0
    # <<< stage 2
    sys.stdout.write(describe(args.stage))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
