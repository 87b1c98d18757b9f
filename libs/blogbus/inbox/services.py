from __future__ import annotations

from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction

from blogbus.envelope import Envelope
from blogbus.inbox.models import InboxEvent


def consume_once(
    envelope: Envelope,
    handler: Callable[[Envelope], object],
    *,
    using: str = DEFAULT_DB_ALIAS,
) -> bool:
    """Apply `handler(envelope)` unless this event was applied before; True if it ran.

    The inbox row is inserted first and the handler runs in the same
    transaction, so the handler's writes and the record commit together: a
    redelivery finds the row and has no second effect, and a handler that
    raises rolls the record back with its writes (the event can be retried).
    Two workers given the same event at once: the second insert waits on the
    unique index until the first commits, then sees the duplicate.
    The handler's writes must go to the same database (`using`).
    """
    with transaction.atomic(using=using):
        try:
            with transaction.atomic(using=using):
                InboxEvent.objects.using(using).create(
                    source=envelope.source, event_id=envelope.id, type=envelope.type
                )
        except IntegrityError:
            return False
        handler(envelope)
    return True
