"""Idempotency-Key on POST /api/posts/{id}/comments/, on the MongoDB-wire
server: the key lives in the comment's own document under a unique sparse
index, so the comment and its key are one insert, and of two concurrent
requests with one key only one comment is stored."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from blogweb import idempotency
from blogweb.idempotency import KeyTaken
from blogweb.timeutil import now_ms
from comments import repository
from comments.idempotency import STORE

REPLAYED = "Idempotent-Replayed"


@pytest.fixture
def post(fake_posts) -> str:
    return fake_posts.add(uuid.uuid4())


@pytest.fixture(autouse=True)
def _fresh_purge_clock():
    idempotency._last_purge.clear()


def send(client, post_id, payload, key=None):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(
        f"/api/posts/{post_id}/comments/",
        data=json.dumps(payload),
        content_type="application/json",
        **headers,
    )


def field(key: str, *, expires_in: timedelta = timedelta(hours=1)) -> repository.IdempotencyField:
    return repository.IdempotencyField(
        id=f"comments:x {key}", fingerprint="f" * 64, expires_at=datetime.now(UTC) + expires_in
    )


# --- the route ------------------------------------------------------------------


def test_a_comment_retried_with_its_key_is_created_once(client, post, mongo_collection):
    key = str(uuid.uuid4())
    first = send(client, post, {"body": "hello"}, key)
    again = client.post(
        f"/api/posts/{post}/comments/",
        data='{ "body" : "hello" }',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again[REPLAYED] == "true"
    assert not first.has_header(REPLAYED)
    assert mongo_collection.count_documents({}) == 1
    doc = mongo_collection.find_one({})
    assert doc["idempotency"]["id"] == f"comments:{post} {key}"


def test_the_same_key_with_another_body_is_a_json_422(client, post, mongo_collection):
    assert send(client, post, {"body": "a"}, "k").status_code == 201
    reused = send(client, post, {"body": "b"}, "k")
    assert reused.status_code == 422
    assert "different request body" in reused.json()["detail"]
    assert mongo_collection.count_documents({}) == 1


@pytest.mark.parametrize("key", ["", "k" * 256, "\u00e9"])
def test_a_malformed_key_is_a_json_400(client, post, mongo_collection, key):
    response = send(client, post, {"body": "a"}, key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]
    assert mongo_collection.count_documents({}) == 0


def test_keys_are_scoped_per_post(client, fake_posts, mongo_collection):
    for _ in range(2):
        response = send(client, fake_posts.add(uuid.uuid4()), {"body": "a"}, "k")
        assert response.status_code == 201
        assert not response.has_header(REPLAYED)
    assert mongo_collection.count_documents({}) == 2


def test_an_unknown_post_records_nothing(client, fake_posts, mongo_collection):
    unknown = str(uuid.uuid4())
    assert send(client, unknown, {"body": "a"}, "k").status_code == 404
    fake_posts.add(unknown)
    assert send(client, unknown, {"body": "a"}, "k").status_code == 201


def test_without_a_key_the_document_has_no_key(client, post, mongo_collection):
    for _ in range(2):
        assert send(client, post, {"body": "a"}).status_code == 201
    assert mongo_collection.count_documents({"idempotency": {"$exists": True}}) == 0
    assert mongo_collection.count_documents({}) == 2


def test_an_expired_key_is_free_again(client, post, mongo_collection):
    assert send(client, post, {"body": "a"}, "k").status_code == 201
    past = datetime.now(UTC) - timedelta(seconds=1)
    mongo_collection.update_many({}, {"$set": {"idempotency.expires_at": past}})
    again = send(client, post, {"body": "a"}, "k")
    assert again.status_code == 201
    assert not again.has_header(REPLAYED)
    assert mongo_collection.count_documents({}) == 2
    assert mongo_collection.count_documents({"idempotency": {"$exists": True}}) == 1


def test_two_concurrent_requests_with_one_key_store_one_comment(
    post, mongo_collection, monkeypatch
):
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
    threads = [
        threading.Thread(
            target=lambda: responses.append(send(Client(), post, {"body": "a"}, "k")),
            name=f"race-{n}",
        )
        for n in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [r.status_code for r in responses] == [201, 201]
    assert responses[0].json() == responses[1].json()
    assert sorted(r.get(REPLAYED, "") for r in responses) == ["", "true"]
    assert mongo_collection.count_documents({}) == 1


# --- the repository ---------------------------------------------------------------


def insert(key: str | None, **kwargs) -> repository.CommentRecord:
    return repository.comment_insert(
        comment_id=uuid.uuid4(),
        post_id=uuid.uuid4(),
        body="b",
        created_at=now_ms(),
        idempotency=None if key is None else field(key, **kwargs),
    )


def test_the_unique_index_lets_one_comment_hold_a_key(mongo_collection):
    insert("k")
    with pytest.raises(KeyTaken):
        insert("k")
    insert(None)
    insert(None)  # comments without a key are not in the (sparse) index
    assert mongo_collection.count_documents({}) == 3


def test_a_key_is_found_with_its_fingerprint_until_it_expires(mongo_collection):
    created = insert("k")
    now = datetime.now(UTC)
    found = repository.comment_find_by_idempotency_key(scoped_key="comments:x k", now=now)
    assert found == (created, "f" * 64)
    later = now + timedelta(hours=2)
    assert repository.comment_find_by_idempotency_key(scoped_key="comments:x k", now=later) is None
    # Released: the comment stays, without its key, and the key is free.
    assert mongo_collection.count_documents({"_id": str(created.id), "idempotency": None}) == 1
    insert("k")


def test_expired_keys_are_released_in_bulk(mongo_collection):
    insert("old", expires_in=timedelta(seconds=-1))
    insert("new")
    assert STORE.purge(now=datetime.now(UTC)) == 1
    assert mongo_collection.count_documents({"idempotency": {"$exists": True}}) == 1
    assert mongo_collection.count_documents({}) == 2
