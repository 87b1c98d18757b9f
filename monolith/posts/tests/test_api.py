import json
import re
import uuid

import pytest

from monolith.comments.tests.factories import CommentFactory
from monolith.posts.models import Post
from monolith.posts.tests.factories import PostFactory

pytestmark = pytest.mark.django_db

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def post_json(client, path, payload, content_type="application/json"):
    data = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    return client.post(path, data=data, content_type=content_type)


# --- create -------------------------------------------------------------


def test_create_returns_201_with_the_post(client):
    response = post_json(
        client,
        "/api/posts/",
        {
            "title": "  Hello  ",
            "body": "\n World \n",
            "id": "x",
            "comment_count": 9,
            "created_at": "1999-01-01T00:00:00.000Z",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "title", "body", "created_at", "comment_count"}
    assert uuid.UUID(body["id"])
    assert body["title"] == "Hello"
    assert body["body"] == "World"
    assert body["comment_count"] == 0
    assert TIMESTAMP.match(body["created_at"])
    assert not body["created_at"].startswith("1999")
    assert Post.objects.get(pk=body["id"]).title == "Hello"


def test_limits_are_inclusive(client):
    response = post_json(client, "/api/posts/", {"title": "t" * 200, "body": "b" * 20_000})
    assert response.status_code == 201


BAD_POSTS = [
    ({}, {"title", "body"}),
    ({"title": "t"}, {"body"}),
    ({"body": "b"}, {"title"}),
    ({"title": "", "body": "b"}, {"title"}),
    ({"title": "   ", "body": "b"}, {"title"}),
    ({"title": "t", "body": " \n\t "}, {"body"}),
    ({"title": "t" * 201, "body": "b"}, {"title"}),
    ({"title": "t", "body": "b" * 20_001}, {"body"}),
    ({"title": None, "body": "b"}, {"title"}),
    ({"title": 12345, "body": "b"}, {"title"}),
    ({"title": 1.5, "body": "b"}, {"title"}),
    ({"title": True, "body": "b"}, {"title"}),
    ({"title": "t", "body": False}, {"body"}),
    ({"title": ["t"], "body": "b"}, {"title"}),
    ({"title": {"$gt": ""}, "body": "b"}, {"title"}),
    ({"title": "t", "body": {"$ne": None}}, {"body"}),
]


@pytest.mark.parametrize(("payload", "fields"), BAD_POSTS)
def test_bad_fields_get_400_per_field_and_store_nothing(client, payload, fields):
    response = post_json(client, "/api/posts/", payload)
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == fields
    assert all(isinstance(m, list) and all(isinstance(s, str) for s in m) for m in errors.values())
    assert Post.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ('{"title": "t", "body": "b",}', "application/json", 400),
        ('[{"title": "t", "body": "b"}]', "application/json", 400),
        ('"just a string"', "application/json", 400),
        ("title=t&body=b", "application/x-www-form-urlencoded", 415),
        ('{"title": "t", "body": "b"}', "text/plain", 415),
    ],
)
def test_unparseable_bodies_get_a_json_4xx_and_store_nothing(client, data, content_type, status):
    response = post_json(client, "/api/posts/", data, content_type=content_type)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert isinstance(response.json()["detail"], str)
    assert Post.objects.count() == 0


def test_an_empty_body_is_missing_fields(client):
    response = client.post("/api/posts/", data="", content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()) == {"title", "body"}
    assert Post.objects.count() == 0


# --- read ---------------------------------------------------------------


def test_get_one(client):
    post = PostFactory()
    CommentFactory.create_batch(2, post=post)
    response = client.get(f"/api/posts/{post.id}/")
    assert response.status_code == 200
    assert response.json()["comment_count"] == 2
    assert response.json()["id"] == str(post.id)


@pytest.mark.parametrize("post_id", [str(uuid.uuid4()), "not-a-uuid", "123", "%24gt"])
def test_unknown_or_malformed_id_is_404_json(client, post_id):
    for method in ("get", "delete"):
        response = getattr(client, method)(f"/api/posts/{post_id}/")
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}


def test_list_shape_order_and_counts(client):
    posts = [PostFactory() for _ in range(3)]
    CommentFactory.create_batch(2, post=posts[1])
    response = client.get("/api/posts/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert body["next"] is None
    assert body["previous"] is None
    by_id = {p["id"]: p for p in body["results"]}
    assert by_id[str(posts[1].id)]["comment_count"] == 2
    stamps = [p["created_at"] for p in body["results"]]
    assert stamps == sorted(stamps, reverse=True)


def test_pages_default_to_20_and_link_absolutely(client):
    PostFactory.create_batch(45)
    first = client.get("/api/posts/").json()
    assert len(first["results"]) == 20
    assert first["next"] == "http://testserver/api/posts/?page=2"
    last = client.get("/api/posts/?page=3").json()
    assert len(last["results"]) == 5
    assert last["next"] is None
    assert last["previous"] == "http://testserver/api/posts/?page=2"
    seen = [
        p["id"]
        for page in (1, 2, 3)
        for p in client.get(f"/api/posts/?page={page}").json()["results"]
    ]
    assert len(set(seen)) == 45


def test_page_size_is_honoured_and_capped_at_100(client):
    PostFactory.create_batch(105)
    assert len(client.get("/api/posts/?page_size=7").json()["results"]) == 7
    capped = client.get("/api/posts/?page_size=1000").json()
    assert len(capped["results"]) == 100
    assert capped["next"] == "http://testserver/api/posts/?page=2&page_size=1000"


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page=-1",
        "page=abc",
        "page=1.5",
        "page=",
        "page_size=0",
        "page_size=-3",
        "page_size=abc",
        "page=%D9%A3",
    ],
)
def test_bad_page_parameters_are_400(client, query):
    response = client.get(f"/api/posts/?{query}")
    assert response.status_code == 400
    name = query.split("=")[0]
    assert set(response.json()) == {name}


def test_page_past_the_end_is_404_but_an_empty_first_page_is_200(client):
    empty = client.get("/api/posts/")
    assert empty.status_code == 200
    assert empty.json()["results"] == []
    PostFactory.create_batch(3)
    assert client.get("/api/posts/?page=2").status_code == 404
    assert client.get("/api/posts/?page=2").json() == {"detail": "Invalid page."}


@pytest.mark.parametrize("page_size", [5, 100])
def test_the_list_costs_three_queries_whatever_the_page_size(
    client, django_assert_num_queries, page_size
):
    for post in PostFactory.create_batch(100):
        CommentFactory(post=post)
    # the kept total, the page itself, one aggregate of comment counts
    with django_assert_num_queries(3):
        response = client.get(f"/api/posts/?page_size={page_size}")
    assert len(response.json()["results"]) == page_size
    assert {p["comment_count"] for p in response.json()["results"]} == {1}


# --- delete -------------------------------------------------------------


def test_delete_then_gone(client):
    post = PostFactory()
    CommentFactory(post=post)
    assert client.delete(f"/api/posts/{post.id}/").status_code == 204
    assert client.get(f"/api/posts/{post.id}/").status_code == 404
    assert client.get(f"/api/posts/{post.id}/comments/").status_code == 404
    assert client.delete(f"/api/posts/{post.id}/").status_code == 404
