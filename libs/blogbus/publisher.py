"""Publishing CloudEvents envelopes to the topic exchange, without a database.

`EnvelopePublisher` is what the relay loop (`blogbus.relay.Relay`) publishes
with, whatever its store; it is usable on its own too:

    publisher = EnvelopePublisher(broker_url, exchange="blog.events")
    error = publisher.publish_envelope(envelope)  # None: acked by the broker
    if error is None:
        mark_sent(...)  # only now
    publisher.close()

`publish_many(events)` publishes a batch with its confirms pipelined: every
message is written, then the acks are awaited together (by delivery tag, as
RabbitMQ sends them, one for several with `multiple`), so a batch of 100 costs
one wait for the broker instead of 100. It answers per event id; when the
broker goes away in the middle, `BrokerUnavailable.answered` holds what was
answered before (an ack there is an ack: the event may be marked sent).

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
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import kombu
import kombu.exceptions
from amqp.exceptions import ChannelError
from amqp.exceptions import ConnectionError as AMQPConnectionError

from blogbus import broker
from blogbus.envelope import STRUCTURED_CONTENT_TYPE, Envelope

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_EXCHANGE = "blog.events"
_AMQP_ERRORS = (AMQPConnectionError, ChannelError)


class BrokerUnavailable(Exception):
    """The broker could not be reached or dropped the connection mid-batch.

    `answered`: what the broker answered before that, by event id (None: acked;
    else why not), as `publish_many` returns it. Events not in it were not
    answered: they may or may not have reached a queue.
    """

    def __init__(self, message: str, answered: dict[str, str | None] | None = None) -> None:
        super().__init__(message)
        self.answered: dict[str, str | None] = dict(answered or {})


class OutgoingEvent(Protocol):
    """What `publish_many` publishes: a stored envelope and where it goes
    (`blogbus.relay.Pending` is one)."""

    @property
    def event_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def routing_key(self) -> str: ...
    @property
    def body(self) -> str: ...  # the envelope, as JSON


@dataclass(frozen=True)
class Outgoing:
    event_id: str
    type: str
    routing_key: str
    body: str


def _in_order(
    events: Sequence[OutgoingEvent], answered: dict[str, str | None]
) -> dict[str, str | None]:
    """The answers in the order the events were given (acks come as they come)."""
    return {e.event_id: answered[e.event_id] for e in events if e.event_id in answered}


def _unroutable(routing_key: str, exchange: str) -> str:
    return f"unroutable: no queue bound to {routing_key!r} on {exchange!r}"


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
        # RabbitMQ only (None on the filesystem broker): the py-amqp channel in
        # confirm mode, the delivery tag of its last publish (tags count from 1 on
        # a channel), the events published and not yet answered by tag, and the
        # answers of the batch being published.
        self._channel: Any = None
        self._last_tag = 0
        self._unconfirmed: dict[int, OutgoingEvent] = {}
        self._answered: dict[str, str | None] = {}

    def _ensure(self) -> kombu.Producer:
        if self._producer is not None:
            return self._producer
        try:
            connection = broker.connection(self.broker_url, connect_timeout=self.connect_timeout)
            # One attempt, no retry loop: the caller's own backoff paces reconnections.
            connection.ensure_connection(
                max_retries=0, interval_start=0, reraise_as_library_errors=False
            )
        except (kombu.exceptions.OperationalError, *_AMQP_ERRORS, OSError) as exc:
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        try:
            channel = connection.channel()
            exchange = kombu.Exchange(self.exchange, type="topic", durable=True)
            exchange.declare(channel=channel)
            self._producer = kombu.Producer(
                channel, exchange=exchange, on_return=self._on_return, auto_declare=False
            )
            if not broker.is_filesystem(self.broker_url):
                # Confirm mode from the start, so that delivery tags count from 1
                # (py-amqp's flag says it is selected; it would select it again).
                channel.confirm_select()
                channel._confirm_selected = True
                channel.events["basic_ack"].add(self._on_ack)
                channel.events["basic_nack"].add(self._on_nack)
                self._channel = channel
        except Exception as exc:
            connection.release()
            self._producer = self._channel = None
            if isinstance(exc, (kombu.exceptions.OperationalError, *_AMQP_ERRORS, OSError)):
                raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
            raise
        self._connection = connection
        self._last_tag = 0
        self._unconfirmed = {}
        return self._producer

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        # RabbitMQ sends basic.return before the basic.ack of the same message,
        # so it is known by the time that ack is read.
        self._returned.add(message.properties.get("message_id", ""))

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._answer(delivery_tag, multiple, None)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._answer(delivery_tag, multiple, "nacked by the broker")

    def _answer(self, delivery_tag: int, multiple: bool, error: str | None) -> None:
        tags = [t for t in self._unconfirmed if t <= delivery_tag] if multiple else [delivery_tag]
        for tag in tags:
            event = self._unconfirmed.pop(tag, None)
            if event is None:
                continue
            answer = error
            if event.event_id in self._returned:
                self._returned.discard(event.event_id)
                answer = answer or _unroutable(event.routing_key, self.exchange)
            self._answered[event.event_id] = answer

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
        return self.publish_many([Outgoing(message_id, event_type, routing_key, body)])[message_id]

    def publish_many(self, events: Sequence[OutgoingEvent]) -> dict[str, str | None]:
        """Publish events in order and wait for their confirms: by event id, None
        when acked, else why not ('unroutable...', 'nacked...', 'refused...').

        Raises BrokerUnavailable, holding what was answered before, when the
        broker cannot be reached, the connection breaks, or the confirms have
        not all come `confirm_timeout` seconds after the last publish.
        """
        if not events:
            return {}
        try:
            self._ensure()
            if self._channel is None:
                answered = self._publish_each(events)
            else:
                answered = self._publish_pipelined(events)
        except BrokerUnavailable as exc:
            exc.answered = _in_order(events, exc.answered)
            raise
        return _in_order(events, answered)

    def _publish_pipelined(self, events: Sequence[OutgoingEvent]) -> dict[str, str | None]:
        channel = self._channel
        self._answered = answered = {}
        try:
            for event in events:
                self._returned.discard(event.event_id)
                message = channel.prepare_message(
                    event.body.encode(),
                    content_type=STRUCTURED_CONTENT_TYPE,
                    content_encoding="utf-8",
                    headers={},
                    properties={
                        "delivery_mode": 2,
                        "message_id": event.event_id,
                        "type": event.type,
                    },
                )
                channel._basic_publish(
                    message,
                    exchange=self.exchange,
                    routing_key=event.routing_key,
                    mandatory=True,
                )
                self._last_tag += 1
                self._unconfirmed[self._last_tag] = event
            deadline = time.monotonic() + self.confirm_timeout
            while self._unconfirmed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no confirm within {self.confirm_timeout} s")
                self._connection.drain_events(timeout=remaining)
        except ChannelError as exc:
            # The broker closed the channel over a publish (exchange gone, message
            # too large, ...); which one, it does not say. Alone, it is refused;
            # in a batch, each event not answered is published alone again.
            self.close()
            if len(events) == 1:
                answered[events[0].event_id] = f"refused by the broker: {type(exc).__name__}: {exc}"
                return answered
            for event in events:
                if event.event_id in answered:
                    continue
                try:
                    answered.update(self.publish_many([event]))
                except BrokerUnavailable as down:
                    raise BrokerUnavailable(str(down), answered) from down
            return answered
        except (kombu.exceptions.OperationalError, AMQPConnectionError, OSError) as exc:
            # Connection refused or lost, confirm timeout: drop it and let the caller back off.
            self.close()
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}", answered) from exc
        return answered

    def _publish_each(self, events: Sequence[OutgoingEvent]) -> dict[str, str | None]:
        """The filesystem broker: a publish returns once the message is stored."""
        answered: dict[str, str | None] = {}
        for event in events:
            self._returned.discard(event.event_id)
            try:
                self._ensure().publish(
                    event.body,
                    routing_key=event.routing_key,
                    mandatory=True,
                    delivery_mode=2,
                    content_type=STRUCTURED_CONTENT_TYPE,
                    content_encoding="utf-8",
                    message_id=event.event_id,
                    type=event.type,
                    retry=False,
                )
            except ChannelError as exc:
                # The folder could not take it (full disk, ...): retried later.
                self.close()
                answered[event.event_id] = f"refused by the broker: {type(exc).__name__}: {exc}"
                continue
            except BrokerUnavailable as exc:
                raise BrokerUnavailable(str(exc), answered) from exc
            except (kombu.exceptions.OperationalError, AMQPConnectionError, OSError) as exc:
                self.close()
                raise BrokerUnavailable(f"{type(exc).__name__}: {exc}", answered) from exc
            if event.event_id in self._returned:
                self._returned.discard(event.event_id)
                answered[event.event_id] = _unroutable(event.routing_key, self.exchange)
            else:
                answered[event.event_id] = None
        return answered

    def close(self) -> None:
        if self._connection is not None:
            # A broken connection is being dropped anyway.
            with contextlib.suppress(Exception):
                self._connection.release()
        self._connection = None
        self._producer = None
        self._channel = None
        self._unconfirmed = {}
