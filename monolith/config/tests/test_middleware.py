import json
import logging
import uuid

import pytest
from django.test import Client

from blogweb.logging import JsonFormatter

pytestmark = pytest.mark.django_db


@pytest.fixture
def crashing_urls(settings):
    settings.ROOT_URLCONF = "monolith.config.tests.urls_for_tests"


def assert_contract_headers(response):
    assert response["X-Served-By"] == "monolith"
    assert uuid.UUID(response["X-Request-ID"]) or response["X-Request-ID"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/posts/", 200),
        ("get", "/api/posts/not-a-uuid/", 404),
        ("get", "/api/nothing-here/", 404),
        ("put", "/api/posts/", 405),
        ("get", "/healthz", 200),
        ("get", "/", 200),
    ],
)
def test_every_response_carries_request_id_and_served_by(client, method, path, status):
    response = getattr(client, method)(path)
    assert response.status_code == status
    assert response["X-Served-By"] == "monolith"
    assert uuid.UUID(response["X-Request-ID"])


def test_a_sane_client_request_id_is_echoed(client):
    response = client.get("/api/posts/", headers={"X-Request-ID": "client-abc-123"})
    assert response["X-Request-ID"] == "client-abc-123"


def test_an_insane_client_request_id_is_replaced(client):
    response = client.get("/api/posts/", headers={"X-Request-ID": "<script>alert(1)</script>"})
    assert response["X-Request-ID"] != "<script>alert(1)</script>"
    assert uuid.UUID(response["X-Request-ID"])


def test_one_json_access_log_line_per_request(client, caplog):
    with caplog.at_level(logging.INFO, logger="blog.access"):
        client.get("/api/posts/?page=1", headers={"X-Request-ID": "log-me-1"})
    lines = [r for r in caplog.records if r.name == "blog.access"]
    assert len(lines) == 1
    record = lines[0]
    assert record.request_id == "log-me-1"
    assert record.method == "GET"
    assert record.path == "/api/posts/"
    assert record.status == 200
    assert record.duration_ms >= 0
    formatted = json.loads(JsonFormatter().format(record))
    assert formatted["request_id"] == "log-me-1"
    assert formatted["status"] == 200
    assert "duration_ms" in formatted


@pytest.mark.parametrize(
    "path", ["/api/nothing-here/", "/api/posts/123/", "/api/posts/x/comments/"]
)
def test_unknown_api_paths_are_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_json_404_even_with_debug_on(client, settings):
    settings.DEBUG = True
    response = client.get("/api/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("path", ["/api/test/plain-crash/", "/api/test/api-crash/"])
def test_a_crash_under_api_is_a_json_500(crashing_urls, path, caplog):
    client = Client(raise_request_exception=False)
    response = client.get(path)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Internal server error."}
    assert_contract_headers(response)


def test_a_crash_under_api_is_json_even_with_debug_on(crashing_urls, settings):
    settings.DEBUG = True
    client = Client(raise_request_exception=False)
    response = client.get("/api/test/plain-crash/")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error."}


def test_a_dead_database_is_a_503_naming_it(crashing_urls, client):
    response = client.get("/api/test/db-down/")
    assert response.status_code == 503
    assert "database" in response.json()["detail"]
    assert response["Retry-After"] == "1"


def test_no_redirect_for_a_path_without_its_slash(client):
    created = client.post(
        "/api/posts",
        data={"title": "No slash", "body": "Still works"},
        content_type="application/json",
    )
    assert created.status_code == 201
    listed = client.get("/api/posts")
    assert listed.status_code == 200
    assert listed.json()["count"] == 1


def test_a_body_over_one_megabyte_is_413_json_and_stores_nothing(client):
    big = json.dumps({"title": "x", "body": "y" * (1024 * 1024)})
    response = client.post("/api/posts/", data=big, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["detail"].startswith("Request body exceeds")
    assert client.get("/api/posts/").json()["count"] == 0


def test_a_body_just_under_the_limit_is_parsed(client):
    body = json.dumps({"title": "x", "body": "y" * 30_000})
    assert len(body) < 1024 * 1024
    response = client.post("/api/posts/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "body" in response.json()


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_ui_is_served_at_the_root(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"<html" in b"".join(response.streaming_content).lower()


def test_openapi_schema_and_docs(client):
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    document = json.loads(
        b"".join(schema.streaming_content) if schema.streaming else schema.content
    )
    assert document["openapi"].startswith("3.")
    assert {"/api/posts/", "/api/posts/{post_id}/", "/api/posts/{post_id}/comments/"} <= set(
        document["paths"]
    )
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
    assert b"cdn" not in docs.content.lower()
