"""Stage 3 in the monolith: post events out through the outbox, comment
events in through the inbox into a counter; the posts app's code unchanged."""

import time
import uuid

import pytest
from django.db import transaction

from blogbus.envelope import COMMENT_CREATED, COMMENT_DELETED, POST_CREATED, POST_DELETED, Envelope
from blogbus.inbox.services import consume_once
from blogbus.outbox.models import OutboxEvent
from blogtest.ports import free_port
from monolith.comments import api, events
from monolith.comments.models import CommentCount
from monolith.posts import services as post_services
from monolith.posts.tests.factories import PostFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def stage3(settings):
    settings.COMMENTS_BACKEND = "service"
    settings.COMMENT_COUNTS = "async"
    settings.PUBLISH_EVENTS = True
    # Any call to the comments service would fail: stage 3 must not make one.
    settings.COMMENTS_URL = f"http://127.0.0.1:{free_port()}"


def comment_event(event_type, post_id):
    return Envelope.new(
        type=event_type,
        source="/services/comments",
        data={
            "id": str(uuid.uuid4()),
            "post_id": str(post_id),
            "created_at": "2026-01-01T00:00:00.000Z",
        },
    )


def test_post_events_go_into_the_outbox_with_the_change(stage3):
    post = post_services.post_create(title="Hello", body="World")
    [created] = OutboxEvent.objects.filter(type=POST_CREATED)
    envelope = created.envelope()
    assert envelope.source == "/monolith"
    assert envelope.data["id"] == str(post.id)
    assert envelope.data["title"] == "Hello"
    assert envelope.data["created_at"].endswith("Z")
    post_services.post_delete(post_id=post.id)
    [deleted] = OutboxEvent.objects.filter(type=POST_DELETED)
    assert deleted.envelope().data == {"id": str(post.id)}


def test_a_rolled_back_post_leaves_no_event(stage3):
    def create_then_fail():
        with transaction.atomic():
            post_services.post_create(title="Hello", body="World")
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        create_then_fail()
    assert not OutboxEvent.objects.exists()


def test_no_events_before_stage_3(settings):
    settings.PUBLISH_EVENTS = False
    post_services.post_create(title="Hello", body="World")
    assert not OutboxEvent.objects.exists()


def test_comment_events_keep_the_count_once_each():
    post_id = uuid.uuid4()
    first, second = comment_event(COMMENT_CREATED, post_id), comment_event(COMMENT_CREATED, post_id)
    assert consume_once(first, events.comment_created)
    assert not consume_once(first, events.comment_created)  # redelivered: no second effect
    assert consume_once(second, events.comment_created)
    assert CommentCount.objects.get(post_id=post_id).count == 2
    assert consume_once(comment_event(COMMENT_DELETED, post_id), events.comment_deleted)
    assert CommentCount.objects.get(post_id=post_id).count == 1


def test_the_count_never_goes_below_zero():
    post_id = uuid.uuid4()
    consume_once(comment_event(COMMENT_CREATED, post_id), events.comment_created)
    for _ in range(3):
        consume_once(comment_event(COMMENT_DELETED, post_id), events.comment_deleted)
    assert CommentCount.objects.get(post_id=post_id).count == 0


def test_the_post_list_reads_the_kept_counts_without_a_call(
    client, stage3, django_assert_num_queries
):
    posts = PostFactory.create_batch(3)
    CommentCount.objects.create(post_id=posts[1].id, count=4)
    started = time.monotonic()
    with django_assert_num_queries(3):
        page = client.get("/api/posts/").json()
    assert time.monotonic() - started < 1
    counts = {p["id"]: p["comment_count"] for p in page["results"]}
    assert counts == {str(posts[0].id): 0, str(posts[1].id): 4, str(posts[2].id): 0}
    assert api.comment_counts(post_ids=[posts[1].id]) == {posts[1].id: 4}


def test_a_deleted_posts_counter_goes_and_no_call_is_made(
    client, stage3, django_capture_on_commit_callbacks
):
    post = PostFactory()
    CommentCount.objects.create(post_id=post.id, count=2)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert client.delete(f"/api/posts/{post.id}/").status_code == 204
    assert callbacks == []  # the post.deleted event does the comments' part
    assert not CommentCount.objects.filter(post_id=post.id).exists()
