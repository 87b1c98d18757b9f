"""Outbox relay: publishes committed outbox rows to the topic exchange, at least once.

One pass (`run_once`) claims pending rows with `SELECT ... FOR UPDATE SKIP
LOCKED` in id order (several relays never publish the same row at the same
time), publishes each with publisher confirms and `mandatory=True`, and marks a
row sent only after the broker's ack. A row whose message came back unroutable
(`basic.return`) or was nacked stays pending, with `attempts` and `last_error`
updated and a backed-off `available_at`.

The loop (`run_forever`) LISTENs on its own PostgreSQL connection, so the NOTIFY
sent by `outbox_append` at commit wakes it at once; it also sweeps every
`sweep_interval` seconds, which is what finds rows whose NOTIFY was missed
(relay down at the time, another database engine). Broker or database down:
it logs, backs off exponentially and tries again; nothing is marked sent
without an ack, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.models import F
from psycopg import sql

from blogbus.outbox.models import OutboxEvent
from blogbus.outbox.services import notify_channel
from blogbus.publisher import (
    DEFAULT_BROKER_URL,
    DEFAULT_EXCHANGE,
    BrokerUnavailable,
    EnvelopePublisher,
)

logger = logging.getLogger("blogbus.relay")


def log_json(event: str, **fields: Any) -> None:
    logger.info(json.dumps({"event": event, **fields}, separators=(",", ":"), default=str))


@dataclass(frozen=True)
class RelayConfig:
    broker_url: str = DEFAULT_BROKER_URL
    exchange: str = DEFAULT_EXCHANGE
    database: str = DEFAULT_DB_ALIAS
    notify_channel: str = "blogbus_outbox"
    batch_size: int = 100
    sweep_interval: float = 1.0
    confirm_timeout: float = 10.0
    connect_timeout: float = 5.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    retry_delay_max: float = 60.0

    @classmethod
    def from_settings(cls, **overrides: Any) -> RelayConfig:
        values = {
            "broker_url": getattr(settings, "BLOGBUS_BROKER_URL", DEFAULT_BROKER_URL),
            "exchange": getattr(settings, "BLOGBUS_EXCHANGE", DEFAULT_EXCHANGE),
            "notify_channel": notify_channel(),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


@dataclass
class RelayStats:
    claimed: int = 0
    published: int = 0
    returned: int = 0
    nacked: int = 0
    refused: int = 0

    def add(self, other: RelayStats) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


class _Publisher(EnvelopePublisher):
    """The relay's publisher: `blogbus.publisher.EnvelopePublisher` configured from a
    RelayConfig, publishing outbox rows."""

    def __init__(self, config: RelayConfig) -> None:
        super().__init__(
            config.broker_url,
            config.exchange,
            connect_timeout=config.connect_timeout,
            confirm_timeout=config.confirm_timeout,
        )
        self.config = config

    def publish(self, row: OutboxEvent) -> str | None:
        """Publish one row and wait for its confirm: None when acked, else why it was not.

        Raises BrokerUnavailable when the broker cannot be reached or the
        connection breaks; that is never the event's fault.
        """
        return self.publish_json(
            row.envelope().to_json(),
            message_id=str(row.event_id),
            event_type=row.type,
            routing_key=row.routing_key,
        )


class OutboxRelay:
    def __init__(self, config: RelayConfig | None = None) -> None:
        self.config = config or RelayConfig.from_settings()
        self.totals = RelayStats()
        self.outages = 0  # times the loop found the broker or the database unreachable
        self.listening = threading.Event()  # set once LISTEN is active and the first sweep done
        self._publisher = _Publisher(self.config)
        self._listener: psycopg.Connection | None = None

    # -- one pass -----------------------------------------------------------

    def run_once(self) -> RelayStats:
        """Publish every due pending row, batch after batch; raises BrokerUnavailable."""
        stats = RelayStats()
        while True:
            batch = self._relay_batch()
            stats.add(batch)
            if batch.claimed < self.config.batch_size:
                break
        self.totals.add(stats)
        return stats

    def _relay_batch(self) -> RelayStats:
        stats = RelayStats()
        db = self.config.database
        with transaction.atomic(using=db):
            rows = list(
                OutboxEvent.objects.using(db)
                .select_for_update(skip_locked=True)
                .filter(status=OutboxEvent.Status.PENDING, available_at__lte=datetime.now(UTC))
                .order_by("id")[: self.config.batch_size]
            )
            stats.claimed = len(rows)
            sent: list[int] = []
            broker_down: BrokerUnavailable | None = None
            for row in rows:
                try:
                    error = self._publisher.publish(row)
                except BrokerUnavailable as exc:
                    # Rows already acked in this batch are still marked below.
                    self._publisher.close()
                    broker_down = exc
                    break
                if error is None:
                    sent.append(row.pk)
                    stats.published += 1
                    continue
                if error.startswith("unroutable"):
                    stats.returned += 1
                elif error.startswith("nacked"):
                    stats.nacked += 1
                else:
                    stats.refused += 1
                self._postpone(row, error)
            if sent:
                OutboxEvent.objects.using(db).filter(pk__in=sent).update(
                    status=OutboxEvent.Status.SENT, sent_at=datetime.now(UTC)
                )
        if stats.claimed:
            log_json("relay.batch", **asdict(stats))
        if broker_down is not None:
            raise broker_down
        return stats

    def _postpone(self, row: OutboxEvent, error: str) -> None:
        delay = min(
            self.config.sweep_interval * 2 ** min(row.attempts, 16), self.config.retry_delay_max
        )
        OutboxEvent.objects.using(self.config.database).filter(pk=row.pk).update(
            attempts=F("attempts") + 1,
            last_error=error,
            available_at=datetime.now(UTC) + timedelta(seconds=delay),
        )
        log_json(
            "relay.publish_failed",
            event_id=str(row.event_id),
            type=row.type,
            attempts=row.attempts + 1,
            error=error,
            retry_in_s=delay,
        )

    # -- the loop -----------------------------------------------------------

    def run_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        backoff = self.config.backoff_initial
        log_json(
            "relay.started",
            exchange=self.config.exchange,
            channel=self.config.notify_channel,
            sweep_interval_s=self.config.sweep_interval,
        )
        try:
            while not stop.is_set():
                try:
                    self._listen()
                    self.run_once()
                    self.listening.set()
                    backoff = self.config.backoff_initial
                    self._wait_for_wakeup(stop)
                except (BrokerUnavailable, DatabaseError, psycopg.Error, OSError) as exc:
                    self.outages += 1
                    log_json(
                        "relay.unavailable",
                        error=f"{type(exc).__name__}: {exc}",
                        retry_in_s=backoff,
                    )
                    self._publisher.close()
                    self._close_listener()
                    connections[self.config.database].close()
                    stop.wait(backoff)
                    backoff = min(backoff * 2, self.config.backoff_max)
        finally:
            self.close()
            log_json("relay.stopped", outages=self.outages, **asdict(self.totals))

    def _listen(self) -> None:
        if self._listener is not None or connections[self.config.database].vendor != "postgresql":
            return
        params = dict(connections[self.config.database].get_connection_params())
        for django_only in ("cursor_factory", "context", "prepare_threshold"):
            params.pop(django_only, None)
        listener = psycopg.connect(**params, autocommit=True)
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.config.notify_channel)))
        self._listener = listener

    def _wait_for_wakeup(self, stop: threading.Event) -> None:
        """Return on a NOTIFY, at the next sweep, or soon after `stop` is set."""
        deadline = time.monotonic() + self.config.sweep_interval
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            slice_s = min(remaining, 0.5)
            if self._listener is None:
                stop.wait(slice_s)
                continue
            if any(True for _ in self._listener.notifies(timeout=slice_s, stop_after=1)):
                return

    def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(psycopg.Error):
                self._listener.close()
        self._listener = None

    def close(self) -> None:
        self._publisher.close()
        self._close_listener()
        connections[self.config.database].close()
