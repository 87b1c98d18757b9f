"""At stage 4 the posts service serves the whole API's OpenAPI document: its
own post routes plus the comments service's comment routes."""

import pytest

from .fake_comments import dead_url

COMMENTS_SCHEMA = {
    "openapi": "3.0.3",
    "info": {"title": "comments", "version": "1"},
    "paths": {
        "/api/posts/{post_id}/comments/": {
            "get": {"operationId": "comments_list", "tags": ["comments"], "responses": {}}
        },
        # Not a valid operation (no operationId): left out, not a 500.
        "/api/broken/": {"get": {"responses": {}}},
    },
    "components": {"schemas": {"CommentOutput": {"type": "object"}}},
}


def schema(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


@pytest.mark.django_db
def test_the_document_has_both_services_routes(client, comments_service):
    comments_service.schema = COMMENTS_SCHEMA
    document = schema(client)
    assert {"/api/posts/", "/api/posts/{post_id}/", "/api/posts/{post_id}/comments/"} <= set(
        document["paths"]
    )
    assert "/api/broken/" not in document["paths"]
    assert "CommentOutput" in document["components"]["schemas"]
    assert "PostOutput" in document["components"]["schemas"]
    assert document["info"]["title"] == "Blog API"
    [call] = comments_service.calls("GET", "/api/schema/")
    assert call.query == {"format": ["json"]}
    assert "authorization" not in call.headers  # a public route: no credential


@pytest.mark.django_db
def test_without_the_comments_service_the_post_routes_are_still_documented(client, settings):
    settings.COMMENTS_URL = dead_url()
    document = schema(client)
    assert "/api/posts/" in document["paths"]
    assert "/api/posts/{post_id}/comments/" not in document["paths"]
    assert "comments unavailable" in document["info"]["description"]
