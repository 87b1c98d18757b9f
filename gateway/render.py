"""Render a stage of the route table (gateway/routes.py) to a complete nginx.conf.

    python -m gateway.render --stage 1 --out /tmp/gw/nginx.conf --listen 127.0.0.1:8080
    nginx -p /tmp/gw -c /tmp/gw/nginx.conf      # pid, logs and temp files live under -p

Relative paths in the output (pid, logs, temp folders) resolve against nginx's
``-p`` prefix, so one rendered file runs unprivileged from any folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import routes as rt

ERRORS = {
    400: "Bad request.",
    404: "No route for this path.",
    405: "Method not allowed on this route.",
    413: "Request body too large (limit 1 MB).",
    503: "Upstream unavailable.",
    504: "Upstream timed out.",
}

PROXY_COMMON = """\
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $http_host;
        proxy_set_header X-Request-ID $gw_request_id;
        proxy_connect_timeout {connect}ms;
        proxy_send_timeout {read}ms;
        proxy_read_timeout {read}ms;
        proxy_redirect off;
        proxy_buffering off;
        proxy_request_buffering on;
"""


def _q(text: str) -> str:
    """An nginx single-quoted string."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _json(obj: object) -> str:
    return _q(json.dumps(obj, separators=(",", ":")))


def _location_head(match: str, pattern: str) -> str:
    if match == "exact":
        return f"location = {pattern}"
    return f'location ~ "{pattern}"'


def _methods_regex(methods: frozenset[str]) -> str:
    return "^(" + "|".join(sorted(methods)) + ")$"


def _gateway_headers(indent: str = "        ") -> str:
    return (
        f"{indent}types {{ }}  # not text/javascript for a missing /x.js\n"
        f"{indent}default_type application/json;\n"
        f"{indent}add_header X-Served-By gateway always;\n"
        f"{indent}add_header X-Request-ID $gw_request_id always;\n"
        f"{indent}add_header Cache-Control no-store always;\n"
    )


def _own_location(route: rt.Route) -> str:
    status, body = 200, {"status": "ok"}
    if route.name == "internal":
        status, body = 404, {"detail": "Not found."}
    elif route.name == "readyz":
        # nginx cannot probe its upstreams itself; each upstream has its own
        # /readyz. The dev router's /readyz does check the upstreams.
        body = {"status": "ok", "checks": {"gateway": "ok"}}
    return (
        f"    {_location_head(route.match, route.pattern)} {{\n"
        + _gateway_headers()
        + f"        return {status} {_json(body)};\n"
        "    }\n"
    )


# >>> stage 4: the UI files, served by the gateway
def _ui_location(group: rt.Group, ui_root: str) -> str:
    methods = group.routes[0].methods or frozenset({"GET", "HEAD"})
    return (
        f"    {_location_head(group.match, group.pattern)} {{\n"
        f"        if ($request_method !~ {_q(_methods_regex(methods))}) {{ return 405; }}\n"
        f'        root "{ui_root}";\n'
        "        add_header X-Served-By gateway always;\n"
        "        add_header X-Request-ID $gw_request_id always;\n"
        "        try_files $uri $uri/index.html =404;\n"
        "    }\n"
    )
    # <<< stage 4


def _proxy_location(head: str, group: rt.Group | None, default: str | None, common: str) -> str:
    lines = [f"    {head} {{"]
    fallback = group.fallback if group else default
    lines.append(f"        set $gw_upstream {fallback or 'none'};")
    if group:
        # Apply in reverse so that the first route taking the method wins.
        for route in reversed(group.routes):
            if route.methods is None:
                lines.append(f"        set $gw_upstream {route.upstream};")
            else:
                rx = _q(_methods_regex(route.methods))
                lines.append(
                    f"        if ($request_method ~ {rx}) {{ set $gw_upstream {route.upstream}; }}"
                )
    lines.append("        if ($gw_upstream = none) { return 405; }")
    # >>> stage 2: a parallel run's reads are mirrored to the new owner
    if group and group.shadow:
        lines.append(f"        mirror /_gw_mirror/{group.shadow.shadow};")
        lines.append("        mirror_request_body off;")
    # <<< stage 2
    lines.append("        proxy_hide_header X-Request-ID;")
    lines.append("        add_header X-Request-ID $gw_request_id always;")
    lines.append(common.rstrip("\n"))
    lines.append("        proxy_pass http://gw_$gw_upstream;")
    lines.append("    }")
    return "\n".join(lines) + "\n"


# >>> stage 2: the parallel run's copy, sent by nginx's mirror
def _mirror_location(shadow: rt.Shadow, common: str, shadow_log: str) -> str:
    methods = _q(_methods_regex(shadow.methods))
    return (
        f"    location = /_gw_mirror/{shadow.shadow} {{\n"
        "        internal;\n"
        # $request_method is the client's: never copy a write to the new owner.
        f"        if ($request_method !~ {methods}) {{ return 204; }}\n"
        "        log_subrequest on;\n"
        f"        access_log {shadow_log} gw_shadow;\n"
        + common
        + "        proxy_set_header X-Gateway-Shadow 1;\n"
        '        proxy_set_header Content-Length "";\n'
        "        proxy_pass_request_body off;\n"
        f"        proxy_pass http://gw_{shadow.shadow}$request_uri;\n"
        "    }\n"
    )
    # <<< stage 2


def render(
    stage: int,
    *,
    listen: str = "127.0.0.1:8080",
    shadow: bool = False,  # [stage 2]
    env: dict[str, str] | None = None,
    connect_timeout: float = rt.CONNECT_TIMEOUT_S,
    read_timeout: float = rt.READ_TIMEOUT_S,
    std_logs: bool = False,
) -> str:
    """The nginx.conf of `stage`. `std_logs`: logs to stdout/stderr instead of files
    under the prefix (containers: the prefix then only holds the pid and temp folders,
    and can be an empty writable folder such as /tmp)."""
    tbl = rt.table(stage)
    command = f"python -m gateway.render --stage {stage}"
    # >>> stage 2: the parallel run (nginx mirror), its shadow's answers logged
    if shadow:
        tbl = rt.parallel_run(stage)
        command += " --shadow"
    shadow_log = "/dev/stdout" if std_logs else "shadow.log"
    # <<< stage 2
    error_log, access_log = ("stderr", "/dev/stdout") if std_logs else ("error.log", "access.log")
    common = PROXY_COMMON.format(connect=int(connect_timeout * 1000), read=int(read_timeout * 1000))
    ui_root = str(rt.ui_dir(env))  # [stage 4]
    out: list[str] = []
    out.append(
        f"# Rendered by `{command}` from gateway/routes.py. Do not edit.\n"
        f"# Stage {stage} ({tbl.stage.name}).\n"
        f"# Run: nginx -p DIR -c THIS_FILE  (pid, temp{'' if std_logs else ', logs'} under DIR)\n"
        "worker_processes 1;\n"
        "daemon off;\n"
        "pid nginx.pid;\n"
        f"error_log {error_log} warn;\n"
        "events { worker_connections 512; }\n"
        "\n"
        "http {\n"
        "    client_body_temp_path tmp_client_body;\n"
        "    proxy_temp_path tmp_proxy;\n"
        "    fastcgi_temp_path tmp_fastcgi;\n"
        "    uwsgi_temp_path tmp_uwsgi;\n"
        "    scgi_temp_path tmp_scgi;\n"
    )
    # >>> stage 4: the media types of the UI files
    out.append(
        "    types {\n"
        "        text/html html;\n"
        "        text/css css;\n"
        "        text/javascript js;\n"
        "        image/svg+xml svg;\n"
        "        image/x-icon ico;\n"
        "        image/png png;\n"
        "        application/json json map;\n"
        "        application/manifest+json webmanifest;\n"
        "        text/plain txt;\n"
        "    }\n"
    )
    # <<< stage 4
    out.append(
        "    default_type application/octet-stream;\n"
        "    server_tokens off;\n"
        "    sendfile on;\n"
        "    keepalive_timeout 30s;\n"
        "\n"
        "    # X-Request-ID: the client's when sane, else nginx's own $request_id.\n"
        "    map $http_x_request_id $gw_request_id {\n"
        f'        "~{rt.SANE_REQUEST_ID}" $http_x_request_id;\n'
        "        default $request_id;\n"
        "    }\n"
        "    log_format gw_main '$remote_addr [$time_local] \"$request\" $status '\n"
        "                       'up=$upstream_addr up_status=$upstream_status '\n"
        "                       'rt=$request_time rid=$gw_request_id';\n"
    )
    # >>> stage 2: the log of the parallel run's copies
    out.append(
        "    log_format gw_shadow 'shadow rid=$gw_request_id \"$request\" '\n"
        "                         'up=$upstream_addr up_status=$upstream_status '\n"
        "                         'rt=$upstream_response_time';\n"
    )
    # <<< stage 2
    out.append(f"    access_log {access_log} gw_main;\n\n")
    for name in tbl.upstreams():
        host, port = rt.upstream_hostport(name, env)
        out.append(
            f"    upstream gw_{name} {{\n"
            f"        server {host}:{port} max_fails=0;\n"
            "        keepalive 16;\n"
            "    }\n"
        )
    out.append(
        "\n    server {\n"
        f"        listen {listen};\n"
        "        server_name _;\n"
        "        client_max_body_size 1m;\n"
        "        # Bodies up to the limit (chunked ones too) stay in memory: no temp files.\n"
        "        client_body_buffer_size 1040k;\n"
        "        absolute_redirect off;\n"
        "        merge_slashes off;\n"
        "        set $gw_upstream none;  # read by the 503/504 pages\n"
        "\n"
        "        # nginx's own error pages are HTML: answer JSON instead.\n"
    )
    for code in (400, 404, 405, 413):
        out.append(f"        error_page {code} = @gw_{code};\n")
    out.append("        error_page 500 502 503 = @gw_503;\n")
    out.append("        error_page 504 = @gw_504;\n\n")
    server_body: list[str] = []
    for code, detail in ERRORS.items():
        body = {"detail": detail}
        if code in (503, 504):
            server_body.append(
                f"    location @gw_{code} {{\n"
                + _gateway_headers()
                + f'        return {code} \'{{"detail":"{detail}","upstream":"$gw_upstream"}}\';\n'
                "    }\n"
            )
        else:
            server_body.append(
                f"    location @gw_{code} {{\n"
                + _gateway_headers()
                + f"        return {code} {_json(body)};\n"
                "    }\n"
            )
    mirrored: set[str] = set()  # [stage 2]
    for group in tbl.groups:
        ups = {r.upstream for r in group.routes}
        if ups == {"gateway"}:
            server_body.append(_own_location(group.routes[0]))
            continue
        # >>> stage 4: the UI files
        if ups == {"ui"}:
            server_body.append(_ui_location(group, ui_root))
            continue
        # <<< stage 4
        head = _location_head(group.match, group.pattern)
        server_body.append(_proxy_location(head, group, tbl.default, common))
        # >>> stage 2: one mirror location per new owner
        if group.shadow and group.shadow.shadow not in mirrored:
            mirrored.add(group.shadow.shadow)
            server_body.append(_mirror_location(group.shadow, common, shadow_log))
        # <<< stage 2
    if tbl.default:
        server_body.append(_proxy_location("location /", None, tbl.default, common))
    else:
        server_body.append("    location / {\n        return 404;\n    }\n")
    for block in server_body:
        out.append("\n".join(("    " + ln if ln else ln) for ln in block.split("\n")))
    out.append("    }\n}\n")
    return "".join(out)


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
    parser.add_argument(
        "--read-timeout", type=float, default=rt.READ_TIMEOUT_S, help="seconds (default 10)"
    )
    args = parser.parse_args(argv)
    rt.validate()
    try:
        text = render(
            args.stage,
            listen=args.listen,
            shadow=args.shadow,  # [stage 2]
            read_timeout=args.read_timeout,
            std_logs=args.std_logs,
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
