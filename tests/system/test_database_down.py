"""A dead database: the monolith answers fast with a JSON 503 naming it,
never a hang or a 500; liveness stays green. A real gunicorn process pointed
at a closed port, no mock."""

import time

import pytest
import requests

from blogtest.ports import free_port
from blogtest.timing import scaled
from tests.support.live_server import gunicorn_monolith

UNKNOWN = "4b0c8a37-6f39-4c55-9d0a-d5d3b6a6a111"


@pytest.fixture(scope="module")
def server_without_database(tmp_path_factory):
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/blog"  # nothing listens there
    log_dir = tmp_path_factory.mktemp("dbdown")
    with gunicorn_monolith(database=dead, log_dir=log_dir, workers=1, migrate=False) as server:
        yield server.url


def test_liveness_does_not_depend_on_the_database(server_without_database):
    response = requests.get(f"{server_without_database}/healthz", timeout=5)
    assert response.status_code == 200


def test_readiness_is_503_naming_the_database(server_without_database):
    started = time.monotonic()
    response = requests.get(f"{server_without_database}/readyz", timeout=5)
    assert time.monotonic() - started < scaled(3)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("unavailable")
    assert "database" in body["detail"]


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("get", "/api/posts/", None),
        ("post", "/api/posts/", {"title": "t", "body": "b"}),
        ("get", f"/api/posts/{UNKNOWN}/", None),
        ("delete", f"/api/posts/{UNKNOWN}/", None),
        ("get", f"/api/posts/{UNKNOWN}/comments/", None),
        ("post", f"/api/posts/{UNKNOWN}/comments/", {"body": "hello"}),
    ],
)
def test_api_calls_get_a_fast_json_503(server_without_database, method, path, payload):
    started = time.monotonic()
    response = requests.request(method, server_without_database + path, json=payload, timeout=5)
    assert time.monotonic() - started < scaled(3)
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/json"
    assert "database" in response.json()["detail"]
    assert response.headers["X-Served-By"] == "monolith"
