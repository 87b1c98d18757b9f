"""The posts service on the event bus: post events through the outbox and the
relay, the comment counter kept from comment events (COMMENT_COUNTS=async).

Real PostgreSQL and the real RabbitMQ, in a vhost of this test session
(``rabbitmqctl add_vhost posts-test-<hex>``, deleted at the end; or
``POSTS_TEST_BROKER_URL``), so the queue names (``posts.blog-events``) never
meet another suite's or a running posts worker's. The worker is
a real ``manage.py bus_consume --service posts`` process; every wait polls
with a deadline.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import kombu
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils.module_loading import import_string

from blogbus.bus.consumer import EventHandler, OwnQueuePublisher
from blogbus.bus.topology import EXCHANGE, dead_letter_queue_name, declare_topology, queue_name
from blogbus.envelope import (
    COMMENT_CREATED,
    COMMENT_DELETED,
    POST_CREATED,
    POST_DELETED,
    Envelope,
    format_time,
)
from blogbus.inbox.services import consume_once
from blogbus.outbox.models import OutboxEvent
from blogbus.relay import OutboxRelay, RelayConfig
from blogbus.testing import publish_envelope, temporary_vhost
from blogtest.postgres import another_session
from blogtest.timing import wait_until
from posts import services
from posts.models import CommentCount, Post
from posts.tests.factories import PostFactory
from posts.tests.test_settings import manage

SERVICE_DIR = Path(__file__).resolve().parents[2]
SERVICE = "posts"
COMMENTS_SOURCE = "/services/comments"
DEAD_PORT_URL = "http://127.0.0.1:9"


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """A vhost of this session only (deleted at the end). Without
    ``rabbitmqctl`` (CI with a broker container of its own), set
    ``POSTS_TEST_BROKER_URL`` to a broker or vhost nobody else uses: the tests
    delete ``posts.blog-events`` there."""
    if os.environ.get("POSTS_TEST_BROKER_URL"):
        yield os.environ["POSTS_TEST_BROKER_URL"]
        return
    with temporary_vhost(settings.BLOGBUS_BROKER_URL, "posts-test") as url:
        yield url


@pytest.fixture
def amqp(broker_url: str) -> Iterator[kombu.Connection]:
    conn = kombu.Connection(broker_url, connect_timeout=5)
    conn.ensure_connection(max_retries=2, interval_start=0.2)
    yield conn
    with contextlib.suppress(Exception):  # the service's queues go with the test
        channel = conn.channel()
        for name in (queue_name(SERVICE), dead_letter_queue_name(SERVICE)):
            channel.queue_delete(name)
        channel.close()
    conn.release()


def comment_event(event_type: str, post_id: uuid.UUID | str, comment_id: str | None = None):
    data = {"id": comment_id or str(uuid.uuid4()), "post_id": str(post_id)}
    if event_type == COMMENT_CREATED:
        data["created_at"] = "2026-11-25T19:00:00.000Z"
    return Envelope.new(type=event_type, source=COMMENTS_SOURCE, data=data)


def counter(post_id: uuid.UUID) -> int | None:
    return CommentCount.objects.filter(post_id=post_id).values_list("count", flat=True).first()


# --- producer: the outbox ------------------------------------------------------------


@pytest.mark.django_db
def test_creating_a_post_appends_one_post_created_event(client):
    response = client.post(
        "/api/posts/",
        {"title": "Hello", "body": "World"},
        content_type="application/json",
        HTTP_X_REQUEST_ID="req-create-1",
    )
    assert response.status_code == 201
    post = Post.objects.get(pk=response.json()["id"])

    [event] = OutboxEvent.objects.all()
    assert (event.type, event.routing_key, event.status) == (POST_CREATED, POST_CREATED, "pending")
    envelope = event.envelope().to_dict()
    assert envelope == {
        "specversion": "1.0",
        "id": str(event.event_id),
        "source": "/services/posts",
        "type": "post.created",
        "time": envelope["time"],
        "datacontenttype": "application/json",
        "requestid": "req-create-1",
        "data": {"id": str(post.id), "title": "Hello", "created_at": format_time(post.created_at)},
    }
    assert Envelope.from_dict(envelope).time.endswith("Z")
    assert response.json()["created_at"] == envelope["data"]["created_at"]


@pytest.mark.django_db
def test_deleting_a_post_appends_one_post_deleted_event_and_drops_its_counter(client):
    post, other = PostFactory.create_batch(2)
    CommentCount.objects.bulk_create(
        [CommentCount(post_id=post.id, count=3), CommentCount(post_id=other.id, count=1)]
    )

    response = client.delete(f"/api/posts/{post.id}/", HTTP_X_REQUEST_ID="req-delete-1")

    assert response.status_code == 204
    [event] = OutboxEvent.objects.all()
    assert (event.type, event.source, event.request_id) == (
        POST_DELETED,
        "/services/posts",
        "req-delete-1",
    )
    assert event.data == {"id": str(post.id)}
    assert counter(post.id) is None
    assert counter(other.id) == 1


@pytest.mark.django_db
def test_a_rolled_back_create_or_a_failed_delete_writes_no_event():
    def create_then_fail() -> None:
        with transaction.atomic():
            services.post_create(title="t", body="b")
            raise RuntimeError("the caller's transaction fails after the create")

    with pytest.raises(RuntimeError):
        create_then_fail()
    with pytest.raises(services.PostNotFound):
        services.post_delete(post_id=uuid.uuid4())
    assert Post.objects.count() == 0
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db
def test_events_are_written_in_sync_mode_too(settings):
    settings.COMMENT_COUNTS = "sync"
    post = services.post_create(title="t", body="b")
    services.post_delete(post_id=post.id)
    assert list(OutboxEvent.objects.order_by("id").values_list("type", flat=True)) == [
        POST_CREATED,
        POST_DELETED,
    ]


# --- the relay ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_relay_publishes_post_created_to_blog_events(amqp, broker_url):
    channel = amqp.channel()
    exchange = kombu.Exchange(EXCHANGE, type="topic", durable=True)
    queue = kombu.Queue(f"posts.test-{uuid.uuid4().hex[:12]}", exchange, routing_key=POST_CREATED)
    bound = queue(channel)
    bound.declare()
    relay = OutboxRelay(RelayConfig.from_settings(broker_url=broker_url))
    try:
        post = services.post_create(title="Relayed", body="b")
        stats = relay.run_once()
        assert (stats.claimed, stats.published) == (1, 1)

        message = wait_until(lambda: bound.get(no_ack=True), what="the event in the queue")
        envelope = Envelope.from_json(message.body)
        row = OutboxEvent.objects.get()
        assert (envelope.id, envelope.type, envelope.source) == (
            str(row.event_id),
            POST_CREATED,
            "/services/posts",
        )
        assert envelope.data["id"] == str(post.id)
        assert message.delivery_info["routing_key"] == POST_CREATED
        assert message.content_type == "application/cloudevents+json"
        assert row.status == "sent"
    finally:
        relay.close()
        bound.delete()
        channel.close()


# --- consumer: the comment counter ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_comment_events_change_the_counter_once_even_when_delivered_twice(amqp, broker_url):
    post = PostFactory()
    declare_topology(amqp, SERVICE, [COMMENT_CREATED, COMMENT_DELETED])
    handler = EventHandler(
        SERVICE,
        settings.BLOGBUS_CONSUMERS[SERVICE],
        publisher=OwnQueuePublisher(broker_url, SERVICE),
        max_retries=0,
        retry_delay=0,
    )
    channel = amqp.channel()
    own_queue = kombu.Queue(queue_name(SERVICE))(channel)

    def deliver(envelope: Envelope, times: int = 1) -> list[str]:
        for _ in range(times):
            publish_envelope(amqp, envelope)
        outcomes = []
        for _ in range(times):
            message = wait_until(lambda: own_queue.get(no_ack=False), what="a delivery")
            outcomes.append(handler.on_message(message))
        return outcomes

    try:
        created = comment_event(COMMENT_CREATED, post.id)
        assert deliver(created, times=2) == ["applied", "duplicate"]
        assert counter(post.id) == 1
        assert deliver(comment_event(COMMENT_CREATED, post.id)) == ["applied"]
        assert counter(post.id) == 2

        deleted = comment_event(COMMENT_DELETED, post.id, created.data["id"])
        assert deliver(deleted, times=2) == ["applied", "duplicate"]
        assert counter(post.id) == 1
        assert deliver(comment_event(COMMENT_DELETED, post.id)) == ["applied"]
        assert deliver(comment_event(COMMENT_DELETED, post.id)) == ["applied"]
        assert counter(post.id) == 0  # never below 0

        # A comment on a post that is not here (deleted meanwhile): no counter row.
        unknown = uuid.uuid4()
        assert deliver(comment_event(COMMENT_CREATED, unknown)) == ["applied"]
        assert counter(unknown) is None

        # A payload without a usable post_id: dead-lettered (no retries here), nothing counted.
        bad = Envelope.new(type=COMMENT_CREATED, source=COMMENTS_SOURCE, data={"id": "x"})
        assert deliver(bad) == ["dead-lettered"]
        assert counter(post.id) == 0
        wait_until(
            lambda: (
                channel.queue_declare(queue=dead_letter_queue_name(SERVICE), passive=True)[1] == 1
            ),
            what="the bad event in the DLQ",
        )
    finally:
        handler.close()
        channel.close()


@pytest.mark.django_db(transaction=True)
def test_a_comment_event_racing_the_post_delete_leaves_no_counter_behind():
    """The handler waits for a delete in progress, then finds no post: without the
    lock it would see the old row (READ COMMITTED) and recreate the counter."""
    post = PostFactory()
    deleter = another_session(connection, autocommit=False)
    outcome: list[object] = []

    def handle() -> None:
        try:
            outcome.append(
                consume_once(
                    comment_event(COMMENT_CREATED, post.id),
                    settings_handler(COMMENT_CREATED),
                )
            )
        except Exception as exc:  # reported by the assertion below
            outcome.append(exc)
        finally:
            connection.close()

    try:
        # As post_delete does, in another session: the post, then its counter; not committed.
        deleter.execute("DELETE FROM posts_post WHERE id = %s", [post.id])
        deleter.execute("DELETE FROM posts_commentcount WHERE post_id = %s", [post.id])
        worker = threading.Thread(target=handle)
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive(), outcome  # waiting on the post row's lock
        deleter.commit()
        worker.join(timeout=10)
        assert outcome == [True]
    finally:
        deleter.close()
    assert counter(post.id) is None
    assert not Post.objects.filter(pk=post.id).exists()


def settings_handler(event_type: str) -> Callable[[Envelope], object]:
    return import_string(settings.BLOGBUS_CONSUMERS[SERVICE][event_type])


# --- async mode: reads -----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("page_size", [5, 50])
def test_async_mode_reads_the_counter_in_one_query_and_never_calls_comments(
    client, settings, comments_service, django_assert_num_queries, page_size
):
    settings.COMMENT_COUNTS = "async"
    settings.COMMENTS_URL = DEAD_PORT_URL  # comments is down: nobody listens there
    posts = PostFactory.create_batch(page_size + 2)
    CommentCount.objects.bulk_create(
        [CommentCount(post_id=post.id, count=n + 1) for n, post in enumerate(posts)]
    )
    expected = {str(post.id): n + 1 for n, post in enumerate(posts)}

    with django_assert_num_queries(3):  # the kept total, the page, the page's counts
        response = client.get(f"/api/posts/?page_size={page_size}")
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == page_size
    assert {item["id"]: item["comment_count"] for item in results} == {
        item["id"]: expected[item["id"]] for item in results
    }

    post = posts[3]
    with django_assert_num_queries(2):  # the post, its count
        response = client.get(f"/api/posts/{post.id}/")
    assert (response.status_code, response.json()["comment_count"]) == (200, 4)

    uncounted = PostFactory()
    response = client.get(f"/api/posts/{uncounted.id}/")
    assert (response.status_code, response.json()["comment_count"]) == (200, 0)
    assert comments_service.requests == []


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_both_modes_are_accepted_at_start(tmp_path, mode):
    result = manage("check", DATA_DIR=str(tmp_path), COMMENT_COUNTS=mode)
    assert result.returncode == 0, result.stdout + result.stderr


# --- a real worker ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(90)
def test_a_bus_consume_worker_counts_a_published_comment(
    client, settings, amqp, broker_url, tmp_path
):
    settings.COMMENT_COUNTS = "async"
    settings.COMMENTS_URL = DEAD_PORT_URL
    post = PostFactory()
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "posts_service.settings.test",
        # pytest-django's test database, as it is named in this process.
        "POSTS_TEST_DATABASE_NAME": connection.settings_dict["NAME"],
        "BROKER_URL": broker_url,
    }
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "bus_consume", "--service", SERVICE],
            cwd=SERVICE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def logs() -> str:
        return log_path.read_text(errors="replace")[-4000:]

    def consuming() -> bool:
        if worker.poll() is not None:
            pytest.fail(f"the worker exited with {worker.returncode}\n{logs()}")
        channel = amqp.channel()
        try:
            return channel.queue_declare(queue=queue_name(SERVICE), passive=True)[2] >= 1
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                channel.close()

    def comment_count() -> int:
        response = client.get(f"/api/posts/{post.id}/")
        assert response.status_code == 200
        return response.json()["comment_count"]

    try:
        wait_until(consuming, timeout_s=30, what="the worker consuming posts.blog-events")
        assert comment_count() == 0
        publish_envelope(amqp, comment_event(COMMENT_CREATED, post.id))
        wait_until(lambda: comment_count() == 1, timeout_s=20, what="the counter at 1")
    except BaseException:
        print(logs())
        raise
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=10)
    assert counter(post.id) == 1
    assert "bus.applied" in logs(), logs()


# --- filling the counter of an existing database ----------------------------------------


@pytest.mark.django_db
def test_comment_counts_rebuild_sets_the_counters_from_the_comments_service(comments_service):
    posts = PostFactory.create_batch(5)
    stale, emptied = posts[0], posts[1]
    CommentCount.objects.bulk_create(
        [CommentCount(post_id=stale.id, count=9), CommentCount(post_id=emptied.id, count=2)]
    )
    comments_service.counts = {str(stale.id): 3, str(posts[2].id): 1, str(posts[3].id): 0}
    out = io.StringIO()

    call_command("comment_counts_rebuild", "--batch-size=2", stdout=out)
    call_command("comment_counts_rebuild", "--batch-size=2", stdout=out)  # idempotent

    assert dict(CommentCount.objects.values_list("post_id", "count")) == {
        stale.id: 3,
        posts[2].id: 1,
    }
    assert out.getvalue().splitlines() == ["counted 4 comments on 5 posts"] * 2
    assert len(comments_service.count_calls()) == 6  # 3 pages of 2, twice


@pytest.mark.django_db
def test_comment_counts_rebuild_stops_when_comments_is_down(settings):
    PostFactory()
    settings.COMMENTS_URL = DEAD_PORT_URL
    with pytest.raises(CommandError, match="did not answer after 0 posts"):
        call_command("comment_counts_rebuild")
