"""Stand-ins for another component's HTTP routes: a stdlib server on a free
loopback port, serving in a thread of the test process, answering what the
test's handler class says (real HTTP, no mocked client)."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JsonHandler(BaseHTTPRequestHandler):
    """A handler that answers JSON and logs nothing."""

    def reply(self, status: int, payload: object = None) -> None:
        """``payload`` as JSON (no body for None)."""
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_json(self) -> object:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")

    def log_message(self, *args) -> None:
        pass


class InThread:
    """``server`` (any socketserver) serving in a daemon thread of the test
    process until ``stop()``; ``url`` and ``port`` say where."""

    def __init__(self, server: socketserver.BaseServer) -> None:
        self.server = server
        self.port = server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class StubServer(InThread):
    """``handler`` served on a free loopback port until ``stop()``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        super().__init__(server)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A StubServer for the block; yields its base URL."""
    stub = StubServer(handler)
    try:
        yield stub.url
    finally:
        stub.stop()
