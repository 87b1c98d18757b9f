"""GET /internal/posts/{id}/: how the comments service learns that a post
exists. Not routed by the gateway; cheap (one query, no comment counts). Only
the comments service, with its credential (``caller``), gets an answer;
``client`` has none."""

import secrets
import uuid

import pytest

from blogweb.internal import authorization
from blogweb.timeutil import format_rfc3339_ms
from posts.tests.factories import PostFactory

from .conftest import CALLER, CALLER_TOKEN, OWN_TOKEN

pytestmark = pytest.mark.django_db


def test_a_known_post_is_its_id_and_creation_time(
    caller, comments_service, django_assert_num_queries
):
    post = PostFactory()
    with django_assert_num_queries(1):
        response = caller.get(f"/internal/posts/{post.id}/", HTTP_X_REQUEST_ID="from-comments")
    assert response.status_code == 200
    assert response.json() == {"id": str(post.id), "created_at": format_rfc3339_ms(post.created_at)}
    assert response["X-Served-By"] == "posts"
    assert response["X-Request-ID"] == "from-comments"
    assert comments_service.requests == []  # never asks for counts


def test_the_trailing_slash_is_optional(caller):
    post = PostFactory()
    assert caller.get(f"/internal/posts/{post.id}").status_code == 200


@pytest.mark.parametrize(
    "post_id", [str(uuid.uuid4()), "not-a-uuid", "123", "%24gt", "%7B%22%24gt%22%3A1%7D"]
)
def test_unknown_or_malformed_id_is_404_json(caller, post_id):
    response = caller.get(f"/internal/posts/{post_id}/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_only_get(caller):
    post = PostFactory()
    response = caller.delete(f"/internal/posts/{post.id}/")
    assert response.status_code == 405
    assert isinstance(response.json()["detail"], str)


def test_it_is_not_in_the_public_schema(caller):
    paths = caller.get("/api/schema/?format=json").json()["paths"]
    assert not [path for path in paths if path.startswith("/internal/")]


def test_no_credential_is_a_json_401_that_says_nothing_of_the_post(
    client, django_assert_num_queries
):
    post = PostFactory()
    with django_assert_num_queries(0):
        response = client.get(f"/internal/posts/{post.id}/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert response["WWW-Authenticate"] == 'Bearer realm="internal"'
    assert response["X-Served-By"] == "posts"


@pytest.mark.parametrize(
    "credential",
    [
        authorization(CALLER, secrets.token_urlsafe(32)),
        authorization("monolith", CALLER_TOKEN),
        authorization("posts", OWN_TOKEN),  # its own token is no caller's
        f"Bearer {CALLER_TOKEN}",
    ],
)
def test_a_wrong_credential_is_a_json_403_that_says_nothing_of_the_post(
    client, credential, django_assert_num_queries
):
    post = PostFactory()
    with django_assert_num_queries(0):
        response = client.get(f"/internal/posts/{post.id}/", HTTP_AUTHORIZATION=credential)
    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid credentials for an internal route."}
    # the same answer for an unknown post: nothing to learn about which ids exist
    unknown = client.get(f"/internal/posts/{uuid.uuid4()}/", HTTP_AUTHORIZATION=credential)
    assert unknown.status_code == 403
