"""Fixtures of the blogbus tests: real PostgreSQL (pytest-django) and real RabbitMQ.

Every broker object a test makes has a unique name (`*.test-<hex>`) and is
deleted afterwards, so runs never see each other's messages.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import kombu
import psycopg
import pytest
from django.conf import settings
from django.db import connection

from blogbus import broker as blogbus_broker
from blogbus.relay import OutboxRelay, RelayConfig
from blogtest.postgres import another_session
from blogtest.timing import wait_until


@pytest.fixture
def broker_url(request, tmp_path_factory) -> str:
    """RabbitMQ (settings.BLOGBUS_BROKER_URL), unless a test is parametrized with
    `pytest.mark.parametrize("broker_url", ["amqp", "filesystem"], indirect=True)`:
    then also a filesystem:// broker in a folder of that test."""
    if getattr(request, "param", "amqp") == "filesystem":
        return blogbus_broker.filesystem_url(tmp_path_factory.mktemp("bus"))
    return settings.BLOGBUS_BROKER_URL


@pytest.fixture
def broker(broker_url: str) -> Iterator[kombu.Connection]:
    connection = blogbus_broker.connection(broker_url, confirms=False)
    connection.connect()
    yield connection
    connection.release()


@pytest.fixture
def exchange(broker: kombu.Connection) -> Iterator[kombu.Exchange]:
    """A topic exchange of this test only, declared as the relay declares `blog.events`."""
    declared = kombu.Exchange(f"blog.events.test-{uuid.uuid4().hex[:12]}", "topic", durable=True)
    channel = broker.channel()
    bound = declared(channel)
    bound.declare()
    yield declared
    bound.delete()
    channel.close()


@pytest.fixture
def make_queue(broker: kombu.Connection, exchange: kombu.Exchange):
    """Declare a queue bound to the test exchange by the given keys; deleted at teardown."""
    channel = broker.channel()
    made: list[kombu.Queue] = []

    def make(*keys: str, arguments: dict | None = None) -> kombu.Queue:
        name = f"blogbus.test-{uuid.uuid4().hex[:12]}"
        queue = kombu.Queue(name, exchange=exchange, routing_key=keys[0], queue_arguments=arguments)
        bound = queue(channel)
        bound.declare()
        for key in keys[1:]:
            bound.bind_to(exchange=exchange, routing_key=key)
        made.append(bound)
        return bound

    yield make
    for queue in made:
        queue.delete()
    channel.close()


@pytest.fixture
def relay_config(exchange: kombu.Exchange, broker_url: str) -> RelayConfig:
    return RelayConfig.from_settings(
        exchange=exchange.name, broker_url=broker_url, sweep_interval=1.0
    )


@pytest.fixture
def relay(relay_config: RelayConfig) -> Iterator[OutboxRelay]:
    made = OutboxRelay(relay_config)
    yield made
    made.close()


def _drain(queue: kombu.Queue, count: int, *, timeout: float = 10.0) -> list[kombu.Message]:
    """Get `count` messages from `queue`, polling with a deadline."""
    got: list[kombu.Message] = []

    def enough() -> bool:
        while len(got) < count:
            message = queue.get(no_ack=True)
            if message is None:
                return False
            got.append(message)
        return True

    wait_until(enough, timeout_s=timeout, what=f"{count} message(s) on {queue.name}")
    return got


@pytest.fixture(name="wait_for")
def wait_for_fixture():
    return wait_until


@pytest.fixture(name="drain")
def drain_fixture():
    return _drain


@pytest.fixture
def pg_connect():
    """Open another session on the test database (autocommit unless told otherwise)."""
    opened: list[psycopg.Connection] = []

    def connect(*, autocommit: bool = True) -> psycopg.Connection:
        other = another_session(connection, autocommit=autocommit)
        opened.append(other)
        return other

    yield connect
    for other in opened:
        other.close()


class FlakyBrokerProxy:
    """A TCP proxy to the broker that a test can cut and restore: the broker 'goes down'.

    The shared RabbitMQ itself is never stopped; only this test's connections break.
    `hold_answers` stops what the broker sends from reaching the client (until
    `cut` or `close`): a cut then finds nothing of it on the client's side.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.up = True
        self._closed = False
        self._answering = threading.Event()
        self._answering.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self.port = self._server.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.up:
                client.close()  # refused while "down"
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink, gate in (
                (client, upstream, None),
                (upstream, client, self._answering),
            ):
                threading.Thread(target=self._pipe, args=(source, sink, gate), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, gate: threading.Event | None) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if gate is not None:
                    gate.wait()
                sink.sendall(chunk)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def hold_answers(self) -> None:
        self._answering.clear()

    def cut(self) -> None:
        self.up = False
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for end in sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()
        self._answering.set()  # what was held goes nowhere: its sockets are closed

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._acceptor.join(timeout=5)
        self._server.close()


@pytest.fixture
def broker_proxy() -> Iterator[FlakyBrokerProxy]:
    url = urlsplit(settings.BLOGBUS_BROKER_URL)
    proxy = FlakyBrokerProxy((url.hostname or "127.0.0.1", url.port or 5672))
    yield proxy
    proxy.close()
