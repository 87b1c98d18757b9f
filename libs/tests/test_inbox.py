import threading
import uuid

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from blogbus.envelope import COMMENT_CREATED, Envelope
from blogbus.inbox.models import InboxEvent
from blogbus.inbox.services import consume_once

# Real commits: what matters is what the database holds after each transaction.
pytestmark = pytest.mark.django_db(transaction=True)


def comment_created(*, source: str = "/services/comments", event_id: str | None = None):
    return Envelope.new(
        type=COMMENT_CREATED,
        source=source,
        id=event_id,
        data={"id": str(uuid.uuid4()), "post_id": str(uuid.uuid4()), "created_at": "x"},
    )


def count_effect(envelope: Envelope) -> None:
    # Stands in for the consumer's own write (e.g. a counter or a replica row).
    ContentType.objects.create(app_label="blogbus_tests", model=f"{envelope.source}|{envelope.id}")


def effects() -> int:
    return ContentType.objects.filter(app_label="blogbus_tests").count()


def test_the_same_envelope_twice_applies_once():
    envelope = comment_created()

    assert consume_once(envelope, count_effect) is True
    redelivered = Envelope.from_json(envelope.to_json())
    assert consume_once(redelivered, count_effect) is False

    assert effects() == 1
    row = InboxEvent.objects.get()
    assert (row.source, row.event_id, row.type) == (envelope.source, envelope.id, COMMENT_CREATED)


def test_dedup_is_per_source_and_id():
    event_id = str(uuid.uuid4())
    assert consume_once(comment_created(source="/services/a", event_id=event_id), count_effect)
    assert consume_once(comment_created(source="/services/b", event_id=event_id), count_effect)
    assert consume_once(comment_created(source="/services/a"), count_effect)
    assert effects() == 3
    assert InboxEvent.objects.count() == 3


def test_a_handler_that_raises_leaves_no_inbox_row_and_no_effect():
    envelope = comment_created()

    def failing(envelope: Envelope) -> None:
        count_effect(envelope)
        raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError, match="handler failed"):
        consume_once(envelope, failing)
    assert effects() == 0
    assert not InboxEvent.objects.exists()

    # The redelivery of a failed event is applied.
    assert consume_once(envelope, count_effect) is True
    assert effects() == 1


def test_concurrent_deliveries_apply_once(wait_for):
    """The second consumer waits on the first one's uncommitted inbox row, then skips."""
    envelope = comment_created()
    inside_handler = threading.Event()
    release = threading.Event()
    results: dict[str, bool] = {}

    def slow_effect(envelope: Envelope) -> None:
        count_effect(envelope)
        inside_handler.set()
        assert release.wait(timeout=30)

    def consume(name: str, handler) -> None:
        try:
            results[name] = consume_once(envelope, handler)
        finally:
            connection.close()

    first = threading.Thread(target=consume, args=("first", slow_effect), daemon=True)
    first.start()
    wait_for(inside_handler.is_set, what="the first consumer to be inside its handler")
    second = threading.Thread(target=consume, args=("second", count_effect), daemon=True)
    second.start()

    def second_is_waiting_on_a_lock() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return cursor.fetchone()[0] >= 1

    wait_for(second_is_waiting_on_a_lock, what="the second consumer to wait on the inbox row")
    release.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert results == {"first": True, "second": False}
    assert effects() == 1
