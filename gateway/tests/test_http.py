"""Both gateways (real nginx with a rendered config, and the dev router) in
front of fake upstreams: same routing, headers and JSON errors."""

from __future__ import annotations

import http.client
import json
import logging  # [stage 2]
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest
import requests

from blogtest.ports import free_port
from blogtest.timing import scaled, wait_until
from gateway import routes as rt
from gateway import shadowlog  # [stage 2]

from .conftest import FACADE_STAGES, GATEWAY_STAGES, KINDS
from .fakes import (
    HOLD_S,
    STREAM_LINES,
    NginxGateway,  # [stage 4]
    port_open,
)

PID = "0b1f6c1e-8a4e-4b8e-9f3a-1c2d3e4f5a6b"
TIMEOUT = 5
pytestmark = pytest.mark.timeout(60)
SANE = re.compile(rt.SANE_REQUEST_ID)
NEWEST = max(rt.STAGES)


def rid() -> str:
    return f"test-{uuid.uuid4()}"


def assert_gateway_json(resp: requests.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers["X-Served-By"] == "gateway"
    assert SANE.fullmatch(resp.headers["X-Request-ID"])
    body = resp.json()
    assert "detail" in body or "status" in body
    return body


# >>> stage 2: the comment routes at the comments service
@pytest.mark.parametrize(
    ("method", "path", "owner"),
    [
        ("GET", "/api/posts/", "monolith"),
        ("POST", "/api/posts/", "monolith"),
        ("GET", f"/api/posts/{PID}/", "monolith"),
        ("DELETE", f"/api/posts/{PID}/", "monolith"),
        ("GET", f"/api/posts/{PID}/comments/", "comments"),
        ("POST", f"/api/posts/{PID}/comments/", "comments"),
        ("POST", f"/api/posts/{PID}/comments", "comments"),
        ("GET", "/api/posts/not-a-uuid/comments/", "comments"),
        ("DELETE", f"/api/posts/{PID}/comments/", "monolith"),
        ("GET", "/api/schema/", "monolith"),
        ("GET", "/", "monolith"),
    ],
)
def test_stage_2_routes_each_request_to_its_owner(gw2, method, path, owner):
    request_id = rid()
    resp = requests.request(
        method,
        gw2.url + path,
        json={"body": "x"},
        headers={"X-Request-ID": request_id},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    assert resp.status_code in (200, 201)
    assert resp.headers["X-Served-By"] == owner  # the upstream's header, passed through
    seen = resp.json()
    assert seen["served_by"] == owner
    assert seen["method"] == method
    assert seen["path"] == path  # proxied as sent: no redirect, no rewrite
    # <<< stage 2


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/posts/"),
        ("POST", "/api/posts/"),
        ("GET", f"/api/posts/{PID}/"),
        ("DELETE", f"/api/posts/{PID}/"),
        ("GET", f"/api/posts/{PID}/comments/"),
        ("POST", f"/api/posts/{PID}/comments"),
        ("GET", "/api/schema/"),
        ("GET", "/"),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_stage_1_sends_everything_to_the_monolith(gateways, kind, method, path):
    gw1 = gateways(kind, 1)
    resp = requests.request(
        method, gw1.url + path, json={"body": "x"}, timeout=TIMEOUT, allow_redirects=False
    )
    assert resp.status_code in (200, 201)
    assert resp.headers["X-Served-By"] == "monolith"  # the upstream's header, passed through
    seen = resp.json()
    assert (seen["served_by"], seen["method"], seen["path"]) == ("monolith", method, path)


def test_healthz_and_readyz_are_the_gateways(gw):
    for path in ("/healthz", "/readyz"):
        body = assert_gateway_json(requests.get(gw.url + path, timeout=TIMEOUT), 200)
        assert body["status"] == "ok"


INTERNAL_PATHS = [
    "/internal/posts/4b0c8a37-6f39-4c55-9d0a-d5d3b6a6a111/",
    "/internal/comment-counts/",
    # Other spellings of the same path, sent as they are (no client normalises them):
    "//internal/posts/4b0c8a37-6f39-4c55-9d0a-d5d3b6a6a111/",
    "///internal/comment-counts/",
    "/./internal/comment-counts/",
    "/api/../internal/comment-counts/",
    "/%69nternal/comment-counts/",
    "/internal%2fcomment-counts/",
    "/%2Finternal/comment-counts/",
]


@pytest.mark.parametrize("path", INTERNAL_PATHS)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("stage", GATEWAY_STAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_internal_routes_are_never_forwarded(gateways, fakes, kind, stage, path, method):
    # Where there is a default route, it would reach the monolith; the
    # /internal/ routes of the apps behind the gateway are for each other,
    # not for clients, however the path is spelt.
    gateway = gateways(kind, stage)
    request_id = f"internal-{uuid.uuid4().hex}"
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=TIMEOUT)
    try:
        connection.request(method, path, headers={"X-Request-ID": request_id})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 404, (path, response.status, body[:200])
    assert response.getheader("Content-Type", "").startswith("application/json")
    assert response.getheader("X-Served-By") == "gateway"
    assert json.loads(body) == {"detail": "Not found."}
    for fake in fakes.values():
        assert not fake.requests_seen(request_id=request_id)


def test_host_keeps_the_port_and_forwarded_headers_are_set(gw):
    seen = requests.get(gw.url + "/api/posts/", timeout=TIMEOUT).json()
    assert seen["host"] == f"127.0.0.1:{gw.port}"
    assert seen["proto"] == "http"
    assert seen["xff"].endswith("127.0.0.1")
    seen = requests.get(
        gw.url + "/api/posts/", headers={"Host": "blog.example:9999"}, timeout=TIMEOUT
    ).json()
    assert seen["host"] == "blog.example:9999"


@pytest.mark.parametrize(
    ("sent", "passed"),
    [
        # The edge (a TLS-terminating Gateway/Ingress) said how the client came.
        ("https", "https"),
        ("http", "http"),
        # Anything but exactly http or https: the gateway's own scheme.
        ("HTTPS", "http"),
        ("https, http", "http"),
        ("ftp", "http"),
        ("https\tjunk", "http"),
        ("", "http"),
    ],
)
def test_x_forwarded_proto_is_the_edges_when_it_is_http_or_https(gw, sent, passed):
    """The components trust X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER): the
    gateway passes the edge's value on when it is one the components
    understand, and replaces anything else with its own scheme, http."""
    seen = requests.get(
        gw.url + "/api/posts/", headers={"X-Forwarded-Proto": sent}, timeout=TIMEOUT
    ).json()
    assert seen["proto"] == passed


def test_x_forwarded_proto_reaches_the_upstream_once(gw):
    """Two from the client: the upstream still gets one, the gateway's."""
    connection = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=TIMEOUT)
    try:
        connection.putrequest("GET", "/api/posts/")
        connection.putheader("X-Forwarded-Proto", "http")
        connection.putheader("X-Forwarded-Proto", "https")
        connection.endheaders()
        response = connection.getresponse()
        seen = json.loads(response.read())
    finally:
        connection.close()
    assert seen["protos"] == ["http"]


def test_a_sane_request_id_is_echoed_and_passed_on(gw):
    request_id = rid()
    resp = requests.get(
        gw.url + f"/api/posts/{PID}/comments/",
        headers={"X-Request-ID": request_id},
        timeout=TIMEOUT,
    )
    assert resp.headers["X-Request-ID"] == request_id
    assert resp.json()["request_id"] == request_id


@pytest.mark.parametrize("bad", [None, "has spaces in it", "<script>", "-leading-dash", "x" * 200])
def test_a_missing_or_insane_request_id_is_replaced(gw, bad):
    headers = {} if bad is None else {"X-Request-ID": bad}
    resp = requests.get(gw.url + "/api/posts/", headers=headers, timeout=TIMEOUT)
    generated = resp.headers["X-Request-ID"]
    assert generated != bad
    assert SANE.fullmatch(generated)
    assert resp.json()["request_id"] == generated  # the upstream got the same one
    assert resp.raw.headers.getlist("X-Request-ID") == [generated]


def test_a_body_over_1_mb_gets_a_json_413_from_the_gateway(gw, fakes):
    request_id = rid()
    resp = requests.post(
        gw.url + "/api/posts/",
        data=b"x" * (1024 * 1024 + 1),
        headers={"Content-Type": "application/json", "X-Request-ID": request_id},
        timeout=TIMEOUT,
    )
    body = assert_gateway_json(resp, 413)
    assert "1 MB" in body["detail"]
    assert resp.headers["X-Request-ID"] == request_id
    assert not fakes["monolith"].requests_seen(request_id=request_id)


def test_a_request_line_over_the_limit_gets_a_json_414_from_the_gateway(gw, fakes):
    request_id = rid()
    target = "/api/posts/?q=" + "x" * rt.MAX_REQUEST_LINE_BYTES
    resp = requests.get(gw.url + target, headers={"X-Request-ID": request_id}, timeout=TIMEOUT)
    body = assert_gateway_json(resp, 414)
    assert "8 KB" in body["detail"]
    assert not fakes["monolith"].requests_seen(request_id=request_id)


def test_a_request_line_within_the_limit_is_proxied(gw):
    # "GET " + target + " HTTP/1.1\r\n" is the whole line.
    target = "/api/posts/?q="
    target += "x" * (rt.MAX_REQUEST_LINE_BYTES - len(f"GET {target} HTTP/1.1\r\n"))
    resp = requests.get(gw.url + target, timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text[:200]
    assert resp.headers["X-Served-By"] == "monolith"


def test_a_body_of_exactly_1_mb_is_proxied(gw):
    resp = requests.post(
        gw.url + "/api/posts/",
        data=b"x" * (1024 * 1024),
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 201
    assert resp.json()["body_len"] == 1024 * 1024


def test_post_without_trailing_slash_is_proxied_not_redirected(gw, fakes):
    request_id = rid()
    resp = requests.post(
        gw.url + "/api/posts",
        json={"title": "t", "body": "b"},
        headers={"X-Request-ID": request_id},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    assert resp.status_code == 201
    assert resp.headers["X-Served-By"] == "monolith"
    [seen] = fakes["monolith"].requests_seen(request_id=request_id)
    assert (seen["method"], seen["path"]) == ("POST", "/api/posts")
    assert seen["body_len"] > 0


def test_an_upstreams_own_error_passes_through_untouched(gw):
    resp = requests.get(gw.url + "/api/posts/fail503/", timeout=TIMEOUT)
    assert resp.status_code == 503
    assert resp.headers["X-Served-By"] == "monolith"
    assert resp.json() == {"detail": "monolith says: database down"}


@pytest.mark.parametrize("kind", KINDS)
def test_the_monolith_down_gets_a_fast_json_503(kind, start_gateway, fake_env):
    env = {**fake_env, "MONOLITH_URL": f"http://127.0.0.1:{free_port()}"}  # nobody listens
    gw = start_gateway(kind, 1, env)
    for method in ("GET", "POST", "GET"):
        started = time.monotonic()
        resp = requests.request(method, gw.url + "/api/posts/", json={"body": "x"}, timeout=TIMEOUT)
        assert time.monotonic() - started < 3
        body = assert_gateway_json(resp, 503)
        assert body["upstream"] == "monolith"
    # the gateway's own routes keep answering
    assert_gateway_json(requests.get(gw.url + "/healthz", timeout=TIMEOUT), 200)


# >>> stage 2: the comments service down
@pytest.mark.parametrize("kind", KINDS)
def test_an_upstream_down_gets_a_fast_json_503(kind, start_gateway, fake_env):
    env = {**fake_env, "COMMENTS_URL": f"http://127.0.0.1:{free_port()}"}  # nobody listens
    gw = start_gateway(kind, 2, env)
    for method in ("GET", "POST", "GET"):
        started = time.monotonic()
        resp = requests.request(
            method, gw.url + f"/api/posts/{PID}/comments/", json={"body": "x"}, timeout=TIMEOUT
        )
        assert time.monotonic() - started < 3
        body = assert_gateway_json(resp, 503)
        assert body["upstream"] == "comments"
    # the rest of the stage keeps serving
    assert requests.get(gw.url + "/api/posts/", timeout=TIMEOUT).headers["X-Served-By"] == (
        "monolith"
    )
    # <<< stage 2


@pytest.mark.parametrize("stage", FACADE_STAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_a_slow_upstream_gets_a_json_504_within_the_read_timeout(
    kind, stage, start_gateway, fake_env
):
    gw = start_gateway(kind, stage, fake_env, read_timeout=1.0)
    started = time.monotonic()
    resp = requests.get(gw.url + "/api/posts/slow/", timeout=TIMEOUT)
    assert time.monotonic() - started < 3
    body = assert_gateway_json(resp, 504)
    assert body["upstream"] == "monolith"


# -- the default upstream timeouts: short for reads, bounded for writes ----------
# Deadlines, not benchmarks: the limit plus a margin, scaled by TEST_TIME_SCALE.
MARGIN_S = 1.5


@pytest.mark.parametrize("stage", FACADE_STAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_a_hung_upstream_answers_a_read_with_a_json_504_within_the_read_timeout(
    kind, stage, gateways
):
    gw = gateways(kind, stage)  # the default timeouts
    started = time.monotonic()
    resp = requests.get(gw.url + "/api/posts/slow/", timeout=TIMEOUT + rt.WRITE_TIMEOUT_S)
    assert time.monotonic() - started < scaled(rt.READ_TIMEOUT_S + MARGIN_S)
    body = assert_gateway_json(resp, 504)
    assert body["upstream"] == "monolith"


@pytest.mark.parametrize("kind", KINDS)
def test_a_hung_upstream_answers_a_write_with_a_json_504_within_the_write_timeout(kind, gateways):
    gw = gateways(kind, 1)
    started = time.monotonic()
    resp = requests.post(
        gw.url + "/api/posts/slow/", json={"body": "x"}, timeout=TIMEOUT + rt.WRITE_TIMEOUT_S
    )
    seconds = time.monotonic() - started
    body = assert_gateway_json(resp, 504)
    assert body["upstream"] == "monolith"
    assert seconds < scaled(rt.WRITE_TIMEOUT_S + MARGIN_S)
    assert seconds >= rt.READ_TIMEOUT_S, "a write waits longer than a read"


@pytest.mark.parametrize("kind", KINDS)
def test_a_write_slower_than_a_reads_timeout_still_gets_its_answer(kind, gateways, fakes):
    assert rt.READ_TIMEOUT_S < HOLD_S < rt.WRITE_TIMEOUT_S
    gw = gateways(kind, 1)
    request_id = rid()
    held = requests.get(gw.url + "/api/posts/hold/", timeout=TIMEOUT + rt.WRITE_TIMEOUT_S)
    assert_gateway_json(held, 504)
    resp = requests.post(
        gw.url + "/api/posts/hold/",
        json={"body": "x" * 5000},
        headers={"X-Request-ID": request_id},
        timeout=TIMEOUT + rt.WRITE_TIMEOUT_S,
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["X-Served-By"] == "monolith"
    assert resp.headers["X-Request-ID"] == request_id
    seen = resp.json()
    # The write went on in its own location (nginx's @gw_write) unchanged:
    # method, path, body, request id.
    assert (seen["method"], seen["path"], seen["request_id"]) == (
        "POST",
        "/api/posts/hold/",
        request_id,
    )
    assert seen["body_len"] == len(json.dumps({"body": "x" * 5000}))


# -- streaming, chunked bodies, Expect: 100-continue, HEAD ------------------


def test_a_chunked_answer_of_unknown_length_is_streamed_through(gw):
    with requests.get(gw.url + "/api/posts/stream/", stream=True, timeout=TIMEOUT) as resp:
        assert resp.status_code == 200
        assert resp.headers["X-Served-By"] == "monolith"
        lines = [ln for ln in resp.iter_lines() if ln]
    assert len(lines) == STREAM_LINES
    assert lines[-1] == b'{"line": %d}' % (STREAM_LINES - 1)


def test_a_chunked_request_body_is_proxied_and_limited(gw):
    def pieces(total: int, size: int = 64 * 1024):
        sent = 0
        while sent < total:
            yield b"x" * min(size, total - sent)
            sent += size

    resp = requests.post(gw.url + "/api/posts/", data=pieces(100_000), timeout=TIMEOUT)
    assert resp.status_code == 201
    assert resp.json()["body_len"] == 100_000
    resp = requests.post(gw.url + "/api/posts/", data=pieces(1024 * 1024 + 1), timeout=TIMEOUT)
    assert_gateway_json(resp, 413)


def test_expect_100_continue_with_a_too_large_body_gets_413_before_the_body(gw):
    with socket.create_connection(("127.0.0.1", gw.port), timeout=TIMEOUT) as sock:
        sock.sendall(
            b"POST /api/posts/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2000000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            got = sock.recv(4096)
            assert got, head
            head += got
    status_line = head.split(b"\r\n", 1)[0]
    assert b" 413 " in status_line
    assert b"x-served-by: gateway" in head.lower()


def raw_exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        answer = b""
        while got := sock.recv(65536):
            answer += got
            if b"\r\n\r\n" in answer and b"}" in answer.split(b"\r\n\r\n", 1)[1]:
                break
    return answer


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /api/posts/ HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET /api/posts/ HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    ],
)
def test_a_malformed_request_gets_a_json_400_from_the_gateway(gw, request_bytes):
    answer = raw_exchange(gw.port, request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b" 400 " in head.split(b"\r\n", 1)[0], answer
    assert b"x-served-by: gateway" in head.lower()
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body)["detail"]


def test_head_is_proxied_without_a_body(gw):
    resp = requests.head(gw.url + f"/api/posts/{PID}/", timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.headers["X-Served-By"] == "monolith"
    assert resp.content == b""


# >>> stage 2: HEAD takes the comment routes too
def test_head_on_the_comments_route_is_proxied_without_a_body(gw2):
    resp = requests.head(gw2.url + f"/api/posts/{PID}/comments/", timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.headers["X-Served-By"] == "comments"
    assert resp.content == b""
    # <<< stage 2


# -- dev router only ---------------------------------------------------------


def test_dev_router_readyz_names_the_upstream_that_is_down(start_gateway, fake_env):
    gw = start_gateway("devrouter", 1, fake_env)
    body = assert_gateway_json(requests.get(gw.url + "/readyz", timeout=TIMEOUT), 200)
    assert body["checks"] == {"monolith": "ok"}
    env = {**fake_env, "MONOLITH_URL": f"http://127.0.0.1:{free_port()}"}
    gw = start_gateway("devrouter", 1, env)
    body = assert_gateway_json(requests.get(gw.url + "/readyz", timeout=TIMEOUT), 503)
    assert "monolith" in body["detail"]
    assert body["checks"]["monolith"].startswith("unavailable")


BODY = b'{"title": "t", "body": "b"}'


@pytest.mark.parametrize("size", [b"-40", b"+1b", b"0x1b", b"1_b", b"zz", b"", b"1" * 17])
def test_dev_router_refuses_a_malformed_chunk_size_before_buffering(
    start_gateway, fake_env, fakes, size
):
    """RFC 9112: a chunk size is hex digits only. A negative one used to read
    the rest of the stream, past the 1 MB limit."""
    gw = start_gateway("devrouter", 1, fake_env)
    rid = f"chunk-{uuid.uuid4().hex}"
    reply = raw_exchange(
        gw.port,
        b"POST /api/posts/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-Request-ID: "
        + rid.encode()
        + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        + size
        + b"\r\n"
        + BODY
        + b"\r\n0\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
    assert b'"detail"' in reply
    assert not fakes["monolith"].requests_seen(request_id=rid)


@pytest.mark.parametrize(
    "headers",
    [
        [b"Content-Length: 27", b"Content-Length: 5"],
        [b"Content-Length: 27", b"Transfer-Encoding: chunked"],
        [b"Content-Length: -27"],
        [b"Content-Length: 2 7"],
    ],
    ids=["two-lengths", "length-and-chunked", "negative", "not-a-number"],
)
def test_dev_router_refuses_an_ambiguous_body_length(start_gateway, fake_env, fakes, headers):
    gw = start_gateway("devrouter", 1, fake_env)
    rid = f"length-{uuid.uuid4().hex}"
    head = b"\r\n".join(
        [b"POST /api/posts/ HTTP/1.1", b"Host: x", b"X-Request-ID: " + rid.encode(), *headers]
    )
    reply = raw_exchange(gw.port, head + b"\r\n\r\n" + BODY)
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
    assert not fakes["monolith"].requests_seen(request_id=rid)


@pytest.mark.parametrize("method", ["TRACE", "FOO", "PROPFIND"])
def test_dev_router_answers_an_unknown_method_with_a_json_405(start_gateway, fake_env, method):
    gw = start_gateway("devrouter", 1, fake_env)
    reply = raw_exchange(gw.port, f"{method} /api/posts/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 405 "), reply[:200]
    assert b"application/json" in reply


def test_dev_router_drops_a_client_that_stops_sending(start_gateway, fake_env):
    gw = start_gateway("devrouter", 1, fake_env, client_timeout=0.5)
    with socket.create_connection(("127.0.0.1", gw.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"POST /api/posts/ HTTP/1.1\r\nHost: x\r\nContent-Length: 27\r\n\r\n{")
        started = time.monotonic()
        while sock.recv(4096):  # whatever it answers, the connection ends
            pass
        assert time.monotonic() - started < 5


def test_dev_router_serves_a_bounded_number_of_connections(start_gateway, fake_env):
    gw = start_gateway("devrouter", 1, fake_env, max_connections=2)
    idle = [socket.create_connection(("127.0.0.1", gw.port), timeout=TIMEOUT) for _ in range(2)]
    try:
        time.sleep(0.2)  # both taken by a thread, waiting for a request line
        reply = raw_exchange(gw.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 503 "), reply[:200]
        assert b"Too many connections" in reply
    finally:
        for sock in idle:
            sock.close()
    wait_until(
        lambda: raw_exchange(gw.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
            b"HTTP/1.1 200 "
        ),
        timeout_s=5,
        what="a slot free again",
    )


# >>> stage 2: the comments service among the upstreams
def test_dev_router_readyz_names_the_comments_service_when_it_is_down(start_gateway, fake_env):
    gw = start_gateway("devrouter", 2, fake_env)
    body = assert_gateway_json(requests.get(gw.url + "/readyz", timeout=TIMEOUT), 200)
    assert body["checks"] == {"monolith": "ok", "comments": "ok"}
    env = {**fake_env, "COMMENTS_URL": f"http://127.0.0.1:{free_port()}"}
    gw = start_gateway("devrouter", 2, env)
    body = assert_gateway_json(requests.get(gw.url + "/readyz", timeout=TIMEOUT), 503)
    assert "comments" in body["detail"]
    assert body["checks"]["monolith"] == "ok"
    # <<< stage 2


def test_dev_router_cli_serves_and_stops(fake_env, tmp_path):
    port = free_port()
    log = (tmp_path / "devrouter.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.devrouter",
            "--stage",
            str(NEWEST),
            "--listen",
            f"127.0.0.1:{port}",
            "--quiet",
        ],
        cwd=rt.REPO_ROOT,
        env={**os.environ, **fake_env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: proc.poll() is not None or port_open(port), timeout_s=10)
        assert proc.poll() is None, (tmp_path / "devrouter.log").read_text()
        resp = requests.get(f"http://127.0.0.1:{port}/api/posts/", timeout=TIMEOUT)
        owner, _ = rt.table(NEWEST).resolve("GET", "/api/posts/")
        assert resp.headers["X-Served-By"] == owner
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
    assert proc.returncode == 0


# >>> stage 2: the parallel run (shadow mode)


def shadow_counts(gw) -> dict:
    return requests.get(gw.url + "/_gateway/shadow", timeout=TIMEOUT).json()


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
@pytest.mark.parametrize("stage", GATEWAY_STAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_the_shadow_page_is_a_json_404_without_shadow_mode(gateways, fakes, kind, stage, method):
    """Without --shadow there is no parallel run: its page (the last
    mismatches: paths and bodies of requests) is a JSON 404 of the gateway,
    never passed on to a default upstream."""
    request_id = rid()
    resp = requests.request(
        method,
        gateways(kind, stage).url + "/_gateway/shadow",
        headers={"X-Request-ID": request_id},
        timeout=TIMEOUT,
    )
    if method == "HEAD":
        assert (resp.status_code, resp.headers["X-Served-By"]) == (404, "gateway")
    else:
        assert assert_gateway_json(resp, 404) == {"detail": "No route for this path."}
    for fake in fakes.values():
        assert not fake.requests_seen(request_id=request_id)


@pytest.mark.parametrize("kind", KINDS)
def test_the_shadow_page_answers_in_shadow_mode(kind, start_gateway, fake_env, fakes):
    gw = start_gateway(kind, 2, fake_env, shadow=True)
    resp = requests.get(gw.url + "/_gateway/shadow", timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers["X-Served-By"] == "gateway"
    body = resp.json()
    assert (body["stage"], body["shadow_mode"]) == (2, True)
    if kind == "nginx":  # no counts: where they are
        assert "gateway.shadowlog" in body["detail"]
    else:
        assert (body["matches"], body["mismatches"], body["errors"]) == (0, 0, 0)
    request_id = rid()
    resp = requests.post(
        gw.url + "/_gateway/shadow", headers={"X-Request-ID": request_id}, timeout=TIMEOUT
    )
    assert_gateway_json(resp, 405)
    for fake in fakes.values():
        assert not fake.requests_seen(request_id=request_id)


def test_dev_router_parallel_run_counts_matches_and_mismatches(start_gateway, fake_env, fakes):
    gw = start_gateway("devrouter", 2, fake_env, shadow=True)
    assert shadow_counts(gw)["matches"] == 0

    same = requests.get(gw.url + "/api/posts/same/comments/", timeout=TIMEOUT)
    assert same.headers["X-Served-By"] == "monolith"  # the old owner answers
    assert wait_until(lambda: shadow_counts(gw)["matches"] == 1, timeout_s=5)

    request_id = rid()
    differ = requests.get(
        gw.url + f"/api/posts/{PID}/comments/",
        headers={"X-Request-ID": request_id},
        timeout=TIMEOUT,
    )
    assert differ.json()["served_by"] == "monolith"
    counts = wait_until(lambda: (c := shadow_counts(gw))["mismatches"] == 1 and c, timeout_s=5)
    [mismatch] = counts["recent_mismatches"]
    assert mismatch["request_id"] == request_id
    assert (mismatch["primary"], mismatch["shadow"]) == ("monolith", "comments")
    [copy] = fakes["comments"].requests_seen(request_id=request_id)
    assert copy["shadow"] == "1"

    # writes are not shadowed: they go to the new owner only
    write_id = rid()
    resp = requests.post(
        gw.url + f"/api/posts/{PID}/comments/",
        json={"body": "b"},
        headers={"X-Request-ID": write_id},
        timeout=TIMEOUT,
    )
    assert resp.headers["X-Served-By"] == "comments"
    assert not fakes["monolith"].requests_seen(request_id=write_id)
    counts = shadow_counts(gw)
    assert (counts["matches"], counts["mismatches"], counts["errors"]) == (1, 1, 0)


def test_nginx_mirror_sends_reads_to_the_shadow_upstream(start_gateway, fake_env, fakes):
    gw = start_gateway("nginx", 2, fake_env, shadow=True)
    request_id = rid()
    resp = requests.get(
        gw.url + f"/api/posts/{PID}/comments/",
        headers={"X-Request-ID": request_id},
        timeout=TIMEOUT,
    )
    assert resp.headers["X-Served-By"] == "monolith"  # the old owner answers
    [copy] = wait_until(lambda: fakes["comments"].requests_seen(request_id=request_id), timeout_s=5)
    assert (copy["method"], copy["path"], copy["shadow"]) == (
        "GET",
        f"/api/posts/{PID}/comments/",
        "1",
    )
    assert copy["host"] == f"127.0.0.1:{gw.port}"
    # a write goes to the new owner once, and is never mirrored
    write_id = rid()
    resp = requests.post(
        gw.url + f"/api/posts/{PID}/comments/",
        json={"body": "b"},
        headers={"X-Request-ID": write_id},
        timeout=TIMEOUT,
    )
    assert resp.headers["X-Served-By"] == "comments"
    read_id = rid()
    requests.get(
        gw.url + f"/api/posts/{PID}/comments/",
        headers={"X-Request-ID": read_id},
        timeout=TIMEOUT,
    )
    wait_until(lambda: fakes["comments"].requests_seen(request_id=read_id), timeout_s=5)
    writes = fakes["comments"].requests_seen(request_id=write_id)
    assert [(w["method"], w["shadow"]) for w in writes] == [("POST", None)]
    wait_until(
        lambda: "shadow rid=" + read_id in (gw.folder / "shadow.log").read_text(), timeout_s=5
    )


def test_dev_router_logs_a_json_line_per_mismatch(start_gateway, fake_env, caplog):
    gw = start_gateway("devrouter", 2, fake_env, shadow=True)
    request_id = rid()
    with caplog.at_level(logging.WARNING, logger="gateway.devrouter"):
        requests.get(
            gw.url + f"/api/posts/{PID}/comments/?page=2",
            headers={"X-Request-ID": request_id},
            timeout=TIMEOUT,
        )
        wait_until(lambda: shadow_counts(gw)["mismatches"] == 1, timeout_s=5)
    [line] = [r.getMessage() for r in caplog.records if request_id in r.getMessage()]
    entry = json.loads(line)
    assert entry["event"] == "shadow_mismatch"
    assert entry["path"] == f"/api/posts/{PID}/comments/?page=2"
    assert (entry["primary_status"], entry["shadow_status"]) == (200, 200)


def test_dev_router_shadow_counts_an_unreachable_shadow_as_an_error(start_gateway, fake_env):
    env = {**fake_env, "COMMENTS_URL": f"http://127.0.0.1:{free_port()}"}
    gw = start_gateway("devrouter", 2, env, shadow=True)
    resp = requests.get(gw.url + f"/api/posts/{PID}/comments/", timeout=TIMEOUT)
    assert resp.headers["X-Served-By"] == "monolith"  # the client never notices
    counts = wait_until(lambda: (c := shadow_counts(gw))["errors"] == 1 and c, timeout_s=5)
    assert counts["mismatches"] == 0


def test_nginx_parallel_run_statuses_are_compared_from_the_logs(start_gateway, fake_env):
    gw = start_gateway("nginx", 2, fake_env, shadow=True)
    same, differ = rid(), rid()
    for request_id, path in ((same, "same"), (differ, "404-in-comments")):
        resp = requests.get(
            gw.url + f"/api/posts/{path}/comments/",
            headers={"X-Request-ID": request_id},
            timeout=TIMEOUT,
        )
        assert resp.status_code == 200  # the primary (monolith) answers
    result = wait_until(
        lambda: (r := shadowlog.compare(gw.folder))["compared"] == 2 and r, timeout_s=5
    )
    assert result["matches"] == 1
    [mismatch] = result["mismatched"]
    assert mismatch["request_id"] == differ
    assert (mismatch["primary_status"], mismatch["shadow_status"]) == ("200", "404")
    # <<< stage 2


# >>> stage 4: no monolith, UI files, the gateway's own 404/405


@pytest.mark.parametrize(
    ("method", "path", "owner"),
    [
        ("GET", "/api/posts/", "posts"),
        ("POST", "/api/posts", "posts"),
        ("GET", f"/api/posts/{PID}/", "posts"),
        ("DELETE", f"/api/posts/{PID}/", "posts"),
        ("GET", f"/api/posts/{PID}/comments/", "comments"),
        ("POST", f"/api/posts/{PID}/comments", "comments"),
        ("GET", "/api/schema/", "posts"),
        ("GET", "/api/docs/", "posts"),
    ],
)
def test_stage_4_routes_to_the_services(gw4, method, path, owner):
    resp = requests.request(method, gw4.url + path, timeout=TIMEOUT, allow_redirects=False)
    assert resp.headers["X-Served-By"] == owner
    assert resp.json()["path"] == path


@pytest.mark.parametrize(
    ("path", "content_type", "file"),
    [
        ("/", "text/html", "index.html"),
        ("/app.js", "text/javascript", "app.js"),
        ("/app.css", "text/css", "app.css"),
        ("/favicon.svg", "image/svg+xml", "favicon.svg"),
    ],
)
def test_stage_4_serves_the_ui_files(gw4, path, content_type, file):
    resp = requests.get(gw4.url + path, timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith(content_type)
    assert resp.headers["X-Served-By"] == "gateway"
    assert resp.content == (rt.REPO_ROOT / "web" / file).read_bytes()


@pytest.mark.parametrize("path", ["/nope", "/api/unknown/", "/missing.js", "/../pyproject.toml"])
def test_stage_4_unknown_route_gets_a_json_404(gw4, path):
    resp = requests.get(gw4.url + path, timeout=TIMEOUT)
    body = assert_gateway_json(resp, 404)
    assert body["detail"]


def test_stage_4_wrong_method_on_the_ui_gets_a_json_405(gw4):
    assert_gateway_json(requests.post(gw4.url + "/", timeout=TIMEOUT), 405)


def test_nginx_serves_a_checkout_in_a_private_folder(tmp_path, fake_env):
    """A clone under a folder of mode 700 (root's home, `mktemp -d`): nginx
    started as root runs its workers as `nobody` unless told otherwise, and
    they could not read the UI files."""
    private = tmp_path / "private"
    web = private / "web"
    web.mkdir(parents=True)
    private.chmod(0o700)
    (web / "app.js").write_bytes((rt.REPO_ROOT / "web" / "app.js").read_bytes())
    gateway_dir = tmp_path / "gateway"
    gateway_dir.mkdir()
    gw = NginxGateway(gateway_dir, 4, {**fake_env, "UI_DIR": str(web)})
    try:
        resp = requests.get(gw.url + "/app.js", timeout=TIMEOUT)
        assert resp.status_code == 200, gw.errors()
        assert resp.content == (web / "app.js").read_bytes()
    finally:
        gw.stop()
    # <<< stage 4
