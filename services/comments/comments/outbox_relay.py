"""Publishes the comments' pending events (the ``outbox`` field of a comment
document) to the topic exchange, at least once: the shared relay loop
(``blogbus.relay.Relay``) over ``CommentOutboxStore``.

The loop reads the due pending events through the repository, publishes each
with publisher confirms and ``mandatory=True`` (``blogbus.publisher``:
persistent, CloudEvents structured content, message id = event id) and
``$unset``s the acked ones at the end of each batch, in one bulk write.
Unroutable (no queue bound) or nacked: the event stays, with ``attempts`` + 1
and a backed-off ``available_at``. Broker or MongoDB down: the loop logs,
backs off (0.5 s doubling to 30 s) and tries again; nothing is removed
without an ack, so nothing is lost. A crash between the ack and the
``$unset`` republishes the event: consumers dedup on source + id.

What wakes it: MongoDB has no LISTEN/NOTIFY, but a replica set (and
SecantusDB) has change streams. The store opens one on the comments before
each pass (``repository.OutboxWatch``: inserts that carry a pending event)
and the loop waits on it, so a new comment is published within a round trip
of its insert; the sweep, every ``sweep_interval`` (1 s), picks up what
waits for a retry. A standalone mongod refuses change streams: the relay
then says so once (``relay.sweeping``) and sweeps every
``fallback_sweep_interval`` (0.1 s) instead. Several relays may run (no
claim); an event can then be published twice, which at-least-once allows.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from blogbus.publisher import EnvelopePublisher
from blogbus.relay import Pending, Relay
from blogweb.exceptions import DependencyUnavailable

from . import repository

logger = logging.getLogger("comments.outbox_relay")


class CommentOutboxStore:
    """``blogbus.relay.OutboxStore`` over the repository's outbox functions,
    woken by a change stream where the server has them."""

    errors: tuple[type[Exception], ...] = (DependencyUnavailable,)

    def __init__(self, *, watch: bool = True, max_await_ms: int = 500) -> None:
        self.watching = watch  # False once the server refused a change stream
        self.max_await_ms = max_await_ms
        self._watch: repository.OutboxWatch | None = None
        self._sent: list[tuple[str, str]] = []

    def __repr__(self) -> str:
        return f"CommentOutboxStore(watch={self.watching})"

    @contextlib.contextmanager
    def claim_batch(self, limit: int) -> Iterator[list[Pending]]:
        # No claim, no transaction: the acked events of the batch are removed
        # together at its end (also when the broker went down in the middle).
        self._sent.clear()
        try:
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
        finally:
            sent, self._sent = self._sent, []
            repository.outbox_mark_sent_many(sent)

    def mark_sent(self, pending: Pending) -> None:
        self._sent.append((str(pending.ref), pending.event_id))

    def mark_failed(self, pending: Pending, error: str, retry_in: float) -> None:
        repository.outbox_postpone(
            document_id=str(pending.ref), event_id=pending.event_id, error=error, delay_s=retry_in
        )

    def listen(self) -> None:
        """Opens the change stream (before the pass: nothing inserted from
        here on is missed), unless one is open or the server has none."""
        if self._watch is not None or not self.watching:
            return
        try:
            self._watch = repository.OutboxWatch(max_await_ms=self.max_await_ms)
        except repository.ChangeStreamsUnsupported as exc:
            self.watching = False
            logger.info(json.dumps({"event": "relay.sweeping", "why": str(exc)}))

    def wait_for_work(self, timeout: float) -> bool:
        if self._watch is None:
            time.sleep(timeout)
            return False
        try:
            return self._watch.wait()
        except DependencyUnavailable:
            # The stream is lost (the server restarted): the next pass opens
            # another before it reads, so nothing inserted meanwhile is missed.
            self.close()
            return True

    def close(self) -> None:
        """Drops the change stream; the repository's client reconnects by itself."""
        if self._watch is not None:
            self._watch.close()
            self._watch = None


class CommentsOutboxRelay(Relay):
    def __init__(
        self,
        publisher: EnvelopePublisher,
        *,
        sweep_interval: float = 1.0,
        fallback_sweep_interval: float = 0.1,
        watch: bool = True,
        **options: Any,
    ) -> None:
        """``sweep_interval`` with a change stream, ``fallback_sweep_interval``
        without; ``options``: the loop's (``batch_size``, ``backoff_initial``, ...)."""
        super().__init__(
            CommentOutboxStore(watch=watch),
            publisher,
            sweep_interval=sweep_interval,
            logger=logger,
            **options,
        )
        self.fallback_sweep_interval = fallback_sweep_interval

    def _wait_for_work(self, stop: threading.Event) -> None:
        if not self.store.watching:
            self.sweep_interval = min(self.sweep_interval, self.fallback_sweep_interval)
        super()._wait_for_work(stop)
