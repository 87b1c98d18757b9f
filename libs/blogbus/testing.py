"""For tests of anything that talks to the broker: a virtual host of the
test session's own on a shared RabbitMQ, so that its exchanges, queues and
messages meet nobody else's, deleted afterwards (needs `rabbitmqctl` on the
broker's machine; the project's test machines have it, `.ci/run` starts the
broker); and publishing a message the way the outbox relay does. A broker
of a test's own, for tests that stop it, is another matter.

A stack's apps get users of their own in that vhost (`temporary_users`), each
allowed what its part of the bus needs (`service_grant`) and nothing else."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import kombu

from blogbus.bus.topology import (
    DEAD_LETTER_EXCHANGE,
    EXCHANGE,
    dead_letter_queue_name,
    queue_name,
)
from blogbus.envelope import Envelope


def _rabbitmqctl(*args: str, stdin: str | None = None) -> None:
    # A fixed tool with arguments of our own making (a secret goes on stdin,
    # not on the command line that `ps` shows).
    subprocess.run(  # noqa: S603
        ["rabbitmqctl", *args],  # noqa: S607
        check=True,
        capture_output=True,
        timeout=60,
        input=stdin,
        text=stdin is not None,
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


# What RabbitMQ's permission regexes match: `^$` matches no name.
NOTHING = "^$"
# Publishing through the default exchange (a retry, a replay) is a write on this name.
DEFAULT_EXCHANGE = "amq.default"


@dataclass(frozen=True)
class Grant:
    """What one user may do in one vhost: RabbitMQ's configure / write / read
    regexes over exchange and queue names, and its topic permissions on
    `blog.events` (regexes over routing keys: the events it may publish, and
    the keys it may bind its queue by)."""

    configure: str = NOTHING
    write: str = NOTHING
    read: str = NOTHING
    publish_keys: str = NOTHING
    bind_keys: str = NOTHING


def any_of(names: Iterable[str], patterns: Iterable[str] = ()) -> str:
    """A regex matching exactly ``names`` (and the regexes ``patterns``), or NOTHING."""
    choices = [re.escape(name) for name in sorted(set(names))] + list(patterns)
    return f"^(?:{'|'.join(choices)})$" if choices else NOTHING


@dataclass(frozen=True)
class _Names:
    """The exchanges and queues (and queue-name patterns) a permission covers."""

    exchanges: frozenset[str] = frozenset()
    queues: frozenset[str] = frozenset()
    queue_patterns: tuple[str, ...] = ()

    def regex(self) -> str:
        return any_of(self.exchanges | self.queues, self.queue_patterns)


def _worker_names(service: str) -> tuple[dict[str, str], str]:
    """The names the service's Celery worker (`bus_consume`) uses besides the
    bus's own, read from the app `make_consumer_app` builds: its control
    (pidbox) exchanges, its event exchange, its task queue and exchange; and
    a regex for its pidbox queue ``<hostname>.<namespace>.pidbox``, the
    hostname being ``<service>@<host>`` (bus_consume's --hostname)."""
    from blogbus.bus.worker import make_consumer_app  # Celery, only for the consumers

    app = make_consumer_app(service, {})
    mailbox = app.control.mailbox
    names = {
        "control": mailbox.exchange.name,
        "reply": mailbox.reply_exchange.name,
        "events": app.conf.event_exchange,
        "task_exchange": app.conf.task_default_exchange,
        "task_queue": app.conf.task_default_queue,
    }
    pidbox = re.escape(f"{service}@") + ".+" + re.escape(f".{mailbox.namespace}.pidbox")
    return names, pidbox


def service_grant(service: str, *, consumes: Iterable[str], publishes: Iterable[str]) -> Grant:
    """What `service`'s processes need on the bus, and no more.

    Publishing (its relay): declare `blog.events` and publish to it, with
    only the routing keys ``publishes`` (topic permissions). Consuming
    (`bus_declare`, `bus_consume`, `bus_replay_dead`; when ``consumes`` names
    keys): declare both exchanges, its own queue and dead-letter queue,
    bind them (write on the queue, read on the exchange; its queue only by
    the keys ``consumes``), consume them, publish retries and replays
    through the default exchange; declaring a queue with a dead-letter
    exchange asks for write on that exchange. And its Celery worker's own
    names (`_worker_names`).

    What RabbitMQ cannot narrow: configure on `blog.events` is also the
    right to delete it, and a write on the default exchange (or on the
    dead-letter exchange) reaches any queue by its name."""
    consumes, publishes = tuple(consumes), tuple(publishes)
    configure, write, read = set(), set(), set()
    if publishes:
        configure.add(EXCHANGE)
        write.add(EXCHANGE)
    patterns: tuple[str, ...] = ()
    if consumes:
        own = {queue_name(service), dead_letter_queue_name(service)}
        worker, pidbox = _worker_names(service)
        patterns = (pidbox,)
        configure |= {EXCHANGE, DEAD_LETTER_EXCHANGE, *own, *worker.values()}
        write |= {DEFAULT_EXCHANGE, DEAD_LETTER_EXCHANGE, *own}
        write |= {worker["reply"], worker["events"], worker["task_queue"]}
        read |= {EXCHANGE, DEAD_LETTER_EXCHANGE, *own}
        read |= {worker["control"], worker["task_exchange"], worker["task_queue"]}
    return Grant(
        configure=any_of(configure, patterns),
        write=any_of(write, patterns),
        read=any_of(read, patterns),
        publish_keys=any_of(publishes),
        bind_keys=any_of(consumes),
    )


def _vhost_of(broker_url: str) -> str:
    path = urlsplit(broker_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def _permit(vhost: str, user: str, grant: Grant) -> None:
    _rabbitmqctl("set_permissions", "-p", vhost, user, grant.configure, grant.write, grant.read)
    _rabbitmqctl(
        "set_topic_permissions", "-p", vhost, user, EXCHANGE, grant.publish_keys, grant.bind_keys
    )


def _each(action: Callable[[str], None], items: Iterable[str]) -> None:
    """``action`` on every item at once (each `rabbitmqctl` starts a VM: half
    a second); raises the first failure once all have been tried."""
    items = list(items)
    if not items:
        return
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        futures = [pool.submit(action, item) for item in items]
    for future in futures:
        future.result()


def _login(broker_url: str, user: str, password: str) -> str:
    """``broker_url`` logging in as ``user``."""
    base = urlsplit(broker_url)
    login = f"{quote(user, safe='')}:{quote(password, safe='')}"
    host = base.netloc.rpartition("@")[2]
    return urlunsplit((base.scheme, f"{login}@{host}", base.path, base.query, ""))


@contextmanager
def temporary_users(
    broker_url: str, grants: Mapping[str, Grant], prefix: str = "test"
) -> Iterator[dict[str, str]]:
    """A new user ``<prefix>-<key>-<hex>`` with a random password for each
    key of ``grants``, allowed only that grant in ``broker_url``'s vhost (no
    other vhost, no management tag). Yields key -> ``broker_url`` logging in
    as that user; deletes the users afterwards."""
    vhost = _vhost_of(broker_url)
    users = {key: f"{prefix}-{key}-{uuid.uuid4().hex[:8]}" for key in grants}
    passwords = {key: secrets.token_urlsafe(24) for key in grants}
    made: list[str] = []

    def add(key: str) -> None:
        _rabbitmqctl("add_user", users[key], stdin=passwords[key] + "\n")
        made.append(users[key])
        _permit(vhost, users[key], grants[key])

    try:
        _each(add, grants)
        yield {key: _login(broker_url, users[key], passwords[key]) for key in grants}
    finally:
        _each(lambda user: _rabbitmqctl("delete_user", user), made)


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
