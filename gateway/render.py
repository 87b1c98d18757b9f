"""Render a stage of the route table (gateway/routes.py) to a complete nginx.conf.

    python -m gateway.render --stage 1 --out /tmp/gw/nginx.conf --listen 127.0.0.1:8080
    nginx -p /tmp/gw -c /tmp/gw/nginx.conf      # pid, logs and temp files live under -p

Relative paths in the output (pid, logs, temp folders) resolve against nginx's
``-p`` prefix, so one rendered file runs unprivileged from any folder.

The nginx text is in ``templates/``: ``nginx.conf.tmpl`` is the whole file with
placeholders, ``blocks.conf.tmpl`` the blocks it repeats (an upstream, each kind
of location), each under a ``## --- NAME: what it is`` line. This module keeps
the table's logic (which locations, in which order, which upstream for which
methods) and fills the templates with ``fill()``, a few lines of ``re``:

* ``@{name}`` is a placeholder. Not ``string.Template``'s ``$name``: in an nginx
  config ``$`` starts nginx's own variables (``$gw_upstream``, ``$request_uri``),
  which would all need escaping as ``$$``. ``@`` is only nginx's named location
  (``@gw_404``) and never comes before ``{``, so nginx's text stays as it is.
* A placeholder alone on its line takes whole lines (the locations of the
  server, the route rules of a location): each line gets the placeholder's
  indentation, and an empty value takes the line away. ``string.Template`` has
  no such thing, which is the other reason for a function of our own.
* It is strict: a placeholder without a value, or a value without a
  placeholder, is an error, so the templates and this module cannot drift apart.
* Lines starting with ``##`` are the templates' own comments, and the repository's
  stage markers (``# >>> stage ...`` lines and `` # [stage ...]`` tails) are
  dropped: nginx.conf gets neither.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
from pathlib import Path

from . import routes as rt
from .shadow import SHADOW_METHODS, SHADOW_PATH  # [stage 2]

TEMPLATES = Path(__file__).resolve().parent / "templates"

ERRORS = {
    400: "Bad request.",
    404: "No route for this path.",
    405: "Method not allowed on this route.",
    413: "Request body too large (limit 1 MB).",
    503: "Upstream unavailable.",
    504: "Upstream timed out.",
}

# A placeholder alone on its line (whole lines), or anywhere in a line.
_SLOT = re.compile(r"^(?P<indent>[ \t]*)@\{(?P<lines>\w+)\}[ \t]*\n|@\{(?P<inline>\w+)\}", re.M)
_BLOCK_HEAD = re.compile(r"## --- (?P<name>[a-z][a-z-]*)\b")
_DROPPED = re.compile(r"[ \t]*(##|#[ \t]*(>>>|<<<) stage \d+\b)")
_MARKER_TAIL = re.compile(r"[ \t]+#[ \t]*\[stage \d+\][ \t]*$")


def fill(template: str, /, **values: object) -> str:
    """``template`` with each ``@{name}`` replaced by ``str(values[name])``; see the
    module's docstring. Inserted text is not searched for placeholders again."""
    used: set[str] = set()

    def value(m: re.Match[str]) -> str:
        name = m["lines"] or m["inline"]
        if name not in values:
            raise KeyError(f"no value for the placeholder @{{{name}}}")
        used.add(name)
        text = str(values[name])
        if m["inline"]:
            return text
        lines = text.splitlines(keepends=True)
        return "".join(m["indent"] + ln if ln.strip("\r\n") else ln for ln in lines) + (
            "\n" if text and not text.endswith("\n") else ""
        )

    out = _SLOT.sub(value, template)
    if unused := sorted(set(values) - used):
        raise ValueError(f"values for no placeholder: {', '.join(unused)}")
    return out


@functools.cache
def load(name: str) -> dict[str, str]:
    """The templates of templates/NAME, comments and stage markers dropped:
    ``""`` is the text before the first ``## --- BLOCK`` line, then each block
    by its name; leading and trailing blank lines are trimmed."""
    parts: dict[str, list[str]] = {"": []}
    current = parts[""]
    for number, line in enumerate((TEMPLATES / name).read_text(encoding="utf-8").splitlines(), 1):
        if head := _BLOCK_HEAD.match(line):
            if head["name"] in parts:
                raise ValueError(f"{name}:{number}: a second block {head['name']!r}")
            current = parts[head["name"]] = []
        elif not _DROPPED.match(line):
            line = _MARKER_TAIL.sub("", line)
            if line.count("@{") != len(_SLOT.findall(line + "\n")):
                raise ValueError(f"{name}:{number}: a malformed placeholder: {line.strip()!r}")
            current.append(line + "\n")
    return {key: "".join(lines).strip("\n") + "\n" for key, lines in parts.items() if lines}


def _block(name: str, /, **values: object) -> str:
    return fill(load("blocks.conf.tmpl")[name], **values)


def _q(text: str) -> str:
    """An nginx single-quoted string."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _json(obj: object) -> str:
    return _q(json.dumps(obj, separators=(",", ":")))


def _location_match(match: str, pattern: str) -> str:
    """What follows ``location`` for a route pattern."""
    if match == "exact":
        return f"= {pattern}"
    return f'~ "{pattern}"'


def _methods_regex(methods: frozenset[str]) -> str:
    return _q("^(" + "|".join(sorted(methods)) + ")$")


def _own_location(route: rt.Route) -> str:
    status, body = 200, {"status": "ok"}
    if route.name == "internal":
        status, body = 404, {"detail": "Not found."}
    elif route.name == "readyz":
        # nginx cannot probe its upstreams itself; each upstream has its own
        # /readyz. The dev router's /readyz does check the upstreams.
        body = {"status": "ok", "checks": {"gateway": "ok"}}
    match = _location_match(route.match, route.pattern)
    return _block("json-location", match=match, status=status, body=_json(body))


def _error_location(code: int, detail: str) -> str:
    body = {"detail": detail}
    if code in (503, 504):
        body["upstream"] = "$gw_upstream"  # nginx's variable: the upstream that failed
    return _block("json-location", match=f"@gw_{code}", status=code, body=_json(body))


# >>> stage 4: the UI files, served by the gateway
def _ui_location(group: rt.Group, ui_root: str) -> str:
    methods = group.routes[0].methods or frozenset({"GET", "HEAD"})
    match = _location_match(group.match, group.pattern)
    return _block("ui-location", match=match, methods=_methods_regex(methods), root=ui_root)
    # <<< stage 4


def _proxy_location(
    match: str, group: rt.Group | None, default: str | None, proxy_settings: str
) -> str:
    fallback = group.fallback if group else default
    rules: list[str] = []
    if group:
        # Apply in reverse so that the first route taking the method wins.
        for route in reversed(group.routes):
            if route.methods is None:
                rules.append(_block("route-any", upstream=route.upstream))
            else:
                methods = _methods_regex(route.methods)
                rules.append(_block("route-methods", methods=methods, upstream=route.upstream))
    # >>> stage 2: a parallel run's reads are mirrored to the new owner
    mirror = _block("mirror-to", shadow=group.shadow.shadow) if group and group.shadow else ""
    # <<< stage 2
    return _block(
        "proxy-location",
        match=match,
        fallback=fallback or "none",
        method_rules="".join(rules),
        read_methods=_methods_regex(rt.READ_METHODS),
        mirror=mirror,  # [stage 2]
        proxy_settings=proxy_settings,
    )


# >>> stage 2: the parallel run's copy, sent by nginx's mirror
def _mirror_location(shadow: rt.Shadow, proxy_settings: str, shadow_log: str) -> str:
    return _block(
        "mirror-location",
        shadow=shadow.shadow,
        methods=_methods_regex(shadow.methods),
        shadow_log=shadow_log,
        proxy_settings=proxy_settings,
    )
    # <<< stage 2


# >>> stage 2: the parallel run's page, the gateway's own
def _shadow_location(tbl: rt.Table) -> str:
    """GET /_gateway/shadow: in shadow mode, where the comparison is (nginx
    counts nothing itself); otherwise a JSON 404, never the default upstream."""
    if not tbl.shadow_mode:
        return _block("shadow-off-location", path=SHADOW_PATH)
    body = {
        "stage": tbl.stage.number,
        "shadow_mode": True,
        "detail": "nginx keeps no counts: python -m gateway.shadowlog PREFIX compares its "
        "access and shadow logs in the folder it runs in (-p PREFIX); bodies are compared "
        "by the dev router only.",
    }
    methods = _methods_regex(SHADOW_METHODS)
    return _block("shadow-location", path=SHADOW_PATH, methods=methods, body=_json(body))
    # <<< stage 2


def render(
    stage: int,
    *,
    listen: str = "127.0.0.1:8080",
    shadow: bool = False,  # [stage 2]
    env: dict[str, str] | None = None,
    connect_timeout: float = rt.CONNECT_TIMEOUT_S,
    read_timeout: float = rt.READ_TIMEOUT_S,
    write_timeout: float = rt.WRITE_TIMEOUT_S,
    std_logs: bool = False,
    user: str | None = None,
) -> str:
    """The nginx.conf of `stage`. `std_logs`: logs to stdout/stderr instead of files
    under the prefix (containers: the prefix then only holds the pid and temp folders,
    and can be an empty writable folder such as /tmp). `user`: who the workers run as
    when the master runs as root (nginx's default, `nobody`, cannot read a checkout
    in a private folder, e.g. under /root or `mktemp -d`); ignored otherwise."""
    tbl = rt.table(stage)
    command = f"python -m gateway.render --stage {stage}"
    # >>> stage 2: the parallel run (nginx mirror), its shadow's answers logged
    if shadow:
        tbl = rt.parallel_run(stage)
        command += " --shadow"
    shadow_log = "/dev/stdout" if std_logs else "shadow.log"
    # <<< stage 2
    error_log, access_log = ("stderr", "/dev/stdout") if std_logs else ("error.log", "access.log")
    # Reads wait read_timeout for their upstream; a location hands its writes to
    # @gw_write (error_page 418), which waits write_timeout: nginx takes no
    # variable in proxy_read_timeout, nor the directive inside an `if`.
    proxy_settings = _block(
        "proxy-settings",
        connect_ms=int(connect_timeout * 1000),
        read_ms=int(read_timeout * 1000),
    )
    write_settings = _block(
        "proxy-settings",
        connect_ms=int(connect_timeout * 1000),
        read_ms=int(write_timeout * 1000),
    )
    ui_root = str(rt.ui_dir(env))  # [stage 4]
    upstreams = []
    for name in tbl.upstreams():
        host, port = rt.upstream_hostport(name, env)
        upstreams.append(_block("upstream", name=name, host=host, port=port))
    locations: list[str] = []
    # >>> stage 2: the parallel run's page and copies
    locations.append(_shadow_location(tbl))
    mirrored: set[str] = set()
    # <<< stage 2
    for group in tbl.groups:
        ups = {r.upstream for r in group.routes}
        if ups == {"gateway"}:
            locations.append(_own_location(group.routes[0]))
            continue
        # >>> stage 4: the UI files
        if ups == {"ui"}:
            locations.append(_ui_location(group, ui_root))
            continue
        # <<< stage 4
        match = _location_match(group.match, group.pattern)
        locations.append(_proxy_location(match, group, tbl.default, proxy_settings))
        # >>> stage 2: one mirror location per new owner
        if group.shadow and group.shadow.shadow not in mirrored:
            mirrored.add(group.shadow.shadow)
            locations.append(_mirror_location(group.shadow, proxy_settings, shadow_log))
        # <<< stage 2
    if tbl.default:
        locations.append(_proxy_location("/", None, tbl.default, proxy_settings))
    else:
        locations.append(_block("no-route-location"))
    locations.append(_block("write-location", proxy_settings=write_settings))
    return fill(
        load("nginx.conf.tmpl")[""],
        command=command,
        user=f"user {user};" if user else "",
        stage=stage,
        stage_name=tbl.stage.name,
        under_prefix="pid, temp" if std_logs else "pid, temp, logs",
        error_log=error_log,
        sane_request_id=rt.SANE_REQUEST_ID,
        access_log=access_log,
        upstreams="".join(upstreams),
        listen=listen,
        error_pages="".join(_error_location(code, detail) for code, detail in ERRORS.items()),
        routes="".join(locations),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", type=int, default=int(os.environ.get("STAGE", "1")))
    parser.add_argument("--out", help="write here instead of stdout")
    parser.add_argument("--listen", default=os.environ.get("GATEWAY_LISTEN", "127.0.0.1:8080"))
    # >>> stage 2: the parallel run
    parser.add_argument("--shadow", action="store_true", help="parallel run (nginx mirror)")
    # <<< stage 2
    parser.add_argument(
        "--std-logs",
        action="store_true",
        help="log to stdout/stderr, not to files under nginx's -p prefix (containers)",
    )
    rt.add_timeout_arguments(parser)
    parser.add_argument(
        "--user",
        help="the workers' user when nginx starts as root (e.g. $(id -un): the one who "
        "owns the files it serves)",
    )
    args = parser.parse_args(argv)
    rt.validate()
    try:
        text = render(
            args.stage,
            listen=args.listen,
            shadow=args.shadow,  # [stage 2]
            read_timeout=args.read_timeout,
            write_timeout=args.write_timeout,
            std_logs=args.std_logs,
            user=args.user,
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
