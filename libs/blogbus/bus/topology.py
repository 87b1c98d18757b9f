"""The broker topology of `blog.events`, as data, and its idempotent declaration.

    blog.events (topic, durable) --key--> <service>.blog-events (durable queue)
        x-dead-letter-exchange    = blog.events.dlx
        x-dead-letter-routing-key = <service>.blog-events.dlq
    blog.events.dlx (direct, durable) --<service>.blog-events.dlq--> <service>.blog-events.dlq

Retries and replays reach a service's queue through the default exchange
(routing key = the queue's name), so no other service sees them.
Declaring is idempotent: every consumer declares its own part at start-up,
and `manage.py bus_declare` does it as a deploy step, before any producer
publishes, so no event is dropped for lack of a binding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import kombu

EXCHANGE = "blog.events"
DEAD_LETTER_EXCHANGE = "blog.events.dlx"
_SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# Routing keys of a topic binding: dot-separated words, `*` and `#` wildcards.
_BINDING_KEY = re.compile(r"^(\*|#|[A-Za-z0-9_-]+)(\.(\*|#|[A-Za-z0-9_-]+))*$")


def queue_name(service: str) -> str:
    return f"{service}.blog-events"


def dead_letter_queue_name(service: str) -> str:
    return f"{service}.blog-events.dlq"


@dataclass(frozen=True)
class Topology:
    """Everything one service needs on the broker; `bindings` are routing keys (event types)."""

    service: str
    bindings: tuple[str, ...]
    exchange_name: str = EXCHANGE
    dead_letter_exchange_name: str = DEAD_LETTER_EXCHANGE

    def __post_init__(self) -> None:
        if not _SERVICE_NAME.match(self.service):
            raise ValueError(f"invalid service name {self.service!r} (lowercase, digits, - _)")
        for key in self.bindings:
            if not _BINDING_KEY.match(key):
                raise ValueError(f"invalid binding key {key!r}")

    @property
    def queue_name(self) -> str:
        return queue_name(self.service)

    @property
    def dead_letter_queue_name(self) -> str:
        return dead_letter_queue_name(self.service)

    @property
    def exchange(self) -> kombu.Exchange:
        return kombu.Exchange(self.exchange_name, type="topic", durable=True)

    @property
    def dead_letter_exchange(self) -> kombu.Exchange:
        return kombu.Exchange(self.dead_letter_exchange_name, type="direct", durable=True)

    @property
    def queue(self) -> kombu.Queue:
        """The service's queue (declared without bindings; `declare` binds each key)."""
        return kombu.Queue(
            self.queue_name,
            durable=True,
            auto_delete=False,
            no_declare=False,
            queue_arguments={
                "x-dead-letter-exchange": self.dead_letter_exchange_name,
                "x-dead-letter-routing-key": self.dead_letter_queue_name,
            },
        )

    @property
    def dead_letter_queue(self) -> kombu.Queue:
        return kombu.Queue(
            self.dead_letter_queue_name,
            exchange=self.dead_letter_exchange,
            routing_key=self.dead_letter_queue_name,
            durable=True,
            auto_delete=False,
        )

    def declare(self, channel) -> None:
        """Declare exchanges, both queues and every binding; safe to repeat."""
        self.exchange(channel).declare()
        self.dead_letter_exchange(channel).declare()
        self.dead_letter_queue(channel).declare()
        queue = self.queue(channel)
        queue.declare()
        for key in self.bindings:
            queue.bind_to(exchange=self.exchange_name, routing_key=key)


def declare_topology(
    connection: kombu.Connection, service: str, bindings: Iterable[str], **names: str
) -> Topology:
    """Declare `service`'s part of the topology on its own channel; returns the Topology."""
    topology = Topology(service=service, bindings=tuple(dict.fromkeys(bindings)), **names)
    channel = connection.channel()
    try:
        topology.declare(channel)
    finally:
        channel.close()
    return topology
