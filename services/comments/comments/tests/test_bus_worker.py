"""The consumer side across processes: `manage.py bus_declare` and a real
`manage.py bus_consume --service comments` worker (Celery, no inbox) on the
RabbitMQ vhost of the session, applying post events to the session's MongoDB."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command

from blogbus.bus.topology import dead_letter_queue_name, queue_name
from blogbus.envelope import POST_CREATED, POST_DELETED, Envelope
from blogbus.testing import publish_envelope, queue_counts
from blogtest.processes import stop
from blogtest.timing import wait_until

from .conftest import TEST_DB
from .factories import make_comment

pytestmark = pytest.mark.timeout(120)

SERVICE_DIR = Path(__file__).resolve().parents[2]
SERVICE = "comments"


def post_created(post_id: uuid.UUID) -> Envelope:
    return Envelope.new(
        type=POST_CREATED,
        source="/monolith",
        data={"id": str(post_id), "title": "t", "created_at": "2026-11-25T18:30:00.000Z"},
    )


@pytest.fixture
def worker(tmp_path, broker_url, mongo_url, amqp) -> Iterator[subprocess.Popen]:
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "comments_service.settings.test",
        "MONGO_URL": mongo_url,
        "BROKER_URL": broker_url,
        "POST_LOOKUP": "async",
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "bus_consume", f"--service={SERVICE}",
             "--retry-delay=0.05"],
            cwd=SERVICE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def consuming() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"the worker exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            return queue_counts(amqp, queue_name(SERVICE))[1] >= 1
        except Exception:
            return False

    try:
        wait_until(consuming, timeout_s=30, what="the worker consuming its queue")
        yield proc
    finally:
        stop(proc, timeout_s=15)
        print(log_path.read_text(errors="replace")[-4000:])  # shown when the test failed
        channel = amqp.channel()
        for name in (queue_name(SERVICE), dead_letter_queue_name(SERVICE)):
            channel.queue_delete(name)
        channel.close()


def test_bus_declare_binds_the_comments_queue(amqp, broker_url):
    out = io.StringIO()
    call_command(
        "bus_declare",
        f"--service={SERVICE}",
        f"--key={POST_CREATED}",
        f"--key={POST_DELETED}",
        f"--broker-url={broker_url}",
        stdout=out,
    )
    try:
        assert "comments.blog-events" in out.getvalue()
        publish_envelope(
            amqp, Envelope.new(type=POST_DELETED, source="/t", data={"id": str(uuid.uuid4())})
        )
        wait_until(lambda: queue_counts(amqp, queue_name(SERVICE))[0] == 1, what="the bound queue")
    finally:
        channel = amqp.channel()
        for name in (queue_name(SERVICE), dead_letter_queue_name(SERVICE)):
            channel.queue_delete(name)
        channel.close()


def test_a_worker_applies_post_events_without_an_inbox(
    worker, amqp, mongo_collection, replica_collection
):
    assert mongo_collection.database.name == TEST_DB
    kept, deleted = uuid.uuid4(), uuid.uuid4()
    for post_id in (kept, deleted):
        publish_envelope(amqp, post_created(post_id))
    wait_until(
        lambda: replica_collection.count_documents({"deleted": False}) == 2,
        what="both posts in the replica",
    )
    for _ in range(3):
        make_comment(post_id=deleted)
    make_comment(post_id=kept)

    event = Envelope.new(type=POST_DELETED, source="/monolith", data={"id": str(deleted)})
    publish_envelope(amqp, event)
    publish_envelope(amqp, event)  # redelivered / duplicated: no second effect, no error

    wait_until(
        lambda: mongo_collection.count_documents({"post_id": str(deleted)}) == 0,
        what="the deleted post's comments gone",
    )
    wait_until(lambda: queue_counts(amqp, queue_name(SERVICE))[0] == 0, what="the queue drained")
    assert replica_collection.find_one({"_id": str(deleted)})["deleted"] is True
    assert mongo_collection.count_documents({"post_id": str(kept)}) == 1
    assert queue_counts(amqp, dead_letter_queue_name(SERVICE))[0] == 0

    # A late post.created for the deleted post, then one for a sentinel post:
    # one queue, prefetch 1, so once the sentinel is in, the late one was applied.
    sentinel = uuid.uuid4()
    for post_id in (deleted, sentinel):
        publish_envelope(amqp, post_created(post_id))
    wait_until(
        lambda: replica_collection.find_one({"_id": str(sentinel)}), what="the sentinel post"
    )
    assert replica_collection.find_one({"_id": str(deleted)})["deleted"] is True
