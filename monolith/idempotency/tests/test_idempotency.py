"""Idempotency-Key on the monolith's create routes, on PostgreSQL: replay,
422, 400, per-route scopes, the key committed with the creation or not at
all, and two concurrent requests with one key creating one resource."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from blogweb import idempotency
from monolith.comments.models import Comment
from monolith.idempotency.models import IdempotencyKey
from monolith.idempotency.store import STORE
from monolith.posts.models import Post
from monolith.posts.tests.factories import PostFactory

REPLAYED = "Idempotent-Replayed"


def send(client, path, payload, key=None):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(path, data=json.dumps(payload), content_type="application/json", **headers)


def comments_path(post) -> str:
    return f"/api/posts/{post.id}/comments/"


@pytest.fixture(autouse=True)
def _fresh_purge_clock():
    idempotency._last_purge.clear()


# --- the routes -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_post_retried_with_its_key_is_created_once(client):
    key = str(uuid.uuid4())
    first = send(client, "/api/posts/", {"title": "t", "body": "b"}, key)
    again = client.post(
        "/api/posts/",
        data='{"body": "b",   "title": "t"}',  # the same JSON, written otherwise
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again[REPLAYED] == "true"
    assert not first.has_header(REPLAYED)
    assert Post.objects.count() == 1
    row = IdempotencyKey.objects.get()
    assert (row.scope, row.key, row.status, row.body) == ("posts", key, 201, first.json())


@pytest.mark.django_db
def test_a_comment_retried_with_its_key_is_created_once(client):
    post = PostFactory()
    first = send(client, comments_path(post), {"body": "hello"}, "k-1")
    again = send(client, comments_path(post), {"body": "hello"}, "k-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again[REPLAYED] == "true"
    assert Comment.objects.count() == 1
    assert IdempotencyKey.objects.get().scope == f"comments:{post.id}"


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_json_422_and_stores_nothing(client):
    post = PostFactory()
    assert send(client, "/api/posts/", {"title": "t", "body": "b"}, "k").status_code == 201
    reused = send(client, "/api/posts/", {"title": "t", "body": "other"}, "k")
    assert reused.status_code == 422
    assert reused["Content-Type"] == "application/json"
    assert "different request body" in reused.json()["detail"]
    assert send(client, comments_path(post), {"body": "a"}, "c").status_code == 201
    assert send(client, comments_path(post), {"body": "b"}, "c").status_code == 422
    assert Post.objects.count() == 2  # the factory's and the first request's
    assert Comment.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", " ", "k" * 256, "caf\u00e9"])
def test_a_malformed_key_is_a_json_400_and_stores_nothing(client, key):
    post = PostFactory()
    routes = (("/api/posts/", {"title": "t", "body": "b"}), (comments_path(post), {"body": "b"}))
    for path, payload in routes:
        response = send(client, path, payload, key)
        assert response.status_code == 400, response.content
        assert "Idempotency-Key" in response.json()["detail"]
    assert Post.objects.count() == 1
    assert Comment.objects.count() == 0
    assert IdempotencyKey.objects.count() == 0


@pytest.mark.django_db
def test_keys_are_scoped_per_route_and_per_post(client):
    one, two = PostFactory(), PostFactory()
    for target in (one, two):
        response = send(client, comments_path(target), {"body": "b"}, "k")
        assert response.status_code == 201
        assert not response.has_header(REPLAYED)
    response = send(client, "/api/posts/", {"body": "b", "title": "t"}, "k")
    assert response.status_code == 201
    assert Comment.objects.count() == 2
    assert IdempotencyKey.objects.count() == 3


@pytest.mark.django_db
def test_a_refused_request_records_no_key_and_can_be_retried(client):
    assert send(client, "/api/posts/", {"title": "", "body": "b"}, "k").status_code == 400
    unknown = f"/api/posts/{uuid.uuid4()}/comments/"
    assert send(client, unknown, {"body": "b"}, "k").status_code == 404
    assert IdempotencyKey.objects.count() == 0
    assert send(client, "/api/posts/", {"title": "fixed", "body": "b"}, "k").status_code == 201


@pytest.mark.django_db
def test_without_a_key_nothing_is_recorded(client):
    send(client, "/api/posts/", {"title": "t", "body": "b"})
    send(client, "/api/posts/", {"title": "t", "body": "b"})
    assert Post.objects.count() == 2
    assert IdempotencyKey.objects.count() == 0


# --- the store ----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_expired_key_is_free_again_and_purged(client):
    assert send(client, "/api/posts/", {"title": "t", "body": "b"}, "k").status_code == 201
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    again = send(client, "/api/posts/", {"title": "t", "body": "b"}, "k")
    assert again.status_code == 201
    assert not again.has_header(REPLAYED)
    assert Post.objects.count() == 2
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert STORE.purge(now=timezone.now()) == 1
    assert IdempotencyKey.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_key_is_committed_with_the_creation_or_not_at_all(client, monkeypatch):
    """A failure after the creation, before the commit (here: the key's insert
    refused), leaves neither the post nor the key."""

    def refuse(*args, **kwargs):
        raise RuntimeError("crash before the commit")

    monkeypatch.setattr(IdempotencyKey.objects, "create", refuse)
    assert send(client, "/api/posts/", {"title": "t", "body": "b"}, "k").status_code == 500
    assert Post.objects.count() == 0
    assert IdempotencyKey.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_post_deleted_before_a_keyed_comment_commits_is_a_404(client, monkeypatch):
    """Inside the key's transaction the foreign key is checked before the
    commit: a post deleted after the existence check is a 404, not a 500."""
    from monolith.posts import api as posts_api

    post = PostFactory()

    def exists_then_vanishes(*, post_id):
        found = Post.objects.filter(pk=post_id).exists()

        def delete() -> None:  # another request, in its own connection, commits a delete
            try:
                Post.objects.filter(pk=post_id).delete()
            finally:
                connection.close()

        other = threading.Thread(target=delete)
        other.start()
        other.join(timeout=10)
        return found

    monkeypatch.setattr(posts_api, "post_exists", exists_then_vanishes)
    response = send(client, comments_path(post), {"body": "too late"}, "k")
    assert response.status_code == 404
    assert Comment.objects.count() == 0
    assert Post.objects.count() == 0
    assert IdempotencyKey.objects.count() == 0


def race(path: str, payload: dict, key: str, monkeypatch) -> list:
    """Two requests with one key at once, each in its own thread and database
    connection; both get past the look-up before either creates."""
    barrier = threading.Barrier(2)
    find = STORE.find
    waited: set[str] = set()

    def slow_find(scope, key, *, now):
        found = find(scope, key, now=now)
        if threading.current_thread().name not in waited:
            waited.add(threading.current_thread().name)
            barrier.wait(timeout=10)
        return found

    monkeypatch.setattr(STORE, "find", slow_find)
    responses: list = []

    def run() -> None:
        try:
            responses.append(send(Client(), path, payload, key))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, name=f"race-{n}") for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return responses


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_posts_with_one_key_create_one(monkeypatch):
    responses = race("/api/posts/", {"title": "t", "body": "b"}, "k", monkeypatch)
    assert [r.status_code for r in responses] == [201, 201]
    assert responses[0].json() == responses[1].json()
    assert sorted(r.get(REPLAYED, "") for r in responses) == ["", "true"]
    assert Post.objects.count() == 1
    assert IdempotencyKey.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_comments_with_one_key_create_one(monkeypatch):
    post = PostFactory()
    responses = race(comments_path(post), {"body": "b"}, "k", monkeypatch)
    assert [r.status_code for r in responses] == [201, 201]
    assert responses[0].json() == responses[1].json()
    assert Comment.objects.count() == 1
    assert IdempotencyKey.objects.count() == 1
