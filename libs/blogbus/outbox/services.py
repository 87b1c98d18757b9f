from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction

from blogbus.envelope import Envelope
from blogbus.outbox.models import OutboxEvent

DEFAULT_NOTIFY_CHANNEL = "blogbus_outbox"


def notify_channel() -> str:
    return getattr(settings, "BLOGBUS_OUTBOX_CHANNEL", DEFAULT_NOTIFY_CHANNEL)


def outbox_append(
    *,
    type: str,
    source: str,
    data: dict[str, Any],
    request_id: str | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> OutboxEvent:
    """Record an event in the caller's transaction; it is published after the commit.

    Must run inside the `transaction.atomic()` that makes the state change, so
    both commit or neither does. On PostgreSQL it also sends a NOTIFY, which
    the server delivers only at commit: the relay wakes at once instead of at
    its next sweep.
    """
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        raise RuntimeError("outbox_append() must be called inside transaction.atomic()")
    now = datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    # Validates type, source and data the same way a consumer will.
    envelope = Envelope.new(type=type, source=source, data=data, request_id=request_id, time=now)
    event = OutboxEvent.objects.using(using).create(
        event_id=envelope.id,
        source=envelope.source,
        type=envelope.type,
        time=now,
        request_id=envelope.requestid or "",
        data=envelope.data,
        routing_key=envelope.type,
        available_at=now,
        created_at=now,
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Same channel and payload within a transaction are folded into one wake-up.
            cursor.execute("SELECT pg_notify(%s, '')", [notify_channel()])
    return event
