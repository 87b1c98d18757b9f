"""comment.created: stored inside the comment document by the same insert, and
published by the comments outbox relay (real RabbitMQ, a vhost of the session)
with confirms and mandatory, removed from the document only after the ack."""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Iterator

import kombu
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

    def make(url: str = broker_url) -> CommentsOutboxRelay:
        publisher = EnvelopePublisher(url, exchange_name, connect_timeout=2, confirm_timeout=5)
        made.append(publisher)
        return CommentsOutboxRelay(publisher, sweep_interval=0.5)

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
    publish = relay.publisher.publish_json

    def publish_and_look(*args, **kwargs):
        result = publish(*args, **kwargs)  # returns after the broker's confirm
        seen.append("outbox" in mongo_collection.find_one({"_id": comment["id"]}))
        return result

    relay.publisher.publish_json = publish_and_look
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
