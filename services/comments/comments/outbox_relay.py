"""Publishes the comments' pending events (the ``outbox`` field of a comment
document) to the topic exchange, at least once.

One pass (``run_once``) reads the due pending events through the repository,
publishes each with publisher confirms and ``mandatory=True``
(``blogbus.publisher.EnvelopePublisher``: persistent, CloudEvents structured
content, message id = event id) and ``$unset``s the field only after the
broker's ack. Unroutable (no queue bound) or nacked: the event stays, with
``attempts`` + 1 and a backed-off ``available_at``. Broker or MongoDB down:
the loop logs, backs off (0.5 s doubling to 30 s) and tries again; nothing is
removed without an ack, so nothing is lost. A crash between the ack and the
``$unset`` republishes the event: consumers dedup on source + id.

The web process does not wake the relay (another process, no LISTEN/NOTIFY
on MongoDB): it sweeps every ``sweep_interval`` (0.1 s). Several relays may
run; an event can then be published twice, which at-least-once allows.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass

from blogbus.publisher import BrokerUnavailable, EnvelopePublisher
from blogweb.exceptions import DependencyUnavailable

from . import repository

logger = logging.getLogger("comments.outbox_relay")


def log_json(event: str, **fields) -> None:
    logger.info(json.dumps({"event": event, **fields}, separators=(",", ":"), default=str))


@dataclass
class RelayStats:
    due: int = 0
    published: int = 0
    postponed: int = 0

    def add(self, other: RelayStats) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


class CommentsOutboxRelay:
    def __init__(
        self,
        publisher: EnvelopePublisher,
        *,
        batch_size: int = 100,
        sweep_interval: float = 0.1,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        retry_delay_max: float = 60.0,
    ) -> None:
        self.publisher = publisher
        self.batch_size = batch_size
        self.sweep_interval = sweep_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.retry_delay_max = retry_delay_max
        self.totals = RelayStats()
        self.outages = 0

    def run_once(self) -> RelayStats:
        """Every due pending event, batch after batch. Raises BrokerUnavailable
        or DependencyUnavailable (MongoDB); events acked before that are marked."""
        stats = RelayStats()
        try:
            while True:
                batch = self._batch()
                stats.add(batch)
                # A batch that postponed everything would be read again at once.
                if batch.due < self.batch_size or batch.published == 0:
                    break
        finally:
            self.totals.add(stats)
        return stats

    def _batch(self) -> RelayStats:
        stats = RelayStats()
        entries = repository.outbox_due(limit=self.batch_size)
        stats.due = len(entries)
        for entry in entries:
            event = entry.event
            try:
                error = self.publisher.publish_json(
                    event.envelope,
                    message_id=event.id,
                    event_type=event.type,
                    routing_key=event.type,
                )
            except BrokerUnavailable:
                if stats.due:
                    log_json("relay.batch", **asdict(stats))
                raise
            if error is None:
                repository.outbox_mark_sent(document_id=entry.document_id, event_id=event.id)
                stats.published += 1
                continue
            delay = min(
                self.sweep_interval * 2 ** min(entry.attempts + 1, 16), self.retry_delay_max
            )
            repository.outbox_postpone(
                document_id=entry.document_id, event_id=event.id, error=error, delay_s=delay
            )
            stats.postponed += 1
            log_json(
                "relay.publish_failed",
                event_id=event.id,
                type=event.type,
                attempts=entry.attempts + 1,
                error=error,
                retry_in_s=delay,
            )
        if stats.due:
            log_json("relay.batch", **asdict(stats))
        return stats

    def run_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        backoff = self.backoff_initial
        log_json(
            "relay.started",
            exchange=self.publisher.exchange,
            sweep_interval_s=self.sweep_interval,
        )
        try:
            while not stop.is_set():
                try:
                    self.run_once()
                    backoff = self.backoff_initial
                    stop.wait(self.sweep_interval)
                except (BrokerUnavailable, DependencyUnavailable, OSError) as exc:
                    self.outages += 1
                    log_json(
                        "relay.unavailable",
                        error=f"{type(exc).__name__}: {exc}",
                        retry_in_s=backoff,
                    )
                    self.publisher.close()
                    stop.wait(backoff)
                    backoff = min(backoff * 2, self.backoff_max)
        finally:
            self.publisher.close()
            log_json("relay.stopped", outages=self.outages, **asdict(self.totals))
