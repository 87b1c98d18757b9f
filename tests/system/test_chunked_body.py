"""A chunked request body (no Content-Length) reaches Django as an empty
body under a WSGI server; the monolith answers 411 in JSON instead of
pretending the fields were missing. Real gunicorn, raw HTTP."""

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    name = f"chunked_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "monolith.config.settings.local",
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{name}",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    log = (tmp_path_factory.mktemp("chunked") / "server.log").open("w")
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
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def chunked_post(port: int, payload: bytes) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST",
            "/api/posts/",
            body=iter([payload]),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_chunked_body_gets_411_json_and_stores_nothing(server):
    # Small on purpose: the server answers without reading the body, so a
    # large one would meet a closed socket before the answer is read.
    payload = json.dumps({"title": "chunked", "body": "a valid post"}).encode()
    status, body = chunked_post(server, payload)
    assert status == 411
    assert "Content-Length" in body["detail"]
    listed = requests.get(f"http://127.0.0.1:{server}/api/posts/", timeout=5).json()
    assert listed["count"] == 0
