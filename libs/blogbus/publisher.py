"""Publishing one CloudEvents envelope to the topic exchange, without a database.

`EnvelopePublisher` is what the relay loop (`blogbus.relay.Relay`) publishes
with, whatever its store; it is usable on its own too:

    publisher = EnvelopePublisher(broker_url, exchange="blog.events")
    error = publisher.publish_envelope(envelope)  # None: acked by the broker
    if error is None:
        mark_sent(...)  # only now
    publisher.close()

(an outbox that is not an `OutboxEvent` row, e.g. the pending event inside a
MongoDB document, is better served by a `blogbus.relay.OutboxStore` and the
shared loop: back-offs, outages and `--once` come with it).

Each message: exchange declared durable topic, routing key = event type (unless
given), body = the envelope JSON, content type `application/cloudevents+json`,
`delivery_mode=2`, `message_id` = event id, publisher confirms, `mandatory=True`.
`publish_envelope` returns None once the broker acked the message, a reason
when it came back unroutable (no queue bound: `basic.return`), was nacked or
refused; it raises `BrokerUnavailable` when the broker cannot be reached or
the connection breaks (never the event's fault). Imports no Django model.
"""

from __future__ import annotations

import contextlib
from typing import Any

import kombu
import kombu.exceptions
from amqp.exceptions import ChannelError, MessageNacked
from amqp.exceptions import ConnectionError as AMQPConnectionError

from blogbus import broker
from blogbus.envelope import STRUCTURED_CONTENT_TYPE, Envelope

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_EXCHANGE = "blog.events"
_AMQP_ERRORS = (AMQPConnectionError, ChannelError)


class BrokerUnavailable(Exception):
    """The broker could not be reached or dropped the connection mid-batch."""


class EnvelopePublisher:
    """One connection and one confirm-mode channel to the broker, reused across publishes."""

    def __init__(
        self,
        broker_url: str = DEFAULT_BROKER_URL,
        exchange: str = DEFAULT_EXCHANGE,
        *,
        connect_timeout: float = 5.0,
        confirm_timeout: float = 10.0,
    ) -> None:
        self.broker_url = broker_url
        self.exchange = exchange
        self.connect_timeout = connect_timeout
        self.confirm_timeout = confirm_timeout
        self._connection: kombu.Connection | None = None
        self._producer: kombu.Producer | None = None
        self._returned: set[str] = set()

    def _ensure(self) -> kombu.Producer:
        if self._producer is not None:
            return self._producer
        connection = broker.connection(self.broker_url, connect_timeout=self.connect_timeout)
        try:
            # One attempt, no retry loop: the caller's own backoff paces reconnections.
            connection.ensure_connection(
                max_retries=0, interval_start=0, reraise_as_library_errors=False
            )
            channel = connection.channel()
            exchange = kombu.Exchange(self.exchange, type="topic", durable=True)
            exchange.declare(channel=channel)
            self._producer = kombu.Producer(
                channel, exchange=exchange, on_return=self._on_return, auto_declare=False
            )
        except Exception:
            connection.release()
            raise
        self._connection = connection
        return self._producer

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        # RabbitMQ sends basic.return before the basic.ack of the same message,
        # so it has arrived by the time publish() returns.
        self._returned.add(message.properties.get("message_id", ""))

    def publish_envelope(self, envelope: Envelope, *, routing_key: str | None = None) -> str | None:
        """Publish one envelope and wait for its confirm: None when acked, else why it was not.

        Raises BrokerUnavailable when the broker cannot be reached or the
        connection breaks.
        """
        return self.publish_json(
            envelope.to_json(),
            message_id=envelope.id,
            event_type=envelope.type,
            routing_key=routing_key or envelope.type,
        )

    def publish_json(
        self, body: str, *, message_id: str, event_type: str, routing_key: str
    ) -> str | None:
        """As `publish_envelope`, for an envelope already serialised (e.g. stored as JSON)."""
        self._returned.discard(message_id)
        try:
            producer = self._ensure()
        except (kombu.exceptions.OperationalError, *_AMQP_ERRORS, OSError) as exc:
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        try:
            producer.publish(
                body,
                routing_key=routing_key,
                mandatory=True,
                delivery_mode=2,
                content_type=STRUCTURED_CONTENT_TYPE,
                content_encoding="utf-8",
                message_id=message_id,
                type=event_type,
                confirm_timeout=self.confirm_timeout,
                retry=False,
            )
        except MessageNacked:
            return "nacked by the broker"
        except ChannelError as exc:
            # The broker closed the channel over this publish (exchange gone, message
            # too large, ...): the connection may be fine, the event is retried later.
            self.close()
            return f"refused by the broker: {type(exc).__name__}: {exc}"
        except (kombu.exceptions.OperationalError, AMQPConnectionError, OSError) as exc:
            # Connection refused or lost, confirm timeout: drop it and let the caller back off.
            self.close()
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if message_id in self._returned:
            self._returned.discard(message_id)
            return f"unroutable: no queue bound to {routing_key!r} on {self.exchange!r}"
        return None

    def close(self) -> None:
        if self._connection is not None:
            # A broken connection is being dropped anyway.
            with contextlib.suppress(Exception):
                self._connection.release()
        self._connection = None
        self._producer = None
