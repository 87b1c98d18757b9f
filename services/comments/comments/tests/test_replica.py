"""POST_LOOKUP=async: the replica of posts fed by post events (comments.events),
its tombstones, and the read-through to the owner of posts on a miss."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from blogbus.envelope import POST_CREATED, POST_DELETED, Envelope, EnvelopeError
from comments import events, post_lookup, repository, services

from .factories import make_comment

# Who published a post event does not matter to the handlers: they read its data.
SOURCE = "/monolith"
SERVICE_DIR = Path(__file__).resolve().parents[2]


def post_created(post_id: uuid.UUID, **data) -> Envelope:
    return Envelope.new(
        type=POST_CREATED,
        source=SOURCE,
        data={"id": str(post_id), "title": "t", "created_at": "2026-11-25T18:30:00.120Z", **data},
    )


def post_deleted(post_id: uuid.UUID, *, at: datetime | None = None) -> Envelope:
    return Envelope.new(type=POST_DELETED, source=SOURCE, data={"id": str(post_id)}, time=at)


@pytest.fixture
def async_mode(settings):
    settings.POST_LOOKUP = "async"


# --- handlers: idempotent by construction ------------------------------------------


def test_post_created_adds_the_post_once(replica_collection):
    post_id = uuid.uuid4()
    event = post_created(post_id)
    events.on_post_created(event)
    events.on_post_created(event)  # the same event redelivered
    events.on_post_created(post_created(post_id))  # a duplicate under another event id
    docs = list(replica_collection.find({}))
    assert len(docs) == 1
    assert docs[0]["_id"] == str(post_id)
    assert docs[0]["deleted"] is False
    assert docs[0]["created_at"] == datetime(2026, 11, 25, 18, 30, 0, 120000, tzinfo=UTC)


def test_post_deleted_twice_is_one_tombstone(replica_collection):
    post_id = uuid.uuid4()
    events.on_post_created(post_created(post_id))
    first = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)
    events.on_post_deleted(post_deleted(post_id, at=first))
    events.on_post_deleted(post_deleted(post_id, at=first - timedelta(minutes=1)))  # an older one
    docs = list(replica_collection.find({}))
    assert len(docs) == 1
    assert docs[0]["deleted"] is True
    assert docs[0]["deleted_at"] == first  # $max: never moves back


def test_a_late_post_created_cannot_resurrect_a_deleted_post(replica_collection, async_mode):
    post_id = uuid.uuid4()
    events.on_post_deleted(post_deleted(post_id))  # arrives first: out of order
    events.on_post_created(post_created(post_id))
    events.on_post_created(post_created(post_id))
    doc = replica_collection.find_one({"_id": str(post_id)})
    assert doc["deleted"] is True
    assert post_lookup.post_exists(post_id) is False


def test_post_deleted_removes_the_posts_comments_only(mongo_collection):
    post_id, other = uuid.uuid4(), uuid.uuid4()
    events.on_post_created(post_created(post_id))
    for _ in range(3):
        make_comment(post_id=post_id)
    make_comment(post_id=other)
    events.on_post_deleted(post_deleted(post_id))
    assert mongo_collection.count_documents({"post_id": str(post_id)}) == 0
    assert mongo_collection.count_documents({"post_id": str(other)}) == 1
    events.on_post_deleted(post_deleted(post_id))  # redelivered: nothing more to do
    assert mongo_collection.count_documents({"post_id": str(other)}) == 1


@pytest.mark.parametrize("bad_id", [None, 12, "nope", {"$gt": ""}])
def test_a_payload_without_a_uuid_id_raises_and_stores_nothing(replica_collection, bad_id):
    event = Envelope.new(type=POST_DELETED, source=SOURCE, data={"id": bad_id})
    with pytest.raises(EnvelopeError):
        events.on_post_deleted(event)
    with pytest.raises(EnvelopeError):
        events.on_post_created(event)
    assert replica_collection.count_documents({}) == 0


# --- lookup in async mode ----------------------------------------------------------


def test_a_replica_hit_needs_no_call_to_posts(client, settings, async_mode, dead_url):
    post_id = uuid.uuid4()
    events.on_post_created(post_created(post_id))
    settings.POSTS_URL = f"http://{dead_url}"  # posts is down
    response = client.post(
        f"/api/posts/{post_id}/comments/",
        data=json.dumps({"body": "hello"}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert client.get(f"/api/posts/{post_id}/comments/").json()["count"] == 1


def test_a_tombstone_is_404_without_asking_posts(client, fake_posts, async_mode):
    post_id = uuid.uuid4()
    fake_posts.add(post_id)  # posts would still say yes (e.g. a stale read)
    events.on_post_deleted(post_deleted(post_id))
    path = f"/api/posts/{post_id}/comments/"
    assert client.get(path).status_code == 404
    response = client.post(path, data=json.dumps({"body": "x"}), content_type="application/json")
    assert response.status_code == 404
    assert fake_posts.requests == []


def test_a_miss_reads_through_and_fills_the_replica(
    client, fake_posts, replica_collection, async_mode
):
    post_id = fake_posts.add(uuid.uuid4())  # created, its post.created not applied yet
    response = client.post(
        f"/api/posts/{post_id}/comments/",
        data=json.dumps({"body": "right after the 201"}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert [r["path"] for r in fake_posts.requests] == [f"/internal/posts/{post_id}/"]
    assert replica_collection.find_one({"_id": post_id})["deleted"] is False
    # Known now: no more calls.
    assert client.get(f"/api/posts/{post_id}/comments/").status_code == 200
    assert len(fake_posts.requests) == 1
    # The post.created that follows changes nothing.
    events.on_post_created(post_created(uuid.UUID(post_id)))
    assert replica_collection.count_documents({}) == 1


def test_a_miss_for_an_unknown_post_is_404_and_not_recorded(
    client, fake_posts, replica_collection, async_mode
):
    response = client.get(f"/api/posts/{uuid.uuid4()}/comments/")
    assert response.status_code == 404
    assert len(fake_posts.requests) == 1
    assert replica_collection.count_documents({}) == 0


def test_a_miss_with_posts_down_is_a_fast_503(
    client, settings, async_mode, dead_url, mongo_collection
):
    settings.POSTS_URL = f"http://{dead_url}"
    started = time.monotonic()
    response = client.post(
        f"/api/posts/{uuid.uuid4()}/comments/",
        data=json.dumps({"body": "hello"}),
        content_type="application/json",
    )
    assert time.monotonic() - started < 1.5
    assert response.status_code == 503
    assert response.json() == {"detail": "Service unavailable: posts is not reachable."}
    assert mongo_collection.count_documents({}) == 0


def test_a_read_through_racing_a_post_deleted_keeps_the_tombstone(replica_collection):
    post_id = uuid.uuid4()
    events.on_post_deleted(post_deleted(post_id))
    assert repository.replica_post_add(post_id=post_id).deleted is True
    assert replica_collection.find_one({"_id": str(post_id)})["deleted"] is True


def test_a_comment_inserted_after_the_tombstone_is_removed(
    monkeypatch, mongo_collection, async_mode
):
    """The check passed, then post.deleted ran, then the insert: the second
    look at the tombstone removes the comment and answers 404."""
    post_id = uuid.uuid4()
    events.on_post_created(post_created(post_id))
    real_insert = repository.comment_insert

    def insert_after_the_delete(**kwargs):
        events.on_post_deleted(post_deleted(post_id))
        return real_insert(**kwargs)

    monkeypatch.setattr(repository, "comment_insert", insert_after_the_delete)
    with pytest.raises(services.PostNotFound):
        services.comment_create(post_id=post_id, body="too late")
    assert mongo_collection.count_documents({}) == 0


# --- the owner of posts' delete call: the deletion known before its event ---------


def test_the_owners_delete_call_tombstones_the_post_at_once(
    client, caller, fake_posts, replica_collection, mongo_collection, async_mode
):
    """The replica holds the post live and its post.deleted has not arrived:
    the owner's DELETE /internal/posts/{id}/comments/ alone makes the next
    comment a 404, without asking the owner (which would still say yes here,
    a stale read)."""
    post_id = uuid.uuid4()
    events.on_post_created(post_created(post_id))
    fake_posts.add(post_id)
    make_comment(post_id=post_id)
    assert caller.delete(f"/internal/posts/{post_id}/comments/").status_code == 204
    assert replica_collection.find_one({"_id": str(post_id)})["deleted"] is True
    path = f"/api/posts/{post_id}/comments/"
    response = client.post(path, data=json.dumps({"body": "x"}), content_type="application/json")
    assert response.status_code == 404
    assert client.get(path).status_code == 404
    assert mongo_collection.count_documents({"post_id": str(post_id)}) == 0
    assert fake_posts.requests == []
    # Its post.deleted, arriving later, changes nothing more.
    events.on_post_deleted(post_deleted(post_id))
    assert replica_collection.count_documents({"_id": str(post_id), "deleted": True}) == 1


def test_an_insert_racing_the_owners_delete_call_is_removed(
    monkeypatch, mongo_collection, async_mode
):
    """The check passed, then the owner's delete call ran, then the insert:
    the tombstone it wrote first is seen by the second look."""
    post_id = uuid.uuid4()
    events.on_post_created(post_created(post_id))
    real_insert = repository.comment_insert

    def insert_after_the_delete_call(**kwargs):
        services.comments_delete_of_post(post_id=post_id)
        return real_insert(**kwargs)

    monkeypatch.setattr(repository, "comment_insert", insert_after_the_delete_call)
    with pytest.raises(services.PostNotFound):
        services.comment_create(post_id=post_id, body="too late")
    assert mongo_collection.count_documents({}) == 0


def test_in_sync_mode_the_owners_delete_call_keeps_no_replica(caller, settings, replica_collection):
    settings.POST_LOOKUP = "sync"
    assert caller.delete(f"/internal/posts/{uuid.uuid4()}/comments/").status_code == 204
    assert replica_collection.count_documents({}) == 0


def test_started_alone_the_service_reads_the_replica_as_make_up_runs_it():
    """POST_LOOKUP unset: async, the mode `make up` and the deployments run
    from the stage that has events on (sync is said where it is wanted)."""
    unset = ("POST_LOOKUP", "DJANGO_SETTINGS_MODULE")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v0", "-c",
         "from django.conf import settings; print(settings.POST_LOOKUP)"],
        cwd=SERVICE_DIR, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["async"]


def test_sync_mode_never_reads_the_replica(client, settings, fake_posts, replica_collection):
    settings.POST_LOOKUP = "sync"
    post_id = uuid.uuid4()
    events.on_post_deleted(post_deleted(post_id))  # ignored in sync mode
    fake_posts.add(post_id)
    assert client.get(f"/api/posts/{post_id}/comments/").status_code == 200
    assert len(fake_posts.requests) == 1
