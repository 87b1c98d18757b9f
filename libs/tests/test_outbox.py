import re
import uuid

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from blogbus.envelope import POST_CREATED, POST_DELETED, Envelope
from blogbus.outbox.models import OutboxEvent
from blogbus.outbox.services import notify_channel, outbox_append

# ContentType stands in for the producer's own table: any model of the same database.
pytestmark = pytest.mark.django_db(transaction=True)


def state_change(name: str) -> ContentType:
    return ContentType.objects.create(app_label="blogbus_tests", model=name)


def state_exists(name: str) -> bool:
    return ContentType.objects.filter(app_label="blogbus_tests", model=name).exists()


def test_event_commits_with_the_state_change():
    post_id = str(uuid.uuid4())
    with transaction.atomic():
        state_change(post_id)
        event = outbox_append(
            type=POST_CREATED,
            source="/monolith",
            data={"id": post_id, "title": "Hi", "created_at": "2026-11-25T18:30:00.123Z"},
            request_id="req-42",
        )
    assert state_exists(post_id)
    row = OutboxEvent.objects.get(pk=event.pk)
    assert row.status == OutboxEvent.Status.PENDING
    assert row.routing_key == POST_CREATED
    assert row.attempts == 0
    assert row.sent_at is None
    assert row.time.microsecond % 1000 == 0
    envelope = Envelope.from_json(row.envelope().to_json())
    assert envelope.id == str(row.event_id)
    assert envelope.type == POST_CREATED
    assert envelope.source == "/monolith"
    assert envelope.requestid == "req-42"
    assert envelope.data["id"] == post_id
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$", envelope.time)


def test_rollback_removes_the_event_with_the_state_change():
    post_id = str(uuid.uuid4())

    class Boom(Exception):
        pass

    @transaction.atomic
    def delete_then_fail():
        state_change(post_id)
        outbox_append(type=POST_DELETED, source="/monolith", data={"id": post_id})
        raise Boom

    with pytest.raises(Boom):
        delete_then_fail()
    assert not state_exists(post_id)
    assert not OutboxEvent.objects.exists()


def test_append_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="atomic"):
        outbox_append(type=POST_DELETED, source="/monolith", data={"id": "x"})
    assert not OutboxEvent.objects.exists()


def test_invalid_event_is_refused_before_it_is_stored():
    with pytest.raises(ValueError, match="data"), transaction.atomic():
        outbox_append(type=POST_DELETED, source="/monolith", data=["x"])
    assert not OutboxEvent.objects.exists()


def test_notify_is_delivered_at_commit_only(wait_for, pg_connect):
    listener = pg_connect()
    listener.execute(f'LISTEN "{notify_channel()}"')
    received = []

    def poll() -> bool:
        received.extend(listener.notifies(timeout=0.1, stop_after=1))
        return bool(received)

    with transaction.atomic():
        outbox_append(type=POST_DELETED, source="/monolith", data={"id": "x"})
        outbox_append(type=POST_DELETED, source="/monolith", data={"id": "y"})
        # Not before the commit (a non-blocking look, not a wait).
        assert not list(listener.notifies(timeout=0, stop_after=1))
    wait_for(poll, timeout_s=10, what="the outbox NOTIFY")
    assert received[0].channel == notify_channel()
