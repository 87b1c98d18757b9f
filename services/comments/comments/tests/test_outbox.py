"""comment.created: stored inside the comment document by the same insert, and
published by the comments outbox relay (real RabbitMQ, a vhost of the session)
with confirms and mandatory, removed from the document only after the ack."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
import uuid
from collections.abc import Iterator

import kombu
import pymongo
import pytest
from django.core.management import call_command

from blogbus.envelope import COMMENT_CREATED, Envelope
from blogbus.publisher import BrokerUnavailable, EnvelopePublisher
from blogtest.timing import wait_until
from comments import repository
from comments.outbox_relay import CommentsOutboxRelay


def create_comment(client, post_id: str, body: str = "hello", request_id: str | None = None):
    headers = {"HTTP_X_REQUEST_ID": request_id} if request_id else {}
    response = client.post(
        f"/api/posts/{post_id}/comments/",
        data=json.dumps({"body": body}),
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def exchange_name() -> str:
    return f"blog.events.test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def bound_queue(amqp, exchange_name) -> Iterator[kombu.Queue]:
    """A queue of this test bound to its exchange by comment.created."""
    channel = amqp.channel()
    exchange = kombu.Exchange(exchange_name, type="topic", durable=True)
    exchange(channel).declare()
    queue = kombu.Queue(
        f"comments.test-{uuid.uuid4().hex[:12]}", exchange=exchange, routing_key=COMMENT_CREATED
    )(channel)
    queue.declare()
    yield queue
    queue.delete()
    exchange(channel).delete()
    channel.close()


@pytest.fixture
def make_relay(broker_url, exchange_name):
    made: list[EnvelopePublisher] = []

    def make(url: str = broker_url, **options) -> CommentsOutboxRelay:
        """``options``: CommentsOutboxRelay's (a 0.5 s sweep unless given)."""
        publisher = EnvelopePublisher(url, exchange_name, connect_timeout=2, confirm_timeout=5)
        made.append(publisher)
        return CommentsOutboxRelay(publisher, **{"sweep_interval": 0.5, **options})

    yield make
    for publisher in made:
        publisher.close()


def test_the_comment_document_carries_its_pending_event(client, fake_posts, mongo_collection):
    post_id = fake_posts.add(uuid.uuid4())
    comment = create_comment(client, post_id, request_id="req-outbox-1")
    doc = mongo_collection.find_one({"_id": comment["id"]})
    outbox = doc["outbox"]
    assert outbox["type"] == COMMENT_CREATED
    envelope = Envelope.from_json(outbox["envelope"])
    assert envelope.id == outbox["id"]
    assert envelope.source == "/services/comments"
    assert envelope.requestid == "req-outbox-1"
    assert envelope.data == {
        "id": comment["id"],
        "post_id": post_id,
        "created_at": comment["created_at"],
    }
    assert envelope.time == comment["created_at"]
    # The API never shows it.
    listed = client.get(f"/api/posts/{post_id}/comments/").json()["results"]
    assert set(listed[0]) == {"id", "post_id", "body", "created_at"}


def test_the_relay_publishes_and_unsets_only_after_the_ack(
    client, fake_posts, mongo_collection, bound_queue, make_relay
):
    post_id = fake_posts.add(uuid.uuid4())
    ids = [create_comment(client, post_id, body=f"c{i}")["id"] for i in range(3)]
    assert repository.outbox_pending_count() == 3

    stats = make_relay().run_once()

    assert (stats.due, stats.published, stats.postponed) == (3, 3, 0)
    got = []
    wait_until(
        lambda: (got.append(m) if (m := bound_queue.get(no_ack=True)) else None) or len(got) == 3,
        what="3 messages on the bound queue",
    )
    bodies = [Envelope.from_json(m.body) for m in got]
    assert sorted(e.data["id"] for e in bodies) == sorted(ids)
    for message, envelope in zip(got, bodies, strict=True):
        assert message.delivery_info["routing_key"] == COMMENT_CREATED
        assert message.content_type == "application/cloudevents+json"
        assert message.properties["delivery_mode"] == 2
        assert message.properties["message_id"] == envelope.id
    assert mongo_collection.count_documents({"outbox": {"$exists": True}}) == 0
    assert mongo_collection.count_documents({}) == 3  # the comments stay
    assert make_relay().run_once().due == 0  # nothing left to publish


def test_broker_unreachable_leaves_the_event_pending(
    client, fake_posts, mongo_collection, make_relay, dead_url
):
    post_id = fake_posts.add(uuid.uuid4())
    comment = create_comment(client, post_id)
    relay = make_relay(f"amqp://guest:guest@{dead_url}//")
    with pytest.raises(BrokerUnavailable):
        relay.run_once()
    assert mongo_collection.find_one({"_id": comment["id"]})["outbox"]["attempts"] == 0


def test_an_unroutable_event_stays_pending_with_a_back_off(
    client, fake_posts, mongo_collection, make_relay, amqp, exchange_name
):
    """No queue bound to comment.created: mandatory brings it back; it is kept."""
    post_id = fake_posts.add(uuid.uuid4())
    comment = create_comment(client, post_id)
    relay = make_relay()
    stats = relay.run_once()
    assert (stats.due, stats.published, stats.postponed) == (1, 0, 1)
    outbox = mongo_collection.find_one({"_id": comment["id"]})["outbox"]
    assert outbox["attempts"] == 1
    assert "unroutable" in outbox["last_error"]
    assert relay.run_once().due == 0  # not due again before its back-off
    channel = amqp.channel()
    kombu.Exchange(exchange_name, type="topic")(channel).delete()
    channel.close()


def test_the_relay_command_once(
    client, fake_posts, mongo_collection, bound_queue, broker_url, exchange_name
):
    post_id = fake_posts.add(uuid.uuid4())
    comment = create_comment(client, post_id)
    out = io.StringIO()
    call_command(
        "comments_outbox_relay",
        "--once",
        f"--broker-url={broker_url}",
        f"--exchange={exchange_name}",
        stdout=out,
        stderr=out,
    )
    message = wait_until(lambda: bound_queue.get(no_ack=True), what="the message")
    assert Envelope.from_json(message.body).data["id"] == comment["id"]
    assert "outbox" not in mongo_collection.find_one({"_id": comment["id"]})


def test_the_relay_command_once_exits_1_when_the_broker_is_down(
    client, fake_posts, mongo_collection, dead_url
):
    post_id = fake_posts.add(uuid.uuid4())
    comment = create_comment(client, post_id)
    with pytest.raises(SystemExit) as exit_info:
        call_command("comments_outbox_relay", "--once", f"--broker-url=amqp://{dead_url}//")
    assert exit_info.value.code == 1
    assert "outbox" in mongo_collection.find_one({"_id": comment["id"]})


def test_the_event_is_still_in_the_document_while_it_is_published(
    client, fake_posts, mongo_collection, bound_queue, make_relay
):
    post_id = fake_posts.add(uuid.uuid4())
    comment = create_comment(client, post_id)
    relay = make_relay()
    seen: list[bool] = []
    publish = relay.publisher.publish_many

    def publish_and_look(events):
        answers = publish(events)  # returns after the broker's confirms
        seen.append("outbox" in mongo_collection.find_one({"_id": comment["id"]}))
        return answers

    relay.publisher.publish_many = publish_and_look
    assert relay.run_once().published == 1
    assert seen == [True]  # acked, not yet removed
    assert "outbox" not in mongo_collection.find_one({"_id": comment["id"]})


def test_the_relay_loop_sweeps_new_comments_and_stops(
    client, fake_posts, mongo_collection, bound_queue, make_relay
):
    relay = make_relay()
    stop = threading.Event()
    thread = threading.Thread(target=relay.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        post_id = fake_posts.add(uuid.uuid4())
        comment = create_comment(client, post_id)  # written while the relay runs
        message = wait_until(lambda: bound_queue.get(no_ack=True), what="the swept event")
        assert Envelope.from_json(message.body).data["id"] == comment["id"]
        wait_until(
            lambda: "outbox" not in mongo_collection.find_one({"_id": comment["id"]}),
            what="the event removed from the comment",
        )
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert relay.totals.published == 1


@contextlib.contextmanager
def running(relay: CommentsOutboxRelay) -> Iterator[CommentsOutboxRelay]:
    """The relay's loop in a thread, once it listens and did its first pass."""
    stop = threading.Event()
    thread = threading.Thread(target=relay.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(relay.listening.is_set, what="the relay's first pass")
        yield relay
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def has_change_streams(collection: pymongo.collection.Collection) -> bool:
    """Asked of the server directly: a replica set or SecantusDB has them, a
    standalone mongod (TEST_MONGO_URL in the GitHub workflow) has not."""
    try:
        collection.watch(max_await_time_ms=10).close()
    except pymongo.errors.OperationFailure:
        return False
    return True


# A sweep that never comes within a test: what arrives was woken, not swept.
NO_SWEEP_S = 600.0


def test_a_new_comment_wakes_the_relay_before_its_sweep(
    client, fake_posts, mongo_collection, bound_queue, make_relay
):
    """With change streams, the insert wakes the relay; a standalone refuses
    them, and the relay sweeps at its fallback interval instead."""
    relay = make_relay(sweep_interval=NO_SWEEP_S, fallback_sweep_interval=0.1)
    with running(relay):
        assert relay.store.watching == has_change_streams(mongo_collection)
        comment = create_comment(client, fake_posts.add(uuid.uuid4()))
        message = wait_until(lambda: bound_queue.get(no_ack=True), what="the woken relay's event")
        assert Envelope.from_json(message.body).data["id"] == comment["id"]
    assert "outbox" not in mongo_collection.find_one({"_id": comment["id"]})


def test_without_change_streams_the_relay_says_so_and_sweeps(
    client, fake_posts, mongo_collection, bound_queue, make_relay, monkeypatch, caplog
):
    """What a standalone mongod does, on any server: the watch is refused."""

    def refused(**_options):
        raise repository.ChangeStreamsUnsupported("only supported on replica sets")

    monkeypatch.setattr(repository, "OutboxWatch", refused)
    relay = make_relay(sweep_interval=NO_SWEEP_S, fallback_sweep_interval=0.1)
    with caplog.at_level(logging.INFO, logger="comments.outbox_relay"), running(relay):
        comment = create_comment(client, fake_posts.add(uuid.uuid4()))
        message = wait_until(lambda: bound_queue.get(no_ack=True), what="the swept event")
    assert Envelope.from_json(message.body).data["id"] == comment["id"]
    assert not relay.store.watching
    assert relay.sweep_interval == 0.1
    said = [
        json.loads(r.getMessage()) for r in caplog.records if "relay.sweeping" in r.getMessage()
    ]
    assert len(said) == 1
    assert "replica sets" in said[0]["why"]


def test_a_lost_change_stream_is_opened_again(
    client, fake_posts, mongo_collection, bound_queue, make_relay
):
    """The client under the stream is closed (as when the server restarts):
    the relay opens another stream and still wakes on the next comment. A
    standalone has no stream: the relay sweeps on, on a new client."""
    watching = has_change_streams(mongo_collection)
    relay = make_relay(sweep_interval=NO_SWEEP_S, fallback_sweep_interval=0.1)
    with running(relay):
        first = relay.store._watch
        repository.close_clients()
        if watching:
            wait_until(lambda: relay.store._watch not in (None, first), what="a new change stream")
        comment = create_comment(client, fake_posts.add(uuid.uuid4()))
        message = wait_until(lambda: bound_queue.get(no_ack=True), what="the relay's event")
    assert relay.store.watching == watching
    assert Envelope.from_json(message.body).data["id"] == comment["id"]


def test_a_batch_is_unset_in_one_write_and_only_what_was_acked(
    client, fake_posts, mongo_collection, bound_queue, make_relay
):
    """The broker goes away after two of five acks: those two are removed at
    the batch's end, the other three stay pending."""
    post_id = fake_posts.add(uuid.uuid4())
    ids = [create_comment(client, post_id, body=f"c{i}")["id"] for i in range(5)]
    relay = make_relay()
    publish = relay.publisher.publish_many
    acked: list[str] = []

    def two_then_down(events):
        answers = publish(events[:2])  # acked by the real broker
        acked.extend(Envelope.from_json(event.body).data["id"] for event in events[:2])
        raise BrokerUnavailable("the broker went away", answers)

    relay.publisher.publish_many = two_then_down
    with pytest.raises(BrokerUnavailable):
        relay.run_once()
    pending = {doc["_id"] for doc in mongo_collection.find({"outbox": {"$exists": True}})}
    assert pending == set(ids) - set(acked)
    assert len(pending) == 3


def test_the_bulk_unset_removes_only_the_event_named(client, fake_posts, mongo_collection):
    """Keyed by document and event id: a stale id (an event already replaced)
    removes nothing, and the other documents keep theirs."""
    post_id = fake_posts.add(uuid.uuid4())
    first, second = (create_comment(client, post_id)["id"] for _ in range(2))
    first_event = mongo_collection.find_one({"_id": first})["outbox"]["id"]
    removed = repository.outbox_mark_sent_many([(first, first_event), (second, "not-its-event")])
    assert removed == 1
    assert "outbox" not in mongo_collection.find_one({"_id": first})
    assert "outbox" in mongo_collection.find_one({"_id": second})
    assert repository.outbox_mark_sent_many([]) == 0
