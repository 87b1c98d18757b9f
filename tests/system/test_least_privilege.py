"""Least privilege, with the real components: each app of a test stack logs
in to PostgreSQL and to RabbitMQ with credentials of its own
(tests/support/harness.py), as it would in production. The events still
flow with them (the grants suffice), and each credential is refused
everywhere else: another app's database, another app's queues, another
app's events, another vhost.

Every stage and mode with events, async, each a stack behind real nginx."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import kombu
import psycopg
import pytest
import requests
from amqp.exceptions import AccessRefused, NotAllowed
from psycopg import errors, sql

from blogbus import broker
from blogbus.bus.topology import EXCHANGE, dead_letter_queue_name, queue_name
from blogbus.envelope import COMMENT_CREATED, POST_CREATED, POST_DELETED, Envelope
from blogbus.testing import publish_envelope, queue_counts
from blogtest.postgres import on_database, owned_database
from blogtest.timing import wait_until
from stages import table
from tests.support.harness import Stack, stage_stack

TIMEOUT = 10
STACKS = [
    stage
    for stage, spec in table.STAGES.items()
    if "async" in spec.modes and spec.topology("async").has_events
]


@pytest.fixture(scope="module", params=STACKS, ids=lambda stage: f"stage{stage}-async")
def stack(request, tmp_path_factory) -> Iterator[tuple[int, Stack]]:
    stage = request.param
    log_dir = tmp_path_factory.mktemp(f"least-privilege-{stage}")
    with stage_stack(stage, gateway="nginx", log_dir=log_dir, mode="async") as running:
        yield stage, running


def owner_of_posts(stage: int) -> str:
    """The stage's SQL app: the one that keeps the posts (and counts comments)."""
    (owner,) = (app for app in table.topology(stage, "async").apps if table.APPS[app].sql)
    return owner


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def refused(connect) -> str:
    """The message of the refusal ``connect`` meets."""
    with pytest.raises(psycopg.OperationalError) as refusal:
        connect().close()
    return str(refusal.value)


def test_events_flow_with_each_apps_own_logins(stack):
    stage, running = stack
    owner = owner_of_posts(stage)
    assert set(running.brokers) == {owner, "comments"}
    for url in (*running.brokers.values(), running.databases[owner]):
        assert urlsplit(url).username not in ("guest", "postgres")
    api = f"{running.url}/api/posts"
    post = requests.post(f"{api}/", json={"title": "t", "body": "b"}, timeout=TIMEOUT)
    assert post.status_code == 201, post.text
    post_id = post.json()["id"]
    comment = requests.post(f"{api}/{post_id}/comments/", json={"body": "hi"}, timeout=TIMEOUT)
    assert comment.status_code == 201, comment.text

    def counted() -> bool:
        detail = requests.get(f"{api}/{post_id}/", timeout=TIMEOUT).json()
        return detail["comment_count"] == 1

    # comment.created: the comments service's relay to the owner's consumer.
    wait_until(counted, timeout_s=30, what="the comment counted from comment.created")
    # post.created: the owner's relay to the comments service's consumer.
    consumer_log = Path(running.log_dir or ".") / "comments-consumer.log"
    wait_until(
        lambda: applied(consumer_log, POST_CREATED),
        timeout_s=30,
        what="post.created applied by the comments service's consumer",
    )
    with broker.connection(running.broker or "") as admin:
        for service in running.brokers:
            assert queue_counts(admin, dead_letter_queue_name(service))[0] == 0
    logs = sorted(Path(running.log_dir or ".").glob("*.log"))
    assert logs
    assert not [log.name for log in logs if "ACCESS_REFUSED" in log.read_text(errors="replace")]


def applied(log: Path, event_type: str) -> bool:
    """The consumer logged an event of ``event_type`` as applied."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return any(
        "bus.applied" in line and re.search(rf"\b{re.escape(event_type)}\b", line)
        for line in text.splitlines()
    )


def test_an_apps_database_login_opens_its_own_database_only(stack):
    stage, running = stack
    own = running.databases[owner_of_posts(stage)]
    with psycopg.connect(own, autocommit=True, connect_timeout=5) as conn:
        user, database = conn.execute("SELECT current_user, current_database()").fetchone()
        assert database == database_name(own)
        assert conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = %s",
            (user,),
        ).fetchone() == (False, False, False)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(f"{user}_more")))
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(f"{user}_more")))
    # The stage has one SQL app: another's database is one more of the kind
    # the harness makes, owned by a role of its own.
    with owned_database("another") as other:
        message = refused(
            lambda: psycopg.connect(on_database(own, database_name(other)), connect_timeout=5)
        )
        assert "permission denied for database" in message
        message = refused(
            lambda: psycopg.connect(on_database(other, database_name(own)), connect_timeout=5)
        )
        assert "permission denied for database" in message


def consume(url: str, queue: str) -> None:
    """Starts consuming ``queue`` (and stops at once) with the login of ``url``."""
    with broker.connection(url) as conn:
        channel = conn.channel()
        tag = channel.basic_consume(queue=queue, callback=lambda message: None)
        channel.basic_cancel(tag)


def bind(url: str, queue: str, key: str) -> None:
    """Binds ``queue`` to blog.events by ``key`` with the login of ``url``."""
    with broker.connection(url) as conn:
        conn.channel().queue_bind(queue, EXCHANGE, routing_key=key)


def connect(url: str) -> None:
    with kombu.Connection(url, connect_timeout=5) as conn:
        conn.connect()


def test_an_apps_broker_login_cannot_consume_another_apps_queues(stack):
    stage, running = stack
    owner = owner_of_posts(stage)
    for app, other in ((owner, "comments"), ("comments", owner)):
        for queue in (queue_name(other), dead_letter_queue_name(other)):
            with pytest.raises(AccessRefused, match="ACCESS_REFUSED"):
                consume(running.brokers[app], queue)


def test_an_apps_broker_login_publishes_and_binds_its_own_events_only(stack):
    stage, running = stack
    comments = running.brokers["comments"]
    # A forged post.deleted would have the comments service drop a post's comments.
    forged = Envelope.new(type=POST_DELETED, source="/forged", data={"id": "x"})
    with broker.connection(comments) as conn, pytest.raises(AccessRefused, match="topic"):
        publish_envelope(conn, forged)
    # Its queue takes what its consumer handles, nothing more.
    with pytest.raises(AccessRefused, match="topic"):
        bind(comments, queue_name("comments"), COMMENT_CREATED)
    owner = running.brokers[owner_of_posts(stage)]
    forged = Envelope.new(type=COMMENT_CREATED, source="/forged", data={"id": "x"})
    with broker.connection(owner) as conn, pytest.raises(AccessRefused, match="topic"):
        publish_envelope(conn, forged)


def test_an_apps_broker_login_opens_the_stacks_vhost_only(stack):
    _, running = stack
    for url in running.brokers.values():
        connect(url)  # its own vhost: the login is good
        elsewhere = url.rsplit("/", 1)[0] + "/"  # the default vhost "/"
        with pytest.raises((AccessRefused, NotAllowed), match="access to vhost '/' refused"):
            connect(elsewhere)
