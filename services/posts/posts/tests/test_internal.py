"""GET /internal/posts/{id}/: how the comments service learns that a post
exists. Not routed by the gateway; cheap (one query, no comment counts)."""

import uuid

import pytest

from blogweb.timeutil import format_rfc3339_ms
from posts.tests.factories import PostFactory

pytestmark = pytest.mark.django_db


def test_a_known_post_is_its_id_and_creation_time(
    client, comments_service, django_assert_num_queries
):
    post = PostFactory()
    with django_assert_num_queries(1):
        response = client.get(f"/internal/posts/{post.id}/", HTTP_X_REQUEST_ID="from-comments")
    assert response.status_code == 200
    assert response.json() == {"id": str(post.id), "created_at": format_rfc3339_ms(post.created_at)}
    assert response["X-Served-By"] == "posts"
    assert response["X-Request-ID"] == "from-comments"
    assert comments_service.requests == []  # never asks for counts


def test_the_trailing_slash_is_optional(client):
    post = PostFactory()
    assert client.get(f"/internal/posts/{post.id}").status_code == 200


@pytest.mark.parametrize(
    "post_id", [str(uuid.uuid4()), "not-a-uuid", "123", "%24gt", "%7B%22%24gt%22%3A1%7D"]
)
def test_unknown_or_malformed_id_is_404_json(client, post_id):
    response = client.get(f"/internal/posts/{post_id}/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_only_get(client):
    post = PostFactory()
    response = client.delete(f"/internal/posts/{post.id}/")
    assert response.status_code == 405
    assert isinstance(response.json()["detail"], str)


def test_it_is_not_in_the_public_schema(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    assert not [path for path in paths if path.startswith("/internal/")]
