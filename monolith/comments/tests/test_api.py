import json
import re
import uuid

import pytest

from monolith.comments.models import Comment
from monolith.comments.tests.factories import CommentFactory
from monolith.posts.tests.factories import PostFactory

pytestmark = pytest.mark.django_db

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def post():
    return PostFactory()


def post_json(client, path, payload, content_type="application/json"):
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return client.post(path, data=data, content_type=content_type)


def test_create_returns_201_with_the_comment(client, post):
    response = post_json(
        client, f"/api/posts/{post.id}/comments/", {"body": "  Great read  ", "post_id": "x"}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "post_id", "body", "created_at"}
    assert uuid.UUID(body["id"])
    assert body["post_id"] == str(post.id)
    assert body["body"] == "Great read"
    assert TIMESTAMP.match(body["created_at"])
    assert client.get(f"/api/posts/{post.id}/").json()["comment_count"] == 1


def test_a_comment_right_after_the_posts_201(client):
    created = post_json(client, "/api/posts/", {"title": "t", "body": "b"}).json()
    response = post_json(client, f"/api/posts/{created['id']}/comments/", {"body": "first!"})
    assert response.status_code == 201


def test_body_limit_is_inclusive(client, post):
    ok = post_json(client, f"/api/posts/{post.id}/comments/", {"body": "c" * 2000})
    assert ok.status_code == 201


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"body": ""},
        {"body": "  "},
        {"body": "c" * 2001},
        {"body": None},
        {"body": 42},
        {"body": True},
        {"body": ["x"]},
        {"body": {"$gt": ""}},
    ],
)
def test_bad_bodies_are_400_and_store_nothing(client, post, payload):
    response = post_json(client, f"/api/posts/{post.id}/comments/", payload)
    assert response.status_code == 400
    assert set(response.json()) == {"body"}
    assert Comment.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("{oops", "application/json", 400),
        ('["x"]', "application/json", 400),
        ("body=x", "application/x-www-form-urlencoded", 415),
    ],
)
def test_unparseable_bodies(client, post, data, content_type, status):
    response = post_json(client, f"/api/posts/{post.id}/comments/", data, content_type)
    assert response.status_code == status
    assert "detail" in response.json()
    assert Comment.objects.count() == 0


@pytest.mark.parametrize("post_id", [str(uuid.uuid4()), "nope", "1"])
def test_unknown_post_is_404_for_list_and_create(client, post_id):
    assert client.get(f"/api/posts/{post_id}/comments/").status_code == 404
    response = post_json(client, f"/api/posts/{post_id}/comments/", {"body": "hello"})
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert Comment.objects.count() == 0


def test_list_is_oldest_first_and_paginated(client, post):
    for i in range(25):
        post_json(client, f"/api/posts/{post.id}/comments/", {"body": f"comment {i}"})
    CommentFactory()  # someone else's
    first = client.get(f"/api/posts/{post.id}/comments/").json()
    assert first["count"] == 25
    assert len(first["results"]) == 20
    second = client.get(first["next"]).json()
    listed = first["results"] + second["results"]
    # Oldest first; two comments in the same millisecond are ordered by id.
    assert listed == sorted(listed, key=lambda c: (c["created_at"], c["id"]))
    assert sorted(c["body"] for c in listed) == sorted(f"comment {i}" for i in range(25))
    assert client.get(f"/api/posts/{post.id}/comments/?page=3").status_code == 404
    assert client.get(f"/api/posts/{post.id}/comments/?page=0").status_code == 400
    assert len(client.get(f"/api/posts/{post.id}/comments/?page_size=500").json()["results"]) == 25


def test_the_comment_list_costs_a_constant_number_of_queries(
    client, post, django_assert_num_queries
):
    CommentFactory.create_batch(60, post=post)
    # post exists?, COUNT(*), the page
    with django_assert_num_queries(3):
        client.get(f"/api/posts/{post.id}/comments/?page_size=50")
