"""Publishes the comments' pending events (the ``outbox`` field of a comment
document) to the topic exchange, at least once: the shared relay loop
(``blogbus.relay.Relay``) over ``CommentOutboxStore``.

The loop reads the due pending events through the repository, publishes each
with publisher confirms and ``mandatory=True`` (``blogbus.publisher``:
persistent, CloudEvents structured content, message id = event id) and
``$unset``s the field only after the broker's ack, one document at a time.
Unroutable (no queue bound) or nacked: the event stays, with ``attempts`` + 1
and a backed-off ``available_at``. Broker or MongoDB down: the loop logs,
backs off (0.5 s doubling to 30 s) and tries again; nothing is removed
without an ack, so nothing is lost. A crash between the ack and the
``$unset`` republishes the event: consumers dedup on source + id.

The web process does not wake the relay (another process, no LISTEN/NOTIFY
on MongoDB): it sweeps every ``sweep_interval`` (0.1 s). Several relays may
run (no claim); an event can then be published twice, which at-least-once
allows.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from blogbus.publisher import EnvelopePublisher
from blogbus.relay import Pending, Relay
from blogweb.exceptions import DependencyUnavailable

from . import repository

logger = logging.getLogger("comments.outbox_relay")


class CommentOutboxStore:
    """``blogbus.relay.OutboxStore`` over the repository's outbox functions."""

    errors: tuple[type[Exception], ...] = (DependencyUnavailable,)

    def __repr__(self) -> str:
        return "CommentOutboxStore()"

    @contextlib.contextmanager
    def claim_batch(self, limit: int) -> Iterator[list[Pending]]:
        # No transaction to hold: each mark is its own single-document write.
        yield [
            Pending(
                event_id=entry.event.id,
                type=entry.event.type,
                routing_key=entry.event.type,
                body=entry.event.envelope,
                attempts=entry.attempts,
                ref=entry.document_id,
            )
            for entry in repository.outbox_due(limit=limit)
        ]

    def mark_sent(self, pending: Pending) -> None:
        repository.outbox_mark_sent(document_id=str(pending.ref), event_id=pending.event_id)

    def mark_failed(self, pending: Pending, error: str, retry_in: float) -> None:
        repository.outbox_postpone(
            document_id=str(pending.ref), event_id=pending.event_id, error=error, delay_s=retry_in
        )

    def listen(self) -> None:
        """Nothing wakes this relay: it sweeps."""

    def wait_for_work(self, timeout: float) -> bool:
        time.sleep(timeout)
        return False

    def close(self) -> None:
        """The repository's client reconnects by itself."""


class CommentsOutboxRelay(Relay):
    def __init__(
        self, publisher: EnvelopePublisher, *, sweep_interval: float = 0.1, **options: Any
    ) -> None:
        """``options``: the loop's (``batch_size``, ``backoff_initial``, ...)."""
        super().__init__(
            CommentOutboxStore(),
            publisher,
            sweep_interval=sweep_interval,
            logger=logger,
            **options,
        )
