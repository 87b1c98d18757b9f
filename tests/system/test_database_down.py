"""A dead database: the monolith answers fast with a JSON 503 naming it,
never a hang or a 500; liveness stays green. A real gunicorn process pointed
at a closed port, no mock."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server_without_database(tmp_path_factory):
    port = free_port()
    dead_db_port = free_port()  # nothing listens there
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "monolith.config.settings.local",
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{dead_db_port}/blog",
    }
    log = (tmp_path_factory.mktemp("dbdown") / "server.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "monolith.config.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "1",
            "--no-control-socket",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("server did not start")
    yield base
    process.terminate()
    process.wait(timeout=10)


def test_liveness_does_not_depend_on_the_database(server_without_database):
    response = requests.get(f"{server_without_database}/healthz", timeout=5)
    assert response.status_code == 200


def test_readiness_is_503_naming_the_database(server_without_database):
    started = time.monotonic()
    response = requests.get(f"{server_without_database}/readyz", timeout=5)
    assert time.monotonic() - started < 3
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
        ("get", "/api/posts/4b0c8a37-6f39-4c55-9d0a-d5d3b6a6a111/", None),
        ("get", "/api/posts/4b0c8a37-6f39-4c55-9d0a-d5d3b6a6a111/comments/", None),
    ],
)
def test_api_calls_get_a_fast_json_503(server_without_database, method, path, payload):
    started = time.monotonic()
    response = requests.request(method, server_without_database + path, json=payload, timeout=5)
    assert time.monotonic() - started < 3
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/json"
    assert "database" in response.json()["detail"]
    assert response.headers["X-Served-By"] == "monolith"
