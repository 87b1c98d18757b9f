"""What a service does with each delivery from its queue (transport-agnostic core).

`EventHandler.on_message(message)` is given a raw kombu message (never decoded
by kombu: the body is a CloudEvents JSON envelope, content type
`application/cloudevents+json`, not a Celery task) and always settles it:

- not an envelope (EnvelopeError): rejected without requeue -> dead-letter queue;
- a type this service has no handler for: acked and ignored;
- handled: `consume_once` runs the handler and records the inbox row in one
  transaction, then the message is acked (after the commit: a crash before the
  ack redelivers it, and the inbox makes the second run a no-op); with
  `inbox=False` the handler runs alone (it must be idempotent by construction:
  a redelivery runs it again), then the message is acked;
- the handler raised: a copy goes back to this service's own queue only
  (default exchange, routing key = the queue's name, `x-retries` + 1,
  published with confirms) and then the original is acked; once `x-retries`
  reaches `max_retries`, the message is rejected without requeue -> DLQ.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kombu
from django.db import DEFAULT_DB_ALIAS, close_old_connections
from django.utils.module_loading import import_string

from blogbus import broker
from blogbus.bus.topology import queue_name
from blogbus.envelope import Envelope, EnvelopeError

logger = logging.getLogger("blogbus.bus")

RETRIES_HEADER = "x-retries"
DEFAULT_MAX_RETRIES = 3
DEFAULT_RETRY_DELAY = 0.2

Handler = Callable[[Envelope], object]


def log_json(event: str, **fields: Any) -> None:
    logger.info(json.dumps({"event": event, **fields}, separators=(",", ":"), default=str))


def consume_once(envelope: Envelope, handler: Handler, *, using: str = DEFAULT_DB_ALIAS) -> bool:
    """`blogbus.inbox.services.consume_once`, imported on first use: a service that runs
    its handlers without the inbox (`inbox=False`) has no `blogbus.inbox` app installed."""
    from blogbus.inbox.services import consume_once as inbox_consume_once

    return inbox_consume_once(envelope, handler, using=using)


def resolve_handler(spec: str | Handler) -> Handler:
    """A callable, or its dotted path (`pkg.module.func` or `pkg.module:func`)."""
    if callable(spec):
        return spec
    if not isinstance(spec, str) or not spec:
        raise TypeError(f"a handler is a callable or a dotted path, not {spec!r}")
    return import_string(spec.replace(":", "."))


def retries_of(message: kombu.Message) -> int:
    value = (message.headers or {}).get(RETRIES_HEADER, 0)
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def copy_properties(message: kombu.Message, *, retries: int) -> dict[str, Any]:
    """Publish arguments that resend `message` unchanged but for the `x-retries` header.

    Broker-written headers (`x-death`, `x-first-death-*`, ...) are dropped.
    """
    headers = {
        name: value for name, value in (message.headers or {}).items() if not name.startswith("x-")
    }
    headers[RETRIES_HEADER] = retries
    properties = message.properties or {}
    kept = {
        name: properties[name]
        for name in ("message_id", "correlation_id", "type", "timestamp", "app_id")
        if properties.get(name) is not None
    }
    return {
        "headers": headers,
        "content_type": message.content_type or "application/octet-stream",
        "content_encoding": message.content_encoding or "binary",
        "delivery_mode": 2,
        **kept,
    }


@dataclass
class OwnQueuePublisher:
    """Publishes to one service's queue through the default exchange, with publisher confirms.

    Its own connection (confirm mode), opened lazily and reused; separate from
    the consuming connection so a confirm wait never runs inside the worker's
    event loop drain of that connection.
    """

    broker_url: str
    service: str
    connect_timeout: float = 5.0
    confirm_timeout: float = 10.0
    _connection: kombu.Connection | None = None
    _producer: kombu.Producer | None = field(default=None, repr=False)

    def _ensure(self) -> kombu.Producer:
        if self._producer is None:
            connection = broker.connection(self.broker_url, connect_timeout=self.connect_timeout)
            try:
                connection.ensure_connection(max_retries=1, interval_start=0.2)
                self._producer = kombu.Producer(connection.channel(), auto_declare=False)
            except Exception:
                connection.release()
                raise
            self._connection = connection
        return self._producer

    def publish(self, body: bytes, **properties: Any) -> None:
        try:
            self._ensure().publish(
                body,
                exchange="",
                routing_key=queue_name(self.service),
                mandatory=True,
                timeout=self.confirm_timeout,
                **properties,
            )
        except Exception:
            self.close()  # reconnect next time
            raise

    def close(self) -> None:
        if self._connection is not None:
            self._connection.release()
        self._connection = None
        self._producer = None


class EventHandler:
    """Settles each delivery of `<service>.blog-events`; see the module docstring."""

    def __init__(
        self,
        service: str,
        handlers: Mapping[str, str | Handler],
        *,
        publisher: OwnQueuePublisher,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_delay: float = DEFAULT_RETRY_DELAY,
        using: str = DEFAULT_DB_ALIAS,
        inbox: bool = True,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.service = service
        self.handlers = {event_type: resolve_handler(spec) for event_type, spec in handlers.items()}
        self.publisher = publisher
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.using = using
        # False: the handlers are idempotent by construction (e.g. upserts keyed by id in
        # a database without multi-document transactions) and run without the inbox.
        self.inbox = inbox

    def _apply(self, envelope: Envelope, handler: Handler) -> bool:
        if self.inbox:
            return consume_once(envelope, handler, using=self.using)
        handler(envelope)
        return True

    def on_message(self, message: kombu.Message) -> str:
        """Handle and settle one message; returns what was done (for logs and tests)."""
        try:
            envelope = Envelope.from_json(message.body)
        except EnvelopeError as exc:
            log_json("bus.poison", service=self.service, error=str(exc))
            message.reject(requeue=False)
            return "dead-lettered"
        handler = self.handlers.get(envelope.type)
        if handler is None:
            message.ack()
            return "ignored"
        fields = {"service": self.service, "type": envelope.type, "id": envelope.id}
        close_old_connections()  # a worker outlives database connections
        try:
            applied = self._apply(envelope, handler)
        except Exception as exc:
            close_old_connections()
            return self._retry_or_dead_letter(message, exc, fields)
        message.ack()
        log_json("bus.applied" if applied else "bus.duplicate", **fields)
        return "applied" if applied else "duplicate"

    def _retry_or_dead_letter(self, message: kombu.Message, exc: Exception, fields: dict) -> str:
        retries = retries_of(message)
        error = f"{type(exc).__name__}: {exc}"
        if retries >= self.max_retries:
            log_json("bus.dead_lettered", retries=retries, error=error, **fields)
            message.reject(requeue=False)
            return "dead-lettered"
        if self.retry_delay > 0:
            time.sleep(self.retry_delay)
        try:
            self.publisher.publish(message.body, **copy_properties(message, retries=retries + 1))
        except Exception as publish_exc:
            log_json("bus.retry_failed", error=f"{type(publish_exc).__name__}: {publish_exc}")
            message.requeue()
            return "requeued"
        message.ack()
        log_json("bus.retry", retries=retries + 1, error=error, **fields)
        return "retried"

    def close(self) -> None:
        self.publisher.close()
