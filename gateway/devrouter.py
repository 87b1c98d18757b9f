"""The dev router: the gateway's route table served in pure Python, for the
embedded profile where there is no nginx.

    python -m gateway.devrouter --stage 1 --listen 127.0.0.1:8080 [--quiet]

Same behaviour as the rendered nginx.conf (gateway/render.py): same routes,
``Host`` passed as sent (port kept), ``X-Forwarded-For/Host``,
``X-Forwarded-Proto`` the edge's when exactly ``http`` or ``https`` (else
``http``: the router itself speaks plain HTTP),
``X-Request-ID`` echoed when sane else generated, upstream ``X-Served-By``
passed through, JSON 404/405/413/503/504 answered by the gateway with
``X-Served-By: gateway``, the same upstream timeouts (1 s to connect, then
2 s for a read's answer, 5 s for a write's: ``routes.upstream_timeout``),
responses streamed, no redirects.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import routes as rt
from .shadow import SHADOW_METHODS, SHADOW_PATH, ParallelRun  # [stage 2]

logger = logging.getLogger("gateway.devrouter")

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
}
# Request headers the router sets itself.
REPLACED_REQUEST = {"host", "content-length", "x-request-id", "x-forwarded-proto", "expect"}
CHUNK = 64 * 1024
DRAIN_LIMIT = 8 * 1024 * 1024  # read and drop an oversized body up to this, then 413
# >>> stage 4: the media types of the UI files
CONTENT_TYPES = {
    "html": "text/html",
    "css": "text/css",
    "js": "text/javascript",
    "svg": "image/svg+xml",
    "ico": "image/x-icon",
    "png": "image/png",
    "json": "application/json",
    "map": "application/json",
    "webmanifest": "application/manifest+json",
    "txt": "text/plain",
}
# <<< stage 4
_SANE = re.compile(rt.SANE_REQUEST_ID)
# X-Forwarded-Proto values passed on as the edge sent them (nginx: the same map).
FORWARDED_PROTOS = frozenset({"http", "https"})
_DIGITS = re.compile(r"[0-9]{1,18}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
# How long the router waits on a client (each read), and how many it serves at once.
CLIENT_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 256


class BodyTooLarge(Exception):
    pass


class BadRequest(Exception):
    pass


class Upstreams:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.addr = {name: rt.upstream_hostport(name, env) for name in rt.HTTP_UPSTREAMS}
        self.ui_dir = rt.ui_dir(env)  # [stage 4]


class RouterServer(ThreadingHTTPServer):
    """One thread per connection, up to ``max_connections`` at once: past
    that, a connection gets a JSON 503 and is closed, rather than a thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        stage: int,
        *,
        shadow: bool = False,  # [stage 2]
        env: dict[str, str] | None = None,
        connect_timeout: float = rt.CONNECT_TIMEOUT_S,
        read_timeout: float = rt.READ_TIMEOUT_S,
        write_timeout: float = rt.WRITE_TIMEOUT_S,
        client_timeout: float = CLIENT_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.table = rt.table(stage)
        # >>> stage 2: the parallel run (gateway/shadow.py)
        if shadow:
            self.table = rt.parallel_run(stage)
        self.parallel_run = ParallelRun()
        # <<< stage 2
        self.upstreams = Upstreams(env)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.client_timeout = client_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, Handler)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            _refuse(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def _refuse(request) -> None:
    body = b'{"detail": "Too many connections."}'
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Served-By: gateway\r\nConnection: close\r\n\r\n"
    )
    with contextlib.suppress(OSError):
        request.sendall(head.encode() + body)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; without TCP_NODELAY, Nagle's
    # algorithm meets the client's delayed ACK and each response waits ~40 ms.
    disable_nagle_algorithm = True
    server: RouterServer
    server_version = "gateway-devrouter"

    # -- plumbing -----------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)

    def send_response_only(self, code: int, message: str | None = None) -> None:
        logger.info(
            '%s "%s" %s up=%s rid=%s',
            self.address_string(),
            getattr(self, "requestline", ""),
            code,
            getattr(self, "upstream_name", "none"),
            getattr(self, "request_id", "-"),
        )
        super().send_response_only(code, message)

    def setup(self) -> None:
        # Every read from the client (request line, headers, body, the next
        # request of a kept-alive connection) waits at most this long.
        self.timeout = self.server.client_timeout
        super().setup()

    def parse_request(self) -> bool:
        """A request line longer than nginx's buffer (and the apps' gunicorn)
        takes is a JSON 414 here, as at nginx, not a 414 page further on."""
        if len(self.raw_requestline) > rt.MAX_REQUEST_LINE_BYTES:
            self.requestline, self.request_version, self.command = "", "", ""
            self.send_error(414, "Request line too long (limit 8 KB).")
            return False
        return super().parse_request()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own errors (bad request line, unknown method, ...) in
        JSON too, never its HTML page. A method nothing answers is a 405, as
        the apps answer it."""
        if not hasattr(self, "request_id"):
            self.request_id = self._request_id()
        if code == 501:  # "Unsupported method": no do_<METHOD>
            code, message = 405, "Method not allowed."
        phrase = self.responses.get(code, ("Error",))[0]
        self._send_json(code, {"detail": message or phrase}, close=True)

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue`` with a body over the limit: 413 at once,
        before the client sends the body (nginx does the same)."""
        try:
            too_large = int(self.headers.get("Content-Length") or 0) > rt.MAX_BODY_BYTES
        except ValueError:
            too_large = False
        if too_large:
            self.request_id = self._request_id()
            self._send_json(413, {"detail": "Request body too large (limit 1 MB)."}, close=True)
            return False
        return super().handle_expect_100()

    def _dispatch(self) -> None:
        self.request_id = self._request_id()
        self.upstream_name = "none"
        try:
            self._route()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

    def _request_id(self) -> str:
        headers = getattr(self, "headers", None)
        incoming = headers.get("X-Request-ID") if headers is not None else None
        if incoming and _SANE.fullmatch(incoming):
            return incoming
        return uuid.uuid4().hex

    def _send_json(self, status: int, body: dict[str, Any], *, close: bool = False) -> None:
        data = json.dumps(body).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Date", self.date_time_string())
        self.send_header("X-Served-By", "gateway")
        self.send_header("X-Request-ID", self.request_id)
        self.send_header("Cache-Control", "no-store")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(data)

    def _read_body(self) -> bytes | None:
        lengths = self.headers.get_all("Content-Length") or []
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            if lengths:  # RFC 9112 6.3: both is how requests are smuggled
                raise BadRequest("Both Transfer-Encoding and Content-Length.")
            return self._read_chunked()
        if not lengths:
            return None
        if len(set(lengths)) > 1 or not all(_DIGITS.fullmatch(v.strip()) for v in lengths):
            raise BadRequest("Invalid Content-Length.")
        n = int(lengths[0])
        if n > rt.MAX_BODY_BYTES:
            if n <= DRAIN_LIMIT:  # let the client finish sending, so it reads the 413
                remaining = n
                while remaining > 0:
                    got = self.rfile.read(min(CHUNK, remaining))
                    if not got:
                        break
                    remaining -= len(got)
            raise BodyTooLarge
        return self.rfile.read(n)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            digits = line.split(b";")[0].strip()
            if not _HEX.fullmatch(digits):  # no sign, no 0x, no _: RFC 9112 7.1
                raise BadRequest("Invalid chunked body.")
            size = int(digits, 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > rt.MAX_BODY_BYTES:
                raise BodyTooLarge
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    # -- routing ------------------------------------------------------------

    def _route(self) -> None:
        # Routes are matched as nginx matches them (the upstream gets the path as sent).
        path = rt.normalised_path(self.path.split("?", 1)[0])
        # >>> stage 2: the parallel run's counts, the gateway's own
        if path == SHADOW_PATH:
            self._discard_body()
            self._shadow_counts()
            return
        # <<< stage 2
        upstream, group = self.server.table.resolve(self.command, path)
        if upstream is None:
            self._discard_body()
            if group is None:
                self._send_json(404, {"detail": "No route for this path."})
            else:
                self._send_json(405, {"detail": "Method not allowed on this route."})
            return
        if upstream == "gateway":
            self._discard_body()
            self._own(path)
            return
        # >>> stage 4: the UI files
        if upstream == "ui":
            self._discard_body()
            self._serve_ui(path)
            return
        # <<< stage 4
        self.upstream_name = upstream
        try:
            body = self._read_body()
        except BodyTooLarge:
            self._send_json(413, {"detail": "Request body too large (limit 1 MB)."}, close=True)
            return
        except BadRequest as exc:
            self._send_json(400, {"detail": str(exc)}, close=True)
            return
        # >>> stage 2: a shadowed read goes to both sides (gateway/shadow.py)
        shadow = self.server.table.shadow_for(self.command, path)
        if shadow:
            self.server.parallel_run.proxy(self, upstream, shadow, body)
            return
        # <<< stage 2
        self._proxy(upstream, body)

    # >>> stage 2: the parallel run's counts
    def _shadow_counts(self) -> None:
        """The counts in shadow mode only: otherwise a JSON 404, as for any
        path without a route (the last mismatches, paths and bodies of
        requests included, are for whoever runs the parallel run)."""
        if not self.server.table.shadow_mode:
            self._send_json(404, {"detail": "No route for this path."})
        elif self.command not in SHADOW_METHODS:
            self._send_json(405, {"detail": "Method not allowed on this route."})
        else:
            self._send_json(200, self.server.parallel_run.counts(self.server.table))

    # <<< stage 2
    def _discard_body(self) -> None:
        try:
            self._read_body()
        except (BodyTooLarge, BadRequest):
            self.close_connection = True

    def _own(self, path: str) -> None:
        if re.search(rt.INTERNAL, path):
            self._send_json(404, {"detail": "Not found."})
            return
        if path == "/readyz":
            checks = {name: self._probe(name) for name in self.server.table.upstreams()}
            failed = sorted(name for name, result in checks.items() if result != "ok")
            if failed:
                detail = f"Not ready: {', '.join(failed)} unavailable."
                body = {"status": "unavailable", "detail": detail, "checks": checks}
                self._send_json(503, body)
            else:
                self._send_json(200, {"status": "ok", "checks": checks})
            return
        self._send_json(200, {"status": "ok"})

    def _probe(self, name: str) -> str:
        host, port = self.server.upstreams.addr[name]
        conn = http.client.HTTPConnection(host, port, timeout=self.server.connect_timeout)
        try:
            conn.request("GET", "/healthz", headers={"X-Request-ID": self.request_id})
            status = conn.getresponse().status
        except OSError as exc:
            return f"unavailable: {type(exc).__name__}"
        finally:
            conn.close()
        return "ok" if status == 200 else f"unavailable: HTTP {status}"

    # >>> stage 4: the UI files
    def _serve_ui(self, path: str) -> None:
        root = self.server.upstreams.ui_dir
        rel = "index.html" if path.endswith("/") else path.lstrip("/")
        target = (root / rel).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(root) or not target.is_file():
            self._send_json(404, {"detail": "No route for this path."})
            return
        ext = target.suffix.lstrip(".").lower()
        size = target.stat().st_size
        self.send_response_only(200)
        self.send_header("Content-Type", CONTENT_TYPES.get(ext, "application/octet-stream"))
        self.send_header("Content-Length", str(size))
        self.send_header("Date", self.date_time_string())
        self.send_header("X-Served-By", "gateway")
        self.send_header("X-Request-ID", self.request_id)
        self.end_headers()
        if self.command != "HEAD":
            with target.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    self.wfile.write(chunk)

    # <<< stage 4

    # -- proxying -----------------------------------------------------------

    def _upstream_headers(self, body: bytes | None) -> list[tuple[str, str]]:
        named_in_connection = {
            h.strip().lower() for h in (self.headers.get("Connection") or "").split(",")
        }
        out: list[tuple[str, str]] = []
        xff = None
        for key, value in self.headers.items():
            low = key.lower()
            if low in HOP_BY_HOP or low in named_in_connection or low in REPLACED_REQUEST:
                continue
            if low == "x-forwarded-for":
                xff = value if xff is None else f"{xff}, {value}"
                continue
            out.append((key, value))
        client = self.client_address[0]
        host = self.headers.get("Host") or f"{self.server.server_address[0]}"
        out += [
            ("Host", host),
            ("X-Forwarded-For", f"{xff}, {client}" if xff else client),
            ("X-Forwarded-Proto", self._forwarded_proto()),
            ("X-Request-ID", self.request_id),
            ("Connection", "close"),
        ]
        if "x-forwarded-host" not in {k.lower() for k, _ in out}:
            out.append(("X-Forwarded-Host", host))
        if body is not None:
            out.append(("Content-Length", str(len(body))))
        return out

    def _forwarded_proto(self) -> str:
        """The edge's X-Forwarded-Proto (the TLS-terminating Gateway/Ingress in
        front) when it sent exactly one, ``http`` or ``https``; anything else
        is replaced by the router's own scheme, ``http``. The components trust
        this header (SECURE_PROXY_SSL_HEADER), so no other value gets through."""
        sent = [value.strip(" \t") for value in self.headers.get_all("X-Forwarded-Proto") or []]
        if len(sent) == 1 and sent[0] in FORWARDED_PROTOS:
            return sent[0]
        return "http"

    def open_upstream(
        self, upstream: str, body: bytes | None, extra: list[tuple[str, str]] | None = None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send the request upstream; raise ConnectionError (-> 503) or
        TimeoutError (-> 504)."""
        host, port = self.server.upstreams.addr[upstream]
        conn = http.client.HTTPConnection(host, port, timeout=self.server.connect_timeout)
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            raise ConnectionError(str(exc)) from exc
        assert conn.sock is not None  # noqa: S101 (connect() set it)
        conn.sock.settimeout(
            rt.upstream_timeout(
                self.command, read=self.server.read_timeout, write=self.server.write_timeout
            )
        )
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for key, value in self._upstream_headers(body) + (extra or []):
                conn.putheader(key, value)
            conn.endheaders(body)
            return conn, conn.getresponse()
        except TimeoutError as exc:
            conn.close()
            raise TimeoutError(str(exc)) from exc
        except OSError as exc:  # reset, refused mid-way, RemoteDisconnected, ...
            conn.close()
            raise ConnectionError(str(exc)) from exc
        except http.client.HTTPException as exc:
            conn.close()
            raise ConnectionError(str(exc)) from exc

    def upstream_error(self, exc: Exception) -> None:
        up = self.upstream_name
        if isinstance(exc, TimeoutError):
            self._send_json(504, {"detail": "Upstream timed out.", "upstream": up})
        else:
            self._send_json(503, {"detail": "Upstream unavailable.", "upstream": up})

    def response_headers(self, resp: http.client.HTTPResponse) -> list[tuple[str, str]]:
        named = {h.strip().lower() for h in (resp.getheader("Connection") or "").split(",")}
        out = []
        for key, value in resp.getheaders():
            low = key.lower()
            if low in HOP_BY_HOP or low in named or low in ("x-request-id", "content-length"):
                continue
            out.append((key, value))
        out.append(("X-Request-ID", self.request_id))
        return out

    def _proxy(self, upstream: str, body: bytes | None) -> None:
        try:
            conn, resp = self.open_upstream(upstream, body)
        except (ConnectionError, TimeoutError) as exc:
            self.upstream_error(exc)
            return
        try:
            self.send_response_only(resp.status, resp.reason)
            for key, value in self.response_headers(resp):
                self.send_header(key, value)
            length = resp.getheader("Content-Length")
            no_body = self.command == "HEAD" or resp.status in (204, 304) or resp.status < 200
            if length is not None:
                self.send_header("Content-Length", length)
            elif not no_body:
                # Unknown length: stream until the upstream ends, then close.
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if no_body:
                return
            try:
                while chunk := resp.read1(CHUNK):
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except OSError:  # upstream died or timed out mid-body: cut the client off
                self.close_connection = True
        finally:
            conn.close()


def make_server(
    stage: int,
    listen: str = "127.0.0.1:8080",
    *,
    shadow: bool = False,  # [stage 2]
    env: dict[str, str] | None = None,
    **timeouts: float,
) -> RouterServer:
    host, _, port = listen.rpartition(":")
    return RouterServer(
        (host or "127.0.0.1", int(port)),
        stage,
        shadow=shadow,  # [stage 2]
        env=env,
        **timeouts,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the gateway route table (no nginx).")
    parser.add_argument("--stage", type=int, default=int(os.environ.get("STAGE", "1")))
    parser.add_argument("--listen", default=os.environ.get("GATEWAY_LISTEN", "127.0.0.1:8080"))
    # >>> stage 2: the parallel run
    parser.add_argument("--shadow", action="store_true", help="parallel run of shadowed reads")
    # <<< stage 2
    parser.add_argument("--quiet", action="store_true", help="no access log lines")
    rt.add_timeout_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    rt.validate()
    try:
        server = make_server(
            args.stage,
            args.listen,
            shadow=args.shadow,  # [stage 2]
            read_timeout=args.read_timeout,
            write_timeout=args.write_timeout,
        )
    except ValueError as exc:
        parser.error(str(exc))
    host, port = server.server_address[:2]
    serving = f"stage {args.stage}"
    serving += " (shadow mode)" if args.shadow else ""  # [stage 2]
    logger.warning("gateway dev router: %s on http://%s:%s/", serving, host, port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
