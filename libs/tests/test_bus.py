"""blogbus.bus on PostgreSQL and each broker: the real RabbitMQ (a vhost of this test
session) and the embedded profile's `filesystem://` broker (a folder of each test).
Every test runs on both, unchanged: the guarantees are the plumbing's, not the broker's.

Workers are real processes (`python -m django bus_consume`, a Celery worker),
steered through files (see bus_handlers.py); every wait polls with a deadline.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import kombu
import psycopg
import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection

from blogbus import broker
from blogbus.broker import filesystem_url
from blogbus.bus.management.commands import bus_declare, bus_replay_dead
from blogbus.bus.topology import (
    DEAD_LETTER_EXCHANGE,
    dead_letter_queue_name,
    declare_topology,
    queue_name,
)
from blogbus.envelope import COMMENT_CREATED, COMMENT_DELETED, POST_CREATED, Envelope
from blogbus.inbox.models import InboxEvent
from blogbus.testing import publish_as_relay, queue_counts, temporary_vhost
from blogtest.processes import stop
from blogtest.timing import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

LIBS = Path(__file__).resolve().parents[1]
HANDLER = "tests.bus_handlers.apply"
EFFECT_APP_LABEL = "bus_tests"


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """A RabbitMQ vhost of this session only (deleted at the end)."""
    with temporary_vhost(settings.BLOGBUS_BROKER_URL, "blogbus-test") as url:
        yield url


@pytest.fixture(params=["amqp", "filesystem"])
def broker_url(request, tmp_path_factory) -> str:
    if request.param == "amqp":
        return request.getfixturevalue("amqp_url")
    return filesystem_url(tmp_path_factory.mktemp("bus"))


@pytest.fixture(scope="session")
def other_database(django_db_setup, django_db_blocker) -> Iterator[str]:
    """A second database with the inbox tables: another service's own database.

    Two services never share an inbox: it is keyed by (source, event id), so a
    service applying an event would make it a duplicate for the other one.
    """
    name = f"test_blogbus_bus_{uuid.uuid4().hex[:8]}"
    params = connection.settings_dict
    admin = psycopg.connect(
        dbname="postgres",
        user=params["USER"],
        host=params["HOST"],
        port=params["PORT"],
        password=params["PASSWORD"] or None,
        autocommit=True,
    )
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--noinput", "-v0"],
            cwd=LIBS,
            env=_worker_env(name),
            check=True,
            timeout=60,
        )
        yield name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _worker_env(db_name: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(LIBS), os.environ.get("PYTHONPATH", "")]),
        "DJANGO_SETTINGS_MODULE": "tests.bus_settings",
        "BLOGBUS_TEST_DB_NAME": db_name,
        **extra,
    }


def effects_in(db_name: str, service: str) -> int:
    params = connection.settings_dict
    with psycopg.connect(
        dbname=db_name,
        user=params["USER"],
        host=params["HOST"],
        port=params["PORT"],
        password=params["PASSWORD"] or None,
    ) as other:
        row = other.execute(
            "SELECT count(*) FROM django_content_type WHERE app_label = %s AND model LIKE %s",
            (EFFECT_APP_LABEL, f"{service}|%"),
        ).fetchone()
    return row[0]


@pytest.fixture
def amqp(broker_url: str) -> Iterator[kombu.Connection]:
    conn = broker.connection(broker_url, confirms=False)
    conn.ensure_connection(max_retries=2, interval_start=0.2)
    yield conn
    conn.release()


@pytest.fixture
def service_names(amqp: kombu.Connection) -> Iterator[Callable[[str], str]]:
    """Unique service names; their queues are deleted at teardown."""
    made: list[str] = []

    def make(prefix: str) -> str:
        made.append(f"{prefix}-{uuid.uuid4().hex[:8]}")
        return made[-1]

    yield make
    channel = amqp.channel()
    for service in made:
        for name in (queue_name(service), dead_letter_queue_name(service)):
            channel.queue_delete(name)
    channel.close()


def new_event(event_type: str = POST_CREATED) -> Envelope:
    return Envelope.new(
        type=event_type,
        source="/monolith",
        data={"id": str(uuid.uuid4()), "title": "t", "created_at": "2026-11-25T18:30:00.000Z"},
    )


def effects(service: str) -> int:
    return ContentType.objects.filter(
        app_label=EFFECT_APP_LABEL, model__startswith=f"{service}|"
    ).count()


class Workers:
    """Starts `bus_consume` worker processes; stops (then kills) every one at teardown."""

    def __init__(self, folder: Path, broker_url: str) -> None:
        self.folder = folder
        self.broker_url = broker_url
        self.procs: list[subprocess.Popen] = []

    def start(
        self,
        service: str,
        *types: str,
        max_retries: int = 3,
        database: str | None = None,
        url_from_env: bool = False,
    ) -> subprocess.Popen:
        env = _worker_env(
            database or connection.settings_dict["NAME"],
            BUS_TEST_DIR=str(self.folder),
            BUS_TEST_SERVICE=service,
        )
        # The broker as a deployment gives it (BROKER_URL -> settings), or as --broker-url.
        env["BROKER_URL"] = self.broker_url if url_from_env else "amqp://nobody@127.0.0.1:1//"
        broker_option = [] if url_from_env else [f"--broker-url={self.broker_url}"]
        handlers = [f"--handler={t}={HANDLER}" for t in types or (POST_CREATED,)]
        log = open(self.folder / f"worker-{service}-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "django", "bus_consume", f"--service={service}",
             *broker_option, f"--max-retries={max_retries}",
             "--retry-delay=0.05", *handlers],
            cwd=LIBS, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.folder.glob("worker-*.log"))
        )

    def stop_all(self) -> None:
        for proc in self.procs:
            stop(proc, timeout_s=15)


@pytest.fixture
def workers(tmp_path: Path, broker_url: str, service_names) -> Iterator[Workers]:
    made = Workers(tmp_path, broker_url)
    yield made  # stopped before service_names deletes the queues
    made.stop_all()
    print(made.logs())  # pytest shows it when the test failed


def wait_consuming(amqp: kombu.Connection, workers: Workers, service: str) -> None:
    """Until the worker has declared its queue and consumes it."""

    def consuming() -> bool:
        for proc in workers.procs:
            if proc.poll() is not None:
                pytest.fail(f"a worker exited with {proc.returncode}\n{workers.logs()}")
        channel = amqp.channel()
        try:
            return channel.queue_declare(queue=queue_name(service), passive=True)[2] >= 1
        except Exception:
            return False
        finally:
            with contextlib.suppress(Exception):
                channel.close()

    wait_until(consuming, timeout_s=30, what=f"a worker consuming {queue_name(service)}")


def calls(folder: Path, service: str) -> list[str]:
    path = folder / f"calls-{service}"
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def settled(amqp: kombu.Connection, service: str) -> bool:
    """No message ready or unacked on the service's queue."""
    channel = amqp.channel()
    try:
        ok = channel.queue_declare(queue=queue_name(service), passive=True)
    finally:
        channel.close()
    # passive declare counts ready messages only; unacked ones are seen via the DLQ/effects.
    return ok[1] == 0


# --- topology --------------------------------------------------------------------------


def test_topology_routes_by_binding_and_dead_letters(amqp, service_names):
    posts, comments = service_names("posts"), service_names("comments")
    declare_topology(amqp, comments, [POST_CREATED, "post.deleted"])
    declare_topology(amqp, comments, [POST_CREATED])  # idempotent, same arguments
    declare_topology(amqp, posts, ["comment.*"])

    publish_as_relay(amqp, new_event(POST_CREATED).to_json(), POST_CREATED)
    publish_as_relay(amqp, new_event(COMMENT_CREATED).to_json(), COMMENT_CREATED)

    wait_until(lambda: queue_counts(amqp, queue_name(comments))[0] == 1, what="comments' queue")
    wait_until(lambda: queue_counts(amqp, queue_name(posts))[0] == 1, what="posts' queue")
    channel = amqp.channel()
    try:
        message = kombu.Queue(queue_name(comments))(channel).get(no_ack=False)
        assert message.delivery_info["routing_key"] == POST_CREATED
        message.reject(requeue=False)  # -> blog.events.dlx -> comments' DLQ only
    finally:
        channel.close()
    wait_until(lambda: queue_counts(amqp, dead_letter_queue_name(comments))[0] == 1, what="the DLQ")
    assert queue_counts(amqp, dead_letter_queue_name(posts))[0] == 0
    assert queue_counts(amqp, queue_name(comments))[0] == 0
    assert queue_counts(amqp, queue_name(posts))[0] == 1


def test_bus_declare_command(amqp, broker_url, service_names):
    service = service_names("deploy")
    out = io.StringIO()
    call_command(
        bus_declare.Command(),
        f"--service={service}",
        "--key=post.created",
        "--key=post.deleted",
        f"--broker-url={broker_url}",
        stdout=out,
    )
    assert queue_name(service) in out.getvalue()
    publish_as_relay(amqp, new_event("post.deleted").to_json(), "post.deleted")
    wait_until(lambda: queue_counts(amqp, queue_name(service))[0] == 1, what="the bound queue")
    assert queue_counts(amqp, dead_letter_queue_name(service)) == (0, 0)
    assert DEAD_LETTER_EXCHANGE == "blog.events.dlx"


# --- worker processes ------------------------------------------------------------------


def test_the_same_event_delivered_twice_is_applied_once(amqp, workers, service_names, tmp_path):
    service = service_names("replica")
    workers.start(service, POST_CREATED)
    wait_consuming(amqp, workers, service)
    event = new_event()

    publish_as_relay(amqp, event.to_json(), POST_CREATED)
    publish_as_relay(amqp, event.to_json(), POST_CREATED)  # a duplicate, e.g. the relay republished

    wait_until(lambda: "bus.duplicate" in workers.logs(), what="the second delivery")
    wait_until(lambda: settled(amqp, service), what="both messages acked")
    assert calls(tmp_path, service) == [event.id]  # the handler ran for the first only
    assert effects(service) == 1
    assert InboxEvent.objects.filter(event_id=event.id).count() == 1
    assert queue_counts(amqp, dead_letter_queue_name(service))[0] == 0


def test_the_worker_takes_its_broker_from_the_broker_url_setting(amqp, workers, service_names):
    """BROKER_URL in the environment (a deployment's way) and no --broker-url: Celery's
    own command line must not swap in the raw URL (for filesystem://, kombu's stock
    transport, which cannot reach this broker's queues)."""
    service = service_names("from-env")
    workers.start(service, POST_CREATED, url_from_env=True)
    wait_consuming(amqp, workers, service)
    publish_as_relay(amqp, new_event().to_json(), POST_CREATED)
    wait_until(lambda: effects(service) == 1, what="the event applied")


def test_worker_killed_inside_the_handler_redelivers_and_applies_once(
    amqp, workers, service_names, tmp_path
):
    service = service_names("killed")
    block = tmp_path / f"block-{service}"
    block.touch()
    first = workers.start(service, POST_CREATED)
    wait_consuming(amqp, workers, service)
    event = new_event()
    publish_as_relay(amqp, event.to_json(), POST_CREATED)
    wait_until(
        lambda: (tmp_path / f"entered-{service}").exists(), what="the worker inside its handler"
    )

    os.kill(first.pid, signal.SIGKILL)  # the worker dies, its effect uncommitted
    first.wait(timeout=10)
    assert effects(service) == 0
    block.unlink()

    workers.start(service, POST_CREATED)
    wait_until(lambda: effects(service) == 1, timeout_s=30, what="the redelivered event applied")
    wait_until(lambda: settled(amqp, service), what="the message acked")
    time.sleep(0.3)
    assert calls(tmp_path, service) == [event.id, event.id]  # delivered twice
    assert effects(service) == 1  # applied once
    assert InboxEvent.objects.filter(event_id=event.id).count() == 1


def test_poison_event_retries_on_its_own_queue_then_dead_letters_then_replays(
    amqp, broker_url, workers, service_names, tmp_path, other_database
):
    failing, other = service_names("failing"), service_names("other")
    (tmp_path / f"fail-{failing}").touch()
    workers.start(failing, POST_CREATED, max_retries=3)
    workers.start(other, POST_CREATED, database=other_database)
    wait_consuming(amqp, workers, failing)
    wait_consuming(amqp, workers, other)
    event = new_event()

    publish_as_relay(amqp, event.to_json(), POST_CREATED, message_id=event.id)

    dlq = dead_letter_queue_name(failing)
    wait_until(lambda: queue_counts(amqp, dlq)[0] == 1, what="the event in the DLQ")
    assert calls(tmp_path, failing) == [event.id] * 4  # the delivery + 3 retries
    assert effects(failing) == 0
    wait_until(lambda: effects_in(other_database, other) == 1, what="the other service's effect")
    time.sleep(0.3)
    assert calls(tmp_path, other) == [event.id]  # the retries never reached it
    assert queue_counts(amqp, dead_letter_queue_name(other))[0] == 0

    channel = amqp.channel()
    try:  # look at the dead letter, then put it back
        dead = kombu.Queue(dlq)(channel).get(no_ack=False)
        assert dead.headers["x-retries"] == 3
        assert dead.headers["x-death"][0]["exchange"] == ""  # the last try came by its own queue
        assert dead.properties["message_id"] == event.id  # the copies keep the properties
        dead.requeue()
    finally:
        channel.close()
    wait_until(lambda: queue_counts(amqp, dlq)[0] == 1, what="the dead letter back in the DLQ")

    (tmp_path / f"fail-{failing}").unlink()  # the handler is fixed
    out = io.StringIO()
    call_command(
        bus_replay_dead.Command(), f"--service={failing}", f"--broker-url={broker_url}", stdout=out
    )
    assert "replayed 1 message(s)" in out.getvalue()

    wait_until(lambda: effects(failing) == 1, what="the replayed event applied")
    wait_until(lambda: settled(amqp, failing), what="the replayed message acked")
    time.sleep(0.3)
    assert effects(failing) == 1
    assert calls(tmp_path, failing) == [event.id] * 5
    assert queue_counts(amqp, dlq)[0] == 0
    assert calls(tmp_path, other) == [event.id]
    assert effects_in(other_database, other) == 1


def test_unparseable_body_goes_to_the_dlq_at_once_and_unknown_types_are_ignored(
    amqp, workers, service_names, tmp_path
):
    service = service_names("strict")
    # Also bound to a type it has no handler for (bindings are additive).
    declare_topology(amqp, service, [COMMENT_DELETED])
    workers.start(service, POST_CREATED)
    wait_consuming(amqp, workers, service)

    publish_as_relay(amqp, b"{not json", POST_CREATED)
    publish_as_relay(amqp, b'{"specversion": "1.0"}', POST_CREATED)  # JSON, not an envelope
    publish_as_relay(amqp, new_event(COMMENT_DELETED).to_json(), COMMENT_DELETED)
    known = new_event()
    publish_as_relay(amqp, known.to_json(), POST_CREATED)

    dlq = dead_letter_queue_name(service)
    wait_until(lambda: queue_counts(amqp, dlq)[0] == 2, what="two poison messages in the DLQ")
    wait_until(lambda: effects(service) == 1, what="the valid event applied")
    wait_until(lambda: settled(amqp, service), what="everything settled")
    time.sleep(0.3)
    assert calls(tmp_path, service) == [known.id]  # neither poison nor unknown reached it
    assert queue_counts(amqp, dlq)[0] == 2
    channel = amqp.channel()
    try:
        dead = kombu.Queue(dlq)(channel).get(no_ack=True)
        body = dead.body if isinstance(dead.body, bytes) else dead.body.encode()
        assert body == b"{not json"
        assert dead.headers["x-death"][0]["reason"] == "rejected"
        assert "x-retries" not in dead.headers  # never retried
    finally:
        channel.close()
    wait_until(lambda: queue_counts(amqp, dlq)[0] == 1, what="one poison message left")

    out = io.StringIO()
    call_command(
        bus_replay_dead.Command(),
        f"--service={service}",
        "--limit=1",
        f"--broker-url={workers.broker_url}",
        stdout=out,
    )
    assert "replayed 1 message(s)" in out.getvalue()
    # Still not an envelope: straight back to the DLQ, without retries.
    wait_until(lambda: workers.logs().count('"bus.poison"') >= 3, what="the replayed poison")
    wait_until(lambda: queue_counts(amqp, dlq)[0] == 1, what="the poison dead-lettered again")
    assert calls(tmp_path, service) == [known.id]
