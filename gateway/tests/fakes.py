"""Test helpers: fake upstreams (stdlib HTTP servers on free ports), a real
nginx runner and the dev router in a thread (ports, processes and deadlines
from blogtest)."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from blogtest.http import InThread, StubServer
from blogtest.ports import free_port
from blogtest.processes import stop, tcp_ready
from blogtest.timing import wait_until
from gateway import devrouter, render


def port_open(port: int) -> bool:
    return tcp_ready(port)()


NGINX = os.environ.get("NGINX_BIN") or shutil.which("nginx") or "/usr/sbin/nginx"


STREAM_LINES = 2000
# How long /hold/ holds its answer: more than the reads' timeout, less than the writes'.
HOLD_S = 3.0


def nginx_available() -> bool:
    return Path(NGINX).is_file() and os.access(NGINX, os.X_OK)


class FakeUpstream:
    """Answers every request with JSON describing what it received, with its
    own X-Served-By and the X-Request-ID it got; a few special paths (in
    ``_answer``) answer otherwise."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if "/stream/" in self.path:  # a chunked answer of unknown length
                    self._stream()
                    return
                info = {
                    "served_by": fake.name,
                    "method": self.command,
                    "path": self.path,
                    "host": self.headers.get("Host"),
                    "request_id": self.headers.get("X-Request-ID"),
                    "xff": self.headers.get("X-Forwarded-For"),
                    "proto": self.headers.get("X-Forwarded-Proto"),
                    "protos": self.headers.get_all("X-Forwarded-Proto") or [],
                    "shadow": self.headers.get("X-Gateway-Shadow"),  # [stage 2]
                    "body_len": len(body),
                }
                with fake.lock:
                    fake.seen.append(info)
                status = 201 if self.command == "POST" else 200
                payload: dict[str, Any] = info
                if "/fail503/" in self.path:  # its own JSON 503
                    status, payload = 503, {"detail": f"{fake.name} says: database down"}
                elif "/slow/" in self.path:  # a hung upstream: the answer held up to 10 s
                    fake.release.wait(10)
                elif "/hold/" in self.path:  # a slow one: the answer held HOLD_S
                    fake.release.wait(HOLD_S)
                # >>> stage 2: for the parallel run's comparisons
                elif "/same/" in self.path:  # a body identical across fakes
                    payload = {"same": True, "path": self.path}
                elif f"/404-in-{fake.name}/" in self.path:  # a 404 from the fake NAME only
                    status, payload = 404, {"detail": "Not found."}
                # <<< stage 2
                data = json.dumps(payload).encode()
                try:
                    self._send(status, data)
                except OSError:  # the gateway gave up (read timeout)
                    self.close_connection = True

            def _stream(self) -> None:
                """A chunked answer of unknown length, sent in pieces."""
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("X-Served-By", fake.name)
                self.end_headers()
                for i in range(STREAM_LINES):
                    line = json.dumps({"line": i}).encode() + b"\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Served-By", fake.name)
                self.send_header("X-Request-ID", self.headers.get("X-Request-ID") or "none")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

        self.stub = StubServer(Handler)
        self.port, self.url = self.stub.port, self.stub.url

    def requests_seen(self, **match: Any) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.seen if all(r.get(k) == v for k, v in match.items())]

    def stop(self) -> None:
        self.release.set()
        self.stub.stop()


class NginxGateway:
    """Real nginx running a rendered config under its own prefix folder."""

    def __init__(self, folder: Path, stage: int, env: dict[str, str], **options: Any) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = folder / "nginx.conf"
        conf.write_text(
            render.render(
                stage,
                listen=f"127.0.0.1:{self.port}",
                env=env,
                user=getpass.getuser(),  # reads the checkout, wherever it is
                **options,
            ),
            encoding="utf-8",
        )
        self.log = (folder / "stderr.log").open("wb")
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(folder), "-c", str(conf)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: self.proc.poll() is not None or port_open(self.port), timeout_s=10)
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited: {self.errors()}")
        except BaseException:
            self.stop()
            raise

    def errors(self) -> str:
        parts = []
        for name in ("stderr.log", "error.log"):
            path = self.folder / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def stop(self) -> None:
        stop(self.proc, timeout_s=5)
        self.log.close()


class DevRouterGateway:
    """The dev router, in a thread of the test process."""

    def __init__(self, folder: Path, stage: int, env: dict[str, str], **options: Any) -> None:
        self.served = InThread(devrouter.make_server(stage, "127.0.0.1:0", env=env, **options))
        self.server, self.port, self.url = self.served.server, self.served.port, self.served.url

    def stop(self) -> None:
        self.served.stop()


IMPLEMENTATIONS = {"nginx": NginxGateway, "devrouter": DevRouterGateway}
