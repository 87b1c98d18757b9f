"""The public post routes answer exactly like the monolith's (its
posts/tests/test_api.py, with comment counts now from the comments service:
COMMENT_COUNTS=sync, set for every test here)."""

import json
import re
import uuid

import pytest

from posts.models import Post
from posts.tests.factories import PostFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sync_counts")]

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def post_json(client, path, payload, content_type="application/json", **extra):
    data = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    return client.post(path, data=data, content_type=content_type, **extra)


# --- create -------------------------------------------------------------


def test_create_returns_201_with_the_post(client, comments_service):
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
    assert comments_service.requests == []


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
        ('{"title": NaN, "body": "b"}', "application/json", 400),
        ("[" * 100_000, "application/json", 400),
        (b'{"title": "\xff", "body": "b"}', "application/json", 400),
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


def test_a_body_over_1_mb_is_413_json_and_stores_nothing(client):
    payload = json.dumps({"title": "t", "body": "b" * (1024 * 1024)})
    response = post_json(client, "/api/posts/", payload)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert isinstance(response.json()["detail"], str)
    assert response["X-Served-By"] == "posts"
    assert Post.objects.count() == 0


def test_a_chunked_body_without_length_is_411_json(client):
    response = client.generic(
        "POST",
        "/api/posts/",
        data=b"",
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert response.status_code == 411
    assert isinstance(response.json()["detail"], str)
    assert Post.objects.count() == 0


def test_a_path_without_its_slash_is_answered_not_redirected(client):
    created = post_json(client, "/api/posts", {"title": "t", "body": "b"})
    assert created.status_code == 201
    post_id = created.json()["id"]
    assert client.get("/api/posts").status_code == 200
    assert client.get(f"/api/posts/{post_id}").status_code == 200
    assert client.delete(f"/api/posts/{post_id}").status_code == 204


# --- read ---------------------------------------------------------------


def test_get_one(client, comments_service):
    post = PostFactory()
    comments_service.counts = {str(post.id): 2}
    response = client.get(f"/api/posts/{post.id}/")
    assert response.status_code == 200
    assert response.json() == {
        "id": str(post.id),
        "title": post.title,
        "body": post.body,
        "created_at": response.json()["created_at"],
        "comment_count": 2,
    }
    assert TIMESTAMP.match(response.json()["created_at"])


@pytest.mark.parametrize("post_id", [str(uuid.uuid4()), "not-a-uuid", "123", "%24gt"])
def test_unknown_or_malformed_id_is_404_json(client, comments_service, post_id):
    for method in ("get", "delete"):
        response = getattr(client, method)(f"/api/posts/{post_id}/")
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}
    assert comments_service.requests == []


def test_list_shape_order_and_counts(client, comments_service):
    posts = [PostFactory() for _ in range(3)]
    comments_service.counts = {str(posts[1].id): 2}
    response = client.get("/api/posts/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert body["next"] is None
    assert body["previous"] is None
    assert {p["id"]: p["comment_count"] for p in body["results"]} == {
        str(posts[0].id): 0,
        str(posts[1].id): 2,
        str(posts[2].id): 0,
    }
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
def test_bad_page_parameters_are_400(client, comments_service, query):
    response = client.get(f"/api/posts/?{query}")
    assert response.status_code == 400
    name = query.split("=")[0]
    assert set(response.json()) == {name}
    assert comments_service.requests == []


def test_page_past_the_end_is_404_but_an_empty_first_page_is_200(client, comments_service):
    empty = client.get("/api/posts/")
    assert empty.status_code == 200
    assert empty.json() == {"count": 0, "next": None, "previous": None, "results": []}
    PostFactory.create_batch(3)
    assert client.get("/api/posts/?page=2").status_code == 404
    assert client.get("/api/posts/?page=2").json() == {"detail": "Invalid page."}
    assert comments_service.requests == []  # nothing to count on either


@pytest.mark.parametrize("page_size", [1, 5, 100])
def test_the_list_costs_two_queries_and_one_counts_call_whatever_the_page_size(
    client, comments_service, django_assert_num_queries, page_size
):
    posts = PostFactory.create_batch(100)
    comments_service.counts = {str(post.id): 1 for post in posts}
    # the kept total and the page itself; the counts are one HTTP call
    with django_assert_num_queries(2):
        response = client.get(f"/api/posts/?page_size={page_size}")
    results = response.json()["results"]
    assert len(results) == page_size
    assert {p["comment_count"] for p in results} == {1}
    [call] = comments_service.count_calls()
    assert call.json["post_ids"] == [p["id"] for p in results]
    assert len(comments_service.requests) == 1


# --- delete -------------------------------------------------------------


def test_delete_then_gone_and_the_comments_service_told(
    client, caller, comments_service, django_capture_on_commit_callbacks
):
    post = PostFactory()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/posts/{post.id}/").status_code == 204
    assert [(r.method, r.path) for r in comments_service.requests] == [
        ("DELETE", f"/internal/posts/{post.id}/comments/")
    ]
    assert client.get(f"/api/posts/{post.id}/").status_code == 404
    assert client.delete(f"/api/posts/{post.id}/").status_code == 404
    assert caller.get(f"/internal/posts/{post.id}/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_delete_tells_the_comments_service_after_the_real_commit(client, comments_service):
    post = PostFactory()
    assert client.delete(f"/api/posts/{post.id}/").status_code == 204
    assert [(r.method, r.path) for r in comments_service.requests] == [
        ("DELETE", f"/internal/posts/{post.id}/comments/")
    ]


# --- the contract's plumbing --------------------------------------------


def test_every_response_carries_request_id_and_served_by(client):
    for response in (
        client.get("/api/posts/", HTTP_X_REQUEST_ID="abc-123"),
        client.get(f"/api/posts/{uuid.uuid4()}/", HTTP_X_REQUEST_ID="abc-123"),
        post_json(client, "/api/posts/", {}, HTTP_X_REQUEST_ID="abc-123"),
    ):
        assert response["X-Request-ID"] == "abc-123"
        assert response["X-Served-By"] == "posts"
    generated = client.get("/api/posts/", HTTP_X_REQUEST_ID="bad id\n")["X-Request-ID"]
    assert uuid.UUID(generated)


def test_the_request_id_goes_along_to_the_comments_service(client, comments_service):
    PostFactory()
    client.get("/api/posts/", HTTP_X_REQUEST_ID="trace-me-42")
    [call] = comments_service.count_calls()
    assert call.headers["x-request-id"] == "trace-me-42"


@pytest.mark.parametrize(
    ("method", "path"),
    [("put", "/api/posts/"), ("patch", "/api/posts/{id}/"), ("post", "/api/posts/{id}/")],
)
def test_unsupported_methods_are_405_json(client, method, path):
    post = PostFactory()
    response = getattr(client, method)(
        path.format(id=post.id), data="{}", content_type="application/json"
    )
    assert response.status_code == 405
    assert isinstance(response.json()["detail"], str)
    assert "Allow" in response


@pytest.mark.parametrize("path", ["/api/nothing-here/", "/api/posts/x/y/", "/api/comments/"])
def test_unknown_api_paths_are_404_json(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert response["X-Served-By"] == "posts"


def test_probes(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok"}


def test_readyz_names_the_dependency_that_fails(client, settings):
    settings.READINESS_CHECKS = {"database": "tests.test_api.failing_check"}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "database" in response.json()["detail"]


def failing_check() -> None:
    raise ConnectionError("down")


def test_openapi_schema_and_offline_docs(client):
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    document = schema.json()
    assert document["openapi"].startswith("3.")
    # The whole API's document: the comment routes come from the comments
    # service's document kept in this package (posts/openapi.py).
    assert set(document["paths"]) == {
        "/api/posts/",
        "/api/posts/{post_id}/",
        "/api/posts/{post_id}/comments/",
    }
    operations = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    assert operations == {
        "posts_list",
        "posts_create",
        "posts_retrieve",
        "posts_destroy",
        "comments_list",
        "comments_create",
    }
    tags = {
        tag for item in document["paths"].values() for op in item.values() for tag in op["tags"]
    }
    assert tags == {"posts", "comments"}  # as in the monolith's document
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html  # served from the sidecar package, not a CDN
    bundle = re.search(r'src="(/static/[^"]*swagger-ui-bundle\.js)"', html)
    assert bundle, html
    assert client.get(bundle.group(1)).status_code == 200
