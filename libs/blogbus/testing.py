"""For tests of anything that talks to the broker: a virtual host of the
test session's own on a shared RabbitMQ, so that its exchanges, queues and
messages meet nobody else's, deleted afterwards (needs `rabbitmqctl` on the
broker's machine; the project's test machines have it, `.ci/run` starts the
broker); and publishing a message the way the outbox relay does. A broker
of a test's own, for tests that stop it, is another matter."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit, urlunsplit

import kombu

from blogbus.bus.topology import EXCHANGE
from blogbus.envelope import Envelope


def _rabbitmqctl(*args: str) -> None:
    # A fixed tool with arguments of our own making.
    subprocess.run(  # noqa: S603
        ["rabbitmqctl", *args],  # noqa: S607
        check=True,
        capture_output=True,
        timeout=60,
    )


@contextmanager
def temporary_vhost(broker_url: str, prefix: str) -> Iterator[str]:
    """Yields ``broker_url`` pointed at a new vhost ``<prefix>-<hex>``."""
    if shutil.which("rabbitmqctl") is None:
        # A test that cannot isolate itself must not pass by doing less.
        raise RuntimeError("rabbitmqctl is needed to make a vhost for the tests")
    base = urlsplit(broker_url)
    vhost = f"{prefix}-{uuid.uuid4().hex[:12]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, base.username or "guest", ".*", ".*", ".*")
        yield urlunsplit((base.scheme, base.netloc, "/" + quote(vhost, safe=""), "", ""))
    finally:
        _rabbitmqctl("delete_vhost", vhost)


def publish_as_relay(
    connection: kombu.Connection,
    body: str | bytes,
    routing_key: str,
    *,
    message_id: str | None = None,
    exchange: str = EXCHANGE,
) -> None:
    """Publishes ``body`` as the outbox relay does: to ``blog.events``,
    structured CloudEvents content, persistent, mandatory."""
    with connection.channel() as channel:
        kombu.Producer(channel).publish(
            body,
            exchange=exchange,
            routing_key=routing_key,
            content_type="application/cloudevents+json",
            content_encoding="utf-8",
            delivery_mode=2,
            mandatory=True,
            **({"message_id": message_id} if message_id else {}),
        )


def publish_envelope(connection: kombu.Connection, envelope: Envelope) -> None:
    """Publishes an envelope as the relay does (its type is the routing key)."""
    publish_as_relay(connection, envelope.to_json(), envelope.type, message_id=envelope.id)


def queue_counts(connection: kombu.Connection, name: str) -> tuple[int, int]:
    """(messages ready, consumers) of queue ``name``, by a passive declare."""
    channel = connection.channel()
    try:
        _, messages, consumers = channel.queue_declare(queue=name, passive=True)
    finally:
        channel.close()
    return messages, consumers
