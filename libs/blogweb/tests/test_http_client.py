"""blogweb.http.call_service against a real local HTTP server and a dead
port: bounded, retried once, the request id forwarded, 503-worthy failures
raised as DependencyUnavailable."""

import time

import pytest

from blogtest.http import JsonHandler, serving
from blogtest.ports import free_port
from blogweb.exceptions import DependencyUnavailable
from blogweb.http import call_service
from blogweb.requestid import current_request_id


class Recorder(JsonHandler):
    seen: list[tuple[str, str | None]] = []

    def do_GET(self):
        Recorder.seen.append((self.path, self.headers.get("X-Request-ID")))
        status = {"/ok": 200, "/missing": 404, "/broken": 500}.get(self.path, 404)
        if self.path == "/slow":
            time.sleep(2)
            status = 200
        self.reply(status, {"ok": True})


@pytest.fixture(scope="module")
def server():
    with serving(Recorder) as url:
        yield url


@pytest.fixture(autouse=True)
def fresh_record():
    Recorder.seen.clear()


def test_2xx_and_4xx_are_returned_with_the_request_id_forwarded(server):
    token = current_request_id.set("req-abc-1")
    try:
        assert call_service("posts", "GET", f"{server}/ok").status_code == 200
        assert call_service("posts", "GET", f"{server}/missing").status_code == 404
    finally:
        current_request_id.reset(token)
    assert Recorder.seen == [("/ok", "req-abc-1"), ("/missing", "req-abc-1")]


def test_a_5xx_is_retried_once_then_unavailable(server):
    with pytest.raises(DependencyUnavailable) as raised:
        call_service("comments", "GET", f"{server}/broken")
    assert raised.value.dependency == "comments"
    assert [path for path, _ in Recorder.seen] == ["/broken", "/broken"]


def test_a_timeout_is_bounded(server):
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable):
        call_service("posts", "GET", f"{server}/slow", timeout=0.3, retries=1)
    assert time.monotonic() - started < 1.5


def test_a_dead_port_is_unavailable_fast():
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable):
        call_service("posts", "GET", f"http://127.0.0.1:{free_port()}/x")
    assert time.monotonic() - started < 1.5
