"""A tiny stand-in for the comments service's internal routes: a stdlib HTTP
server on a free port that records every request it gets. The posts service
is tested against real HTTP, not a mocked client."""

from __future__ import annotations

import json
import re
import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from blogtest.http import JsonHandler, StubServer
from blogtest.ports import free_port

COUNTS_PATH = "/internal/comment-counts/"
POST_COMMENTS = re.compile(r"^/internal/posts/(?P<post_id>[^/]+)/comments/$")


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    request_line: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    json: object = None


@dataclass
class FakeCommentsService:
    """What the fake answers is set by the test: ``counts`` (post id -> n),
    or ``status``/``raw_body`` to misbehave."""

    url: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    status: int | None = None
    raw_body: bytes | None = None
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.counts = {}
            self.status = None
            self.raw_body = None
            self.requests = []

    def calls(self, method: str, path_prefix: str = "") -> list[Recorded]:
        with self.lock:
            return [
                r for r in self.requests if r.method == method and r.path.startswith(path_prefix)
            ]

    def count_calls(self) -> list[Recorded]:
        return self.calls("POST", COUNTS_PATH)


def start(service: FakeCommentsService) -> StubServer:
    class Handler(JsonHandler):
        def do_GET(self):
            self._answer()

        def do_DELETE(self):
            self._answer()

        def do_POST(self):
            self._answer()

        def _answer(self):
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            recorded = Recorded(
                method=self.command,
                path=parts.path,
                request_line=self.requestline,
                query=parse_qs(parts.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                json=json.loads(raw) if raw else None,
            )
            with service.lock:
                service.requests.append(recorded)
                status, body = service.status, service.raw_body
                counts = dict(service.counts)
            if status is None:
                status, body = _route(recorded, counts)
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body is not None:
                self.wfile.write(body)

    stub = StubServer(Handler)
    service.url = stub.url
    return stub


def _route(request: Recorded, counts: dict[str, int]) -> tuple[int, bytes | None]:
    if request.method == "POST" and request.path == COUNTS_PATH:
        ids = (request.json or {}).get("post_ids", [])
        answer = {"counts": {post_id: counts[post_id] for post_id in ids if post_id in counts}}
        return 200, json.dumps(answer).encode()
    if request.method == "DELETE" and POST_COMMENTS.match(request.path):
        return 204, None
    return 404, b'{"detail": "Not found."}'


def dead_url() -> str:
    """The address of a port nobody listens on: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


def hung_listener() -> socket.socket:
    """A socket that accepts connections (the kernel does) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock
