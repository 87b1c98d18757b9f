"""Render a stage of the route table (gateway/routes.py) to Kubernetes routing:
a Gateway API ``HTTPRoute`` and, as the alternative, a ``networking.k8s.io/v1``
``Ingress``, both committed into the stage's overlay under k8s/overlays/.

    python -m gateway.k8s --stage 2                 # the HTTPRoute on stdout
    python -m gateway.k8s --stage 2 --ingress       # the Ingress on stdout
    python -m gateway.k8s --write                   # (re)write every stage's files

Both kinds only have ``Exact`` and ``PathPrefix`` (element-wise) path matches
that every implementation supports the same way. A route of the table that
they express exactly goes straight to its Service. A route they cannot
express exactly (a regex with a wildcard segment, method-dependent routing,
what the gateway answers itself: probes, the UI files, JSON 404/405) goes to
the nginx gateway Service, which runs the whole table (``gateway.render``),
through the smallest path prefix that covers it. ``check`` proves, on sample
requests, that every request sent straight to a Service is sent where the
table sends it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from . import routes as rt

REPO_ROOT = Path(__file__).resolve().parent.parent
OVERLAYS = REPO_ROOT / "k8s" / "overlays"

# Service name and port of each upstream in k8s/base/ ("gateway": the nginx
# gateway, which also answers for the ui and for JSON 404/405).
SERVICES = {
    "monolith": ("monolith", 8000),
    "posts": ("posts", 8001),
    "comments": ("comments", 8002),
    "gateway": ("gateway", 8080),
}
GATEWAY_NAME = "blog"  # the Gateway the HTTPRoute attaches to (k8s/overlays/dev)
# The stage that brings the gateway, and with it this module.
FIRST_GATEWAY_STAGE = min(n for n, st in rt.STAGES.items() if st.has_gateway)
INGRESS_CLASS = "nginx"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

NGINX_ONLY = (
    "RegularExpression path matches are Implementation-specific in the Gateway API "
    "(and absent from Ingress)"
)

# How each path pattern of the table translates: exact=True when the matches
# select exactly the paths the pattern does (PathPrefix is element-wise:
# /api/posts matches /api/posts, /api/posts/ and /api/posts/..., not
# /api/postsx), else they are the smallest cover of it, sent to nginx.
# ``minus`` lists paths the matches take but the pattern does not: they go to
# nginx as Exact matches, which win over any prefix.


@dataclass(frozen=True)
class Translation:
    matches: tuple[tuple[str, str], ...]
    exact: bool
    why: str = ""
    minus: tuple[str, ...] = ()


TRANSLATIONS: dict[str, Translation] = {
    rt.INTERNAL: Translation((("PathPrefix", "/internal"),), True),
    # >>> stage 2: the comments of a post
    rt.COMMENTS_OF_POST: Translation(
        (("PathPrefix", "/api/posts"),),
        False,
        f"{rt.COMMENTS_OF_POST}: the post id is a wildcard segment; {NGINX_ONLY}",
    ),
    # <<< stage 2
    # >>> stage 4: the posts service's routes, and the UI
    rt.POSTS_ANY: Translation((("PathPrefix", "/api/posts"),), True),
    rt.API_DOCS: Translation((("PathPrefix", "/api/schema"), ("PathPrefix", "/api/docs")), True),
    rt.STATIC_ASSETS: Translation(
        (("PathPrefix", "/static"),), True, minus=("/static", "/static/")
    ),
    rt.UI_FILES: Translation(
        (("PathPrefix", "/"),),
        False,
        f"{rt.UI_FILES}: any file name at the root; {NGINX_ONLY}",
    ),
    # <<< stage 4
}


@dataclass(frozen=True)
class Rule:
    kind: str  # "Exact" or "PathPrefix"
    path: str
    backend: str  # a key of SERVICES
    why: str


def _translation(group: rt.Group) -> Translation:
    if group.match == "exact":
        return Translation((("Exact", group.pattern),), True)
    if group.pattern not in TRANSLATIONS:
        raise ValueError(
            f"no Kubernetes translation for the route pattern {group.pattern!r}: "
            "add one to gateway/k8s.py TRANSLATIONS"
        )
    return TRANSLATIONS[group.pattern]


def rules(stage: int) -> list[Rule]:
    """The stage's path matches, in the table's precedence order, first one
    of a (kind, path) kept."""
    st = rt.stage(stage)
    if not st.has_gateway:
        return [Rule("PathPrefix", "/", "monolith", "stage 0: no gateway, clients -> monolith")]
    tbl = rt.table(stage)
    found: list[Rule] = []
    for group in tbl.groups:
        tr = _translation(group)
        outcomes = {group.upstream_for(m) for m in METHODS}
        label = f"{group.match} {group.pattern}"
        if not tr.exact:
            backend, why = "gateway", tr.why
        elif len(outcomes) == 1 and next(iter(outcomes)) in rt.HTTP_UPSTREAMS:
            backend, why = next(iter(outcomes)), f"{label} -> {next(iter(outcomes))}"
        elif outcomes <= {"gateway"}:
            backend, why = "gateway", f"{label}: answered by the gateway itself"
        elif outcomes <= {"ui", None}:
            backend, why = "gateway", f"{label}: the UI files, served by the nginx gateway"
        else:
            shown = ", ".join(sorted(str(o) for o in outcomes))
            backend, why = (
                "gateway",
                f"{label}: the upstream depends on the method ({shown}); nginx routes it",
            )
        found += [Rule(kind, path, backend, why) for kind, path in tr.matches]
        found += [
            Rule("Exact", path, "gateway", f"{path}: not matched by {group.pattern}")
            for path in tr.minus
        ]
    if tbl.default:
        found.append(Rule("PathPrefix", "/", tbl.default, f"anything else -> {tbl.default}"))
    else:
        found.append(Rule("PathPrefix", "/", "gateway", "anything else: JSON 404 from the gateway"))
    kept: dict[tuple[str, str], Rule] = {}
    for rule in found:
        kept.setdefault((rule.kind, rule.path), rule)
    return list(kept.values())


def _prefix_matches(prefix: str, path: str) -> bool:
    base = prefix.rstrip("/")
    return base == "" or path == base or path.startswith(base + "/")


def resolve(stage_rules: list[Rule], path: str) -> Rule | None:
    """The rule that takes ``path``: an Exact match, else the longest
    PathPrefix (Gateway API and Ingress precedence agree on these two)."""
    for rule in stage_rules:
        if rule.kind == "Exact" and rule.path == path:
            return rule
    prefixes = [r for r in stage_rules if r.kind == "PathPrefix" and _prefix_matches(r.path, path)]
    return max(prefixes, key=lambda r: len(r.path.rstrip("/")), default=None)


EXTRA_PATHS = (
    "/internal",
    "/internal/",
    "/internal/comment-counts/",
    "/internalx",
    "/api/postsx",
    "/api/posts/x/comments/extra",
    "/api/posts/x/commentsx",
    "/api/schema",
    "/api/docs.html",
    "/api/docsx/",
    "/api/other/",
    "/static",
    "/static/",
    "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
    "/favicon.svg",
    "/app.css",
    "/index.html",
    "/dir/app.js",
    "/nothing-here",
    "/healthz/",
)


def samples() -> list[tuple[str, str]]:
    paths = [p for _, p in rt.CONTRACT_SAMPLES] + list(EXTRA_PATHS)
    return [(m, p) for p in dict.fromkeys(paths) for m in METHODS]


def check(stage: int) -> None:
    """Raise if a sample request would be sent straight to a Service other
    than the one the table names (sending it to the nginx gateway is always
    right: nginx runs the whole table)."""
    stage_rules = rules(stage)
    for method, path in samples():
        rule = resolve(stage_rules, path)
        if rule is None:
            raise ValueError(f"stage {stage}: {method} {path} matches no rule")
        if rt.stage(stage).has_gateway:
            expected, _ = rt.table(stage).resolve(method, path)
        else:
            expected = "monolith"
        if rule.backend != "gateway" and rule.backend != expected:
            raise ValueError(
                f"stage {stage}: {method} {path} would go to {rule.backend}, "
                f"the table says {expected}"
            )


def _header(stage: int, what: str) -> list[str]:
    st = rt.stage(stage)
    rendered = "# Rendered by `python -m gateway.k8s --write` from gateway/routes.py. Do not edit."
    if not st.has_gateway:
        # A stage without a gateway is in the stage trees before this module:
        # a stage marker cuts the line out of them (stages/markers.py).
        rendered += "  # [stage " + str(FIRST_GATEWAY_STAGE) + "]"
    lines = [rendered, f"# Stage {stage} ({st.name}): {what}."]
    if st.has_gateway:
        lines += [
            "# Exact and PathPrefix matches only. A route they cannot express exactly goes",
            "# to the nginx gateway Service, which runs the whole route table:",
        ]
        notes = sorted({r.why for r in rules(stage) if r.backend == "gateway"})
        lines += [f"#   - {note}" for note in notes]
        lines += [
            "# Requests sent straight to a Service miss what nginx adds: the JSON 503/504",
            "# when that Service is down (the Gateway/Ingress controller answers its own),",
            "# and the 1 s connect / 10 s read timeouts (the services keep their JSON 413).",
        ]
    return lines


def _object_head(api_version: str, kind: str) -> list[str]:
    """apiVersion, kind and metadata of the routing object `blog`, up to `spec:`."""
    return [
        f"apiVersion: {api_version}",
        f"kind: {kind}",
        "metadata:",
        "  name: blog",
        "  labels:",
        "    app.kubernetes.io/name: blog",
        "    app.kubernetes.io/part-of: blog",
        "    app.kubernetes.io/component: routing",
        "spec:",
    ]


def render_httproute(stage: int) -> str:
    stage_rules = rules(stage)
    check(stage)
    out = _header(stage, "Gateway API HTTPRoute, attached to the Gateway `blog`")
    out += [
        *_object_head("gateway.networking.k8s.io/v1", "HTTPRoute"),
        "  parentRefs:",
        f"    - name: {GATEWAY_NAME}",
        "  rules:",
    ]
    for backend in [b for b in SERVICES if any(r.backend == b for r in stage_rules)]:
        service, port = SERVICES[backend]
        out += [f"    - name: to-{service}", "      matches:"]
        for rule in [r for r in stage_rules if r.backend == backend]:
            out += [
                f"        # {rule.why}",
                "        - path:",
                f"            type: {rule.kind}",
                f'            value: "{rule.path}"',
            ]
        out += [
            "      backendRefs:",
            f"        - name: {service}",
            f"          port: {port}",
        ]
    return "\n".join(out) + "\n"


def render_ingress(stage: int) -> str:
    stage_rules = rules(stage)
    check(stage)
    out = _header(stage, "the Ingress alternative to the HTTPRoute")
    out += [
        *_object_head("networking.k8s.io/v1", "Ingress"),
        f"  ingressClassName: {INGRESS_CLASS}",
        "  rules:",
        "    - http:",
        "        paths:",
    ]
    for rule in stage_rules:
        service, port = SERVICES[rule.backend]
        out += [
            f"          # {rule.why}",
            f'          - path: "{rule.path}"',
            f"            pathType: {'Exact' if rule.kind == 'Exact' else 'Prefix'}",
            "            backend:",
            "              service:",
            f"                name: {service}",
            "                port:",
            f"                  number: {port}",
        ]
    return "\n".join(out) + "\n"


def outputs(stage: int) -> dict[Path, str]:
    """The committed files of a stage and their rendered text."""
    base = OVERLAYS / f"stage-{stage}"
    return {
        base / "httproute.yaml": render_httproute(stage),
        base / "ingress" / "ingress.yaml": render_ingress(stage),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", type=int)
    parser.add_argument("--ingress", action="store_true", help="the Ingress instead")
    parser.add_argument(
        "--write", action="store_true", help="write the files of --stage (default: every stage)"
    )
    args = parser.parse_args(argv)
    rt.validate()
    if args.write:
        stages = [args.stage] if args.stage is not None else sorted(rt.STAGES)
        for number in stages:
            for path, text in outputs(number).items():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
                print(f"wrote {path.relative_to(REPO_ROOT)}")
        return 0
    if args.stage is None:
        parser.error("--stage is required without --write")
    try:
        text = render_ingress(args.stage) if args.ingress else render_httproute(args.stage)
    except ValueError as exc:
        parser.error(str(exc))
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
