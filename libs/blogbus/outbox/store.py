"""The SQL outbox as a `blogbus.relay.OutboxStore` (what `OutboxRelay` runs on).

A batch is one transaction: rows claimed with `SELECT ... FOR UPDATE SKIP
LOCKED` in id order (several relays never publish the same row at the same
time), failures recorded as they happen (`attempts` + 1, `last_error`, a
backed-off `available_at`), the acked rows marked `sent` in one UPDATE at the
end, and the locks released by its commit. If the block raises (the database
went away), it rolls back: its acked rows stay pending and are published again
(at least once).

Wake-ups: LISTEN on its own psycopg connection (PostgreSQL only), so the
NOTIFY sent by `outbox_append` at commit ends `wait_for_work` at once. On
another engine (SQLite: no NOTIFY, no row locks: run one relay) it just
sleeps, and the relay's sweep finds the rows.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.models import F
from psycopg import sql

from blogbus.outbox.models import OutboxEvent
from blogbus.outbox.services import notify_channel
from blogbus.relay import Pending


class SqlOutboxStore:
    errors: tuple[type[Exception], ...] = (DatabaseError, psycopg.Error)

    def __init__(self, database: str = DEFAULT_DB_ALIAS, channel: str | None = None) -> None:
        self.database = database
        self.channel = channel or notify_channel()
        self._listener: psycopg.Connection | None = None
        self._sent: list[object] = []  # ids of the rows acked in the current batch

    def __repr__(self) -> str:
        return f"SqlOutboxStore(database={self.database!r}, channel={self.channel!r})"

    @contextlib.contextmanager
    def claim_batch(self, limit: int) -> Iterator[list[Pending]]:
        db = self.database
        with transaction.atomic(using=db):
            rows = (
                OutboxEvent.objects.using(db)
                .select_for_update(skip_locked=True)
                .filter(status=OutboxEvent.Status.PENDING, available_at__lte=datetime.now(UTC))
                .order_by("id")[:limit]
            )
            self._sent = []
            yield [
                Pending(
                    event_id=str(row.event_id),
                    type=row.type,
                    routing_key=row.routing_key,
                    body=row.envelope().to_json(),
                    attempts=row.attempts,
                    ref=row.pk,
                )
                for row in rows
            ]
            if self._sent:
                OutboxEvent.objects.using(db).filter(pk__in=self._sent).update(
                    status=OutboxEvent.Status.SENT, sent_at=datetime.now(UTC)
                )
                self._sent = []

    def mark_sent(self, pending: Pending) -> None:
        self._sent.append(pending.ref)

    def mark_failed(self, pending: Pending, error: str, retry_in: float) -> None:
        OutboxEvent.objects.using(self.database).filter(pk=pending.ref).update(
            attempts=F("attempts") + 1,
            last_error=error,
            available_at=datetime.now(UTC) + timedelta(seconds=retry_in),
        )

    def listen(self) -> None:
        if self._listener is not None or connections[self.database].vendor != "postgresql":
            return
        params = dict(connections[self.database].get_connection_params())
        for django_only in ("cursor_factory", "context", "prepare_threshold"):
            params.pop(django_only, None)
        listener = psycopg.connect(**params, autocommit=True)
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        self._listener = listener

    def wait_for_work(self, timeout: float) -> bool:
        if self._listener is None:
            time.sleep(timeout)
            return False
        return any(True for _ in self._listener.notifies(timeout=timeout, stop_after=1))

    def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(psycopg.Error):
                self._listener.close()
        self._listener = None
        connections[self.database].close()
