"""blogbus.publisher.EnvelopePublisher: publishing an envelope without an
OutboxEvent row (the outbox of a service on MongoDB), on the real RabbitMQ."""

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from blogbus.envelope import COMMENT_CREATED, COMMENT_DELETED, Envelope
from blogbus.publisher import BrokerUnavailable, EnvelopePublisher
from blogbus.relay import OutboxRelay, RelayConfig
from blogtest.ports import free_port

LIBS = Path(__file__).resolve().parents[1]


# RabbitMQ and the embedded profile's filesystem:// broker (broker_url in conftest).
both_brokers = pytest.mark.parametrize("broker_url", ["amqp", "filesystem"], indirect=True)


def comment_created() -> Envelope:
    return Envelope.new(
        type=COMMENT_CREATED,
        source="/services/comments",
        data={
            "id": str(uuid.uuid4()),
            "post_id": str(uuid.uuid4()),
            "created_at": "2026-11-25T18:30:00.123Z",
        },
    )


@pytest.fixture
def publisher(exchange, broker_url):
    made = EnvelopePublisher(broker_url, exchange.name)
    yield made
    made.close()


@both_brokers
def test_an_acked_envelope_is_on_the_bound_queue_as_the_relay_sends_it(
    publisher, make_queue, drain
):
    queue = make_queue(COMMENT_CREATED)
    envelope = comment_created()

    assert publisher.publish_envelope(envelope) is None  # acked (publisher confirms)
    assert publisher.publish_envelope(comment_created()) is None  # the connection is reused

    first, _ = drain(queue, 2)
    assert json.loads(first.body) == envelope.to_dict()
    assert first.delivery_info["routing_key"] == COMMENT_CREATED
    assert first.content_type == "application/cloudevents+json"
    assert first.properties["delivery_mode"] == 2
    assert first.properties["message_id"] == envelope.id


@both_brokers
def test_publish_json_sends_a_stored_envelope_unchanged(publisher, make_queue, drain):
    queue = make_queue(COMMENT_CREATED)
    envelope = comment_created()
    stored = envelope.to_json()
    assert (
        publisher.publish_json(
            stored, message_id=envelope.id, event_type=envelope.type, routing_key=envelope.type
        )
        is None
    )
    [message] = drain(queue, 1)
    # py-amqp decodes a utf-8 body to str, kombu's virtual transports leave bytes.
    body = message.body.decode() if isinstance(message.body, bytes) else message.body
    assert body == stored


@both_brokers
def test_an_unroutable_envelope_is_reported_not_lost_silently(publisher, make_queue):
    make_queue(COMMENT_CREATED)  # bound to another key only
    envelope = Envelope.new(
        type=COMMENT_DELETED,
        source="/services/comments",
        data={"id": str(uuid.uuid4()), "post_id": str(uuid.uuid4())},
    )
    error = publisher.publish_envelope(envelope)
    assert error is not None
    assert error.startswith("unroutable")
    # The publisher stays usable.
    assert publisher.publish_envelope(envelope, routing_key=COMMENT_CREATED) is None


def test_an_unreachable_broker_raises_broker_unavailable():
    port = free_port()  # nothing listens there: connections are refused
    publisher = EnvelopePublisher(f"amqp://guest:guest@127.0.0.1:{port}//", connect_timeout=2)
    try:
        with pytest.raises(BrokerUnavailable):
            publisher.publish_envelope(comment_created())
    finally:
        publisher.close()


def test_the_relay_publishes_through_it():
    relay = OutboxRelay(RelayConfig(broker_url=settings.BLOGBUS_BROKER_URL))
    try:
        assert isinstance(relay._publisher, EnvelopePublisher)
    finally:
        relay._publisher.close()


def test_importing_it_needs_no_django_model():
    """A service without blogbus.outbox in INSTALLED_APPS (no SQL database) can use it."""
    code = (
        "import sys, blogbus.publisher, blogbus.bus.consumer, blogbus.bus.worker\n"
        "loaded = [m for m in sys.modules if m.startswith(('blogbus.outbox', 'blogbus.inbox'))]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=LIBS, check=True, timeout=60)
