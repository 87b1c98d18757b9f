"""The public comment routes, answered like the monolith's
(monolith/comments/tests/test_api.py), with the owner of posts faked over HTTP."""

import json
import re
import time
import uuid
from datetime import timedelta

import pytest

from blogweb.timeutil import now_ms

from .factories import make_comment

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def post(fake_posts) -> str:
    return fake_posts.add(uuid.uuid4())


def post_json(client, path, payload, content_type="application/json", **extra):
    data = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    return client.post(path, data=data, content_type=content_type, **extra)


def test_create_returns_201_with_the_comment(client, post, mongo_collection):
    response = post_json(
        client,
        f"/api/posts/{post}/comments/",
        {
            "body": "  Great read  ",
            "post_id": "x",
            "id": str(uuid.uuid4()),
            "created_at": "2001-01-01T00:00:00.000Z",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "post_id", "body", "created_at"}
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert body["post_id"] == post
    assert body["body"] == "Great read"
    assert TIMESTAMP.match(body["created_at"])
    assert body["created_at"] > "2002"
    assert response["X-Served-By"] == "comments"
    assert response["X-Request-ID"]
    assert mongo_collection.count_documents({"_id": body["id"], "post_id": post}) == 1


def test_a_comment_right_after_the_posts_201(client, fake_posts):
    post_id = fake_posts.add(uuid.uuid4())
    response = post_json(client, f"/api/posts/{post_id}/comments/", {"body": "first!"})
    assert response.status_code == 201


def test_body_limit_is_inclusive(client, post):
    ok = post_json(client, f"/api/posts/{post}/comments/", {"body": "c" * 2000})
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
def test_bad_bodies_are_400_and_store_nothing(client, post, payload, mongo_collection):
    response = post_json(client, f"/api/posts/{post}/comments/", payload)
    assert response.status_code == 400
    assert set(response.json()) == {"body"}
    assert mongo_collection.count_documents({}) == 0


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ("{oops", "application/json", 400),
        ('["x"]', "application/json", 400),
        ("NaN", "application/json", 400),
        ("body=x", "application/x-www-form-urlencoded", 415),
        ("body", "text/plain", 415),
    ],
)
def test_unparseable_bodies(client, post, data, content_type, status, mongo_collection):
    response = post_json(client, f"/api/posts/{post}/comments/", data, content_type)
    assert response.status_code == status
    assert "detail" in response.json()
    assert mongo_collection.count_documents({}) == 0


def test_a_body_over_1_mb_is_413_json(client, post, mongo_collection):
    response = post_json(client, f"/api/posts/{post}/comments/", {"body": "c" * (1024 * 1024)})
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()
    assert response["X-Served-By"] == "comments"
    assert mongo_collection.count_documents({}) == 0


@pytest.mark.parametrize(
    "post_id", [str(uuid.uuid4()), "nope", "1", "%7B%22$gt%22:%22%22%7D", str(uuid.uuid4()) + "x"]
)
def test_unknown_post_is_404_for_list_and_create(client, post_id, fake_posts, mongo_collection):
    listed = client.get(f"/api/posts/{post_id}/comments/")
    assert listed.status_code == 404
    assert listed.json() == {"detail": "Not found."}
    response = post_json(client, f"/api/posts/{post_id}/comments/", {"body": "hello"})
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert response["X-Served-By"] == "comments"
    assert mongo_collection.count_documents({}) == 0


def test_malformed_ids_are_not_even_asked_of_posts(client, fake_posts):
    client.get("/api/posts/nope/comments/")
    post_json(client, "/api/posts/nope/comments/", {"body": "hello"})
    assert fake_posts.requests == []


def test_list_is_oldest_first_and_paginated(client, post):
    for i in range(25):
        post_json(client, f"/api/posts/{post}/comments/", {"body": f"comment {i}"})
    make_comment(post_id=uuid.uuid4())  # someone else's
    first = client.get(f"/api/posts/{post}/comments/").json()
    assert first["count"] == 25
    assert len(first["results"]) == 20
    assert first["previous"] is None
    second = client.get(first["next"]).json()
    assert second["next"] is None
    listed = first["results"] + second["results"]
    # Oldest first; two comments in the same millisecond are ordered by id.
    assert listed == sorted(listed, key=lambda c: (c["created_at"], c["id"]))
    assert sorted(c["body"] for c in listed) == sorted(f"comment {i}" for i in range(25))
    assert client.get(f"/api/posts/{post}/comments/?page=3").status_code == 404
    assert client.get(f"/api/posts/{post}/comments/?page=0").status_code == 400
    assert len(client.get(f"/api/posts/{post}/comments/?page_size=500").json()["results"]) == 25


def test_ties_in_the_same_millisecond_are_listed_by_id(client, post):
    now = now_ms()
    made = [make_comment(post_id=uuid.UUID(post), created_at=now) for _ in range(5)]
    older = make_comment(post_id=uuid.UUID(post), created_at=now - timedelta(milliseconds=1))
    listed = [c["id"] for c in client.get(f"/api/posts/{post}/comments/").json()["results"]]
    assert listed == [str(older.id), *sorted(str(c.id) for c in made)]


def test_empty_list(client, post):
    response = client.get(f"/api/posts/{post}/comments/")
    assert response.status_code == 200
    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}
    assert client.get(f"/api/posts/{post}/comments/?page=2").status_code == 404


@pytest.mark.parametrize("query", ["page=abc", "page=-1", "page_size=0", "page_size=x", "page=1.5"])
def test_bad_page_params_are_400(client, post, query):
    response = client.get(f"/api/posts/{post}/comments/?{query}")
    assert response.status_code == 400
    assert set(response.json()) <= {"page", "page_size"}


def test_without_the_trailing_slash_a_post_is_answered_not_redirected(client, post):
    response = post_json(client, f"/api/posts/{post}/comments", {"body": "no slash"})
    assert response.status_code == 201
    assert client.get(f"/api/posts/{post}/comments").json()["count"] == 1


def test_other_methods_are_405_json(client, post):
    response = client.put(
        f"/api/posts/{post}/comments/", data="{}", content_type="application/json"
    )
    assert response.status_code == 405
    assert "detail" in response.json()


def test_an_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert response["X-Served-By"] == "comments"


def test_a_sane_request_id_is_echoed_and_sent_on_to_posts(client, post, fake_posts):
    response = client.get(f"/api/posts/{post}/comments/", HTTP_X_REQUEST_ID="req-42")
    assert response["X-Request-ID"] == "req-42"
    assert fake_posts.requests[-1]["headers"].get("X-Request-ID") == "req-42"


def test_mongodb_down_is_a_fast_json_503(client, post, settings, dead_url):
    settings.MONGO_URL = f"mongodb://{dead_url}"
    for request in (
        lambda: client.get(f"/api/posts/{post}/comments/"),
        lambda: post_json(client, f"/api/posts/{post}/comments/", {"body": "x"}),
    ):
        started = time.monotonic()
        response = request()
        assert time.monotonic() - started < 1.5
        assert response.status_code == 503
        assert response.json() == {"detail": "Service unavailable: mongodb is not reachable."}
        assert response["Retry-After"]
        assert response["X-Served-By"] == "comments"


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"mongodb": "ok"}


def test_readyz_names_mongodb_when_it_is_down(client, settings, dead_url):
    settings.MONGO_URL = f"mongodb://{dead_url}"
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < 1.5
    assert response.status_code == 503
    assert "mongodb" in response.json()["detail"]
    assert client.get("/healthz").status_code == 200


def test_the_schema_documents_the_public_comment_routes_only(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {"/api/posts/{post_id}/comments/"}
    operations = schema["paths"]["/api/posts/{post_id}/comments/"]
    assert {op["operationId"] for op in operations.values()} == {
        "comments_list",
        "comments_create",
    }


def test_swagger_ui_is_served_offline(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    assert "cdn" not in page.lower()
