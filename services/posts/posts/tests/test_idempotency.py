"""Idempotency-Key on POST /api/posts/ (the monolith's
monolith/idempotency/tests/, for the posts service's own table): replay, 422,
400, the key committed with the post and its event or not at all, and two
concurrent requests with one key creating one post."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from blogbus.outbox.models import OutboxEvent
from blogweb import idempotency
from posts.idempotency import STORE
from posts.models import IdempotencyKey, Post

REPLAYED = "Idempotent-Replayed"
PAYLOAD = {"title": "t", "body": "b"}


def send(client, payload, key=None):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(
        "/api/posts/", data=json.dumps(payload), content_type="application/json", **headers
    )


@pytest.fixture(autouse=True)
def _fresh_purge_clock():
    idempotency._last_purge.clear()


@pytest.mark.django_db
def test_a_post_retried_with_its_key_is_created_once_with_one_event(client):
    key = str(uuid.uuid4())
    first = send(client, PAYLOAD, key)
    again = client.post(
        "/api/posts/",
        data='{"body":"b","title":"t"}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again[REPLAYED] == "true"
    assert not first.has_header(REPLAYED)
    assert Post.objects.count() == 1
    assert OutboxEvent.objects.filter(type="post.created").count() == 1
    row = IdempotencyKey.objects.get()
    assert (row.scope, row.key, row.status, row.body) == ("posts", key, 201, first.json())


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_json_422(client):
    assert send(client, PAYLOAD, "k").status_code == 201
    reused = send(client, {**PAYLOAD, "body": "other"}, "k")
    assert reused.status_code == 422
    assert "different request body" in reused.json()["detail"]
    assert Post.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "k" * 256, "\u00e9t\u00e9"])
def test_a_malformed_key_is_a_json_400(client, key):
    response = send(client, PAYLOAD, key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]
    assert Post.objects.count() == 0
    assert IdempotencyKey.objects.count() == 0


@pytest.mark.django_db
def test_a_refused_post_records_no_key(client):
    assert send(client, {"title": "", "body": "b"}, "k").status_code == 400
    assert IdempotencyKey.objects.count() == 0
    assert send(client, PAYLOAD, "k").status_code == 201


@pytest.mark.django_db
def test_an_expired_key_is_free_again_and_purged(client):
    send(client, PAYLOAD, "k")
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    again = send(client, PAYLOAD, "k")
    assert again.status_code == 201
    assert not again.has_header(REPLAYED)
    assert Post.objects.count() == 2
    IdempotencyKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert STORE.purge(now=timezone.now()) == 1


@pytest.mark.django_db(transaction=True)
def test_the_key_is_committed_with_the_post_or_not_at_all(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("crash before the commit")

    monkeypatch.setattr(IdempotencyKey.objects, "create", refuse)
    assert send(client, PAYLOAD, "k").status_code == 500
    assert Post.objects.count() == 0
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_create_one_post(monkeypatch):
    barrier = threading.Barrier(2)
    find = STORE.find
    waited: set[str] = set()

    def slow_find(scope, key, *, now):
        found = find(scope, key, now=now)
        if threading.current_thread().name not in waited:  # both get past the look-up
            waited.add(threading.current_thread().name)
            barrier.wait(timeout=10)
        return found

    monkeypatch.setattr(STORE, "find", slow_find)
    responses: list = []

    def run() -> None:
        try:
            responses.append(send(Client(), PAYLOAD, "k"))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, name=f"race-{n}") for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [r.status_code for r in responses] == [201, 201]
    assert responses[0].json() == responses[1].json()
    assert sorted(r.get(REPLAYED, "") for r in responses) == ["", "true"]
    assert Post.objects.count() == 1
    assert OutboxEvent.objects.filter(type="post.created").count() == 1
    assert IdempotencyKey.objects.count() == 1
