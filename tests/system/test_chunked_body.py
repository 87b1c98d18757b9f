"""A chunked request body (no Content-Length) reaches Django as an empty
body under a WSGI server; the monolith answers 411 in JSON instead of
pretending the fields were missing. Real gunicorn, raw HTTP."""

import http.client
import json
from urllib.parse import urlsplit

import pytest
import requests

from blogtest.postgres import fresh_database
from tests.support.live_server import gunicorn_monolith


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("chunked")
    with (
        fresh_database("chunked") as database,
        gunicorn_monolith(database=database, log_dir=log_dir, workers=1) as live,
    ):
        yield live


def chunked_post(url: str, payload: bytes) -> tuple[int, dict]:
    connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=10)
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
    status, body = chunked_post(server.url, payload)
    assert status == 411
    assert "Content-Length" in body["detail"]
    listed = requests.get(f"{server.url}/api/posts/", timeout=5).json()
    assert listed["count"] == 0
