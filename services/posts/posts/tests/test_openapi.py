"""At stage 4 the posts service serves the whole API's OpenAPI document: its
own post routes plus the comments service's comment routes, from the
comments service's document kept in the posts package (posts/openapi.py).
Generating it calls nobody."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from posts import openapi

from .fake_comments import dead_url

SERVICE_DIR = Path(__file__).resolve().parents[2]


def schema(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


@pytest.mark.django_db
def test_the_document_has_both_services_routes(client):
    document = schema(client)
    assert {"/api/posts/", "/api/posts/{post_id}/", "/api/posts/{post_id}/comments/"} <= set(
        document["paths"]
    )
    comments = document["paths"]["/api/posts/{post_id}/comments/"]
    assert {"get", "post"} <= set(comments)
    assert comments["get"]["tags"] == ["comments"]
    assert {"CommentOutput", "CommentInput", "PostOutput"} <= set(document["components"]["schemas"])
    assert document["info"]["title"] == "Blog API"


@pytest.mark.django_db
def test_serving_the_document_calls_no_other_component(client, comments_service, settings):
    """The fake comments service records every request it gets: none. And
    the document is the same with the comments service's address dead."""
    served = schema(client)
    assert comments_service.requests == []
    settings.COMMENTS_URL = dead_url()
    assert schema(client) == served


def test_generating_the_document_offline(tmp_path):
    """`manage.py spectacular` (what a build or `check --deploy` runs) with
    the comments service's address on a port nobody listens on: a valid
    document with the comment routes, warnings failing it."""
    out = tmp_path / "schema.json"
    env = {**os.environ, "COMMENTS_URL": dead_url(), "COMMENTS_TIMEOUT_S": "1"}
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn",
         "--format", "openapi-json", "--file", str(out)],
        cwd=SERVICE_DIR, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "comments" not in result.stderr  # no "routes left out" warning
    document = json.loads(out.read_text())
    assert "/api/posts/{post_id}/comments/" in document["paths"]
    assert "unavailable" not in document["info"]["description"]


def test_merging_keeps_its_own_and_leaves_out_what_would_not_validate():
    own = {
        "info": {"title": "Blog API"},
        "paths": {"/api/posts/": {"get": {"operationId": "posts_list"}}},
        "components": {"schemas": {"Error": {"title": "own"}}},
    }
    other = {
        "paths": {
            "/api/posts/": {"get": {"operationId": "theirs"}},
            "/api/posts/{post_id}/comments/": {"get": {"operationId": "comments_list"}},
            "/api/broken/": {"get": {"responses": {}}},  # no operationId
        },
        "components": {"schemas": {"Error": {"title": "theirs"}, "CommentOutput": {}}},
        "tags": [{"name": "comments"}],
    }
    merged = openapi.merge_routes(own, other)
    assert list(merged["paths"]) == ["/api/posts/", "/api/posts/{post_id}/comments/"]
    assert merged["paths"]["/api/posts/"]["get"]["operationId"] == "posts_list"
    assert merged["components"]["schemas"]["Error"] == {"title": "own"}
    assert "CommentOutput" in merged["components"]["schemas"]
    assert merged["tags"] == [{"name": "comments"}]
