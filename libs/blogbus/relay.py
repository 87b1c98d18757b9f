"""Outbox relay: one loop that publishes pending events to the topic exchange, at
least once, over any outbox that implements `OutboxStore`.

`Relay` is the loop: one pass (`run_once`) claims batches from the store,
publishes each batch with publisher confirms and `mandatory=True`, the confirms
awaited together (`blogbus.publisher.EnvelopePublisher.publish_many`), and
marks an event sent only after the broker's ack. An event that came back
unroutable (`basic.return`), was nacked or refused stays pending with a
back-off (`sweep_interval` doubling per attempt, up to `retry_delay_max`).
The loop (`run_forever`) sweeps every `sweep_interval` seconds and is woken
earlier where the store can be (NOTIFY on PostgreSQL); broker or store
down: it logs `relay.unavailable`, backs off exponentially and tries again.
Nothing is marked sent without an ack, so nothing is lost; a crash between
the ack and the mark publishes again.

The stores:

- the SQL outbox (`OutboxEvent` rows, `blogbus.outbox.store.SqlOutboxStore`):
  `OutboxRelay` below, `manage.py outbox_relay`;
- any other, e.g. a pending event kept inside a document: implement
  `OutboxStore` and run `Relay(store, publisher)` (see `run_command` for a
  management command).

This module imports no Django model (`OutboxRelay` imports its store on use),
so a service without `blogbus.outbox` (no SQL database) can run the loop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from blogbus.publisher import (
    DEFAULT_BROKER_URL,
    DEFAULT_EXCHANGE,
    BrokerUnavailable,
    EnvelopePublisher,
)

logger = logging.getLogger("blogbus.relay")


# -- the store protocol ---------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """One event a store hands to the loop."""

    event_id: str
    type: str
    routing_key: str
    body: str  # the CloudEvents envelope, as JSON
    attempts: int  # failed publishes so far
    ref: object = None  # the store's own handle on it (row id, document id)


class OutboxStore(Protocol):
    """Where pending events wait. The loop calls, for each pass:

        listen()                                # (the loop only) before the pass
        with claim_batch(limit) as batch:       # batch after batch
            mark_sent(p) / mark_failed(p, ...)  # each once the broker answered it
        wait_for_work(timeout)                  # (the loop only) until the next pass

    and `close()` after an outage (the next call reconnects) and at the end.
    """

    # What the store raises when its database cannot be reached: the loop backs
    # off and retries (with BrokerUnavailable and OSError); anything else is a bug.
    errors: tuple[type[Exception], ...]

    def claim_batch(self, limit: int) -> contextlib.AbstractContextManager[list[Pending]]:
        """Up to `limit` due events, oldest first, for the block's duration.

        The block ends normally also when the broker went down mid-batch: what
        was marked in it must then be kept. A store may hold a claim (a lock,
        a transaction) until the block ends; none: another relay may publish
        the same event too, which at-least-once allows.
        """
        ...

    def mark_sent(self, pending: Pending) -> None:
        """The broker acked it: not to be published again (recorded now or at the block's end)."""
        ...

    def mark_failed(self, pending: Pending, error: str, retry_in: float) -> None:
        """Not published (unroutable, nacked, refused): attempts + 1, `error` kept,
        not due again for `retry_in` seconds."""
        ...

    def listen(self) -> None:
        """Start (or keep) the wake-ups before a pass, so that nothing committed
        between the pass and `wait_for_work` is missed. No-op for a store without."""
        ...

    def wait_for_work(self, timeout: float) -> bool:
        """Block up to `timeout` seconds (at most 0.5); True when woken by new work."""
        ...

    def close(self) -> None: ...


# -- the loop -------------------------------------------------------------------


@dataclass
class RelayStats:
    claimed: int = 0
    published: int = 0
    returned: int = 0  # unroutable: no queue bound (mandatory)
    nacked: int = 0
    refused: int = 0  # the broker closed the channel over it, or could not store it

    def add(self, other: RelayStats) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    @property
    def due(self) -> int:
        """`claimed`, as said of a store that takes no claim (no lock)."""
        return self.claimed

    @property
    def postponed(self) -> int:
        """Kept for a retry, whatever the reason."""
        return self.returned + self.nacked + self.refused


class Relay:
    """The loop over one store and one publisher (which it closes)."""

    # Longest wait between two looks at `stop`.
    WAIT_SLICE_S = 0.5

    def __init__(
        self,
        store: OutboxStore,
        publisher: EnvelopePublisher,
        *,
        batch_size: int = 100,
        sweep_interval: float = 1.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        retry_delay_max: float = 60.0,
        logger: logging.Logger = logger,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.batch_size = batch_size
        self.sweep_interval = sweep_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.retry_delay_max = retry_delay_max
        self.logger = logger
        self.unavailable: tuple[type[Exception], ...] = (BrokerUnavailable, OSError, *store.errors)
        self.totals = RelayStats()
        self.outages = 0  # times the loop found the broker or the store unreachable
        self.listening = threading.Event()  # set once the store listens and the first pass is done

    def log(self, event: str, **fields: Any) -> None:
        """One JSON object per log line."""
        self.logger.info(json.dumps({"event": event, **fields}, separators=(",", ":"), default=str))

    # -- one pass -----------------------------------------------------------

    def run_once(self) -> RelayStats:
        """Publish every due event, batch after batch. Raises BrokerUnavailable or one
        of the store's errors; events acked before that are marked sent."""
        stats = RelayStats()
        tried: set[str] = set()
        try:
            while True:
                batch = RelayStats()
                try:
                    fresh = self._relay_batch(batch, tried)
                finally:
                    stats.add(batch)
                # A batch that brought back only events this pass tried already (a
                # retry delay shorter than the pass) ends it instead of spinning.
                if batch.claimed < self.batch_size or not fresh:
                    break
        finally:
            self.totals.add(stats)
        return stats

    def _relay_batch(self, stats: RelayStats, tried: set[str]) -> bool:
        """One batch; True when it held an event this pass had not tried yet."""
        broker_down: BrokerUnavailable | None = None
        with self.store.claim_batch(self.batch_size) as batch:
            stats.claimed = len(batch)
            fresh = any(pending.event_id not in tried for pending in batch)
            tried.update(pending.event_id for pending in batch)
            try:
                # In the order claimed, the confirms awaited together.
                answers = self.publisher.publish_many(batch)
            except BrokerUnavailable as exc:
                # The block still ends normally: the events acked before stay marked.
                self.publisher.close()
                broker_down, answers = exc, exc.answered
            for pending in batch:
                if pending.event_id not in answers:
                    continue  # not answered (the broker went away): still pending, as it was
                error = answers[pending.event_id]
                if error is None:
                    self.store.mark_sent(pending)
                    stats.published += 1
                    continue
                if error.startswith("unroutable"):
                    stats.returned += 1
                elif error.startswith("nacked"):
                    stats.nacked += 1
                else:
                    stats.refused += 1
                self._postpone(pending, error)
        if stats.claimed:
            self.log("relay.batch", **asdict(stats))
        if broker_down is not None:
            raise broker_down
        return fresh

    def _postpone(self, pending: Pending, error: str) -> None:
        delay = min(self.sweep_interval * 2 ** min(pending.attempts, 16), self.retry_delay_max)
        self.store.mark_failed(pending, error, delay)
        self.log(
            "relay.publish_failed",
            event_id=pending.event_id,
            type=pending.type,
            attempts=pending.attempts + 1,
            error=error,
            retry_in_s=delay,
        )

    # -- the loop -----------------------------------------------------------

    def run_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        backoff = self.backoff_initial
        self.log(
            "relay.started",
            exchange=self.publisher.exchange,
            store=repr(self.store),
            sweep_interval_s=self.sweep_interval,
        )
        try:
            while not stop.is_set():
                try:
                    self.store.listen()
                    self.run_once()
                    self.listening.set()
                    backoff = self.backoff_initial
                    self._wait_for_work(stop)
                except self.unavailable as exc:
                    self.outages += 1
                    self.log(
                        "relay.unavailable",
                        error=f"{type(exc).__name__}: {exc}",
                        retry_in_s=backoff,
                    )
                    self.publisher.close()
                    self.store.close()
                    stop.wait(backoff)
                    backoff = min(backoff * 2, self.backoff_max)
        finally:
            self.close()
            self.log("relay.stopped", outages=self.outages, **asdict(self.totals))

    def _wait_for_work(self, stop: threading.Event) -> None:
        """Return when the store is woken, at the next sweep, or soon after `stop` is set."""
        deadline = time.monotonic() + self.sweep_interval
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self.store.wait_for_work(min(remaining, self.WAIT_SLICE_S)):
                return

    def close(self) -> None:
        self.publisher.close()
        self.store.close()


def run_command(relay: Relay, *, once: bool) -> None:
    """A relay's management command: JSON lines on stderr (whatever LOGGING says),
    then one pass (`--once`: exit 1 if the broker or the store is unreachable) or
    the loop until SIGINT or SIGTERM."""
    if not relay.logger.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        relay.logger.addHandler(handler)
        relay.logger.setLevel(logging.INFO)
    if once:
        try:
            stats = relay.run_once()
        except relay.unavailable as exc:
            relay.log("relay.unavailable", error=f"{type(exc).__name__}: {exc}")
            sys.exit(1)
        finally:
            relay.close()
        relay.log("relay.once", **asdict(stats))
        return
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    relay.run_forever(stop)


# -- the SQL outbox's relay -------------------------------------------------------


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
        from blogbus.outbox.services import notify_channel  # on use: see the module doc

        values = {
            "broker_url": getattr(settings, "BLOGBUS_BROKER_URL", DEFAULT_BROKER_URL),
            "exchange": getattr(settings, "BLOGBUS_EXCHANGE", DEFAULT_EXCHANGE),
            "notify_channel": notify_channel(),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


class OutboxRelay(Relay):
    """The relay of the SQL outbox (`OutboxEvent` rows, `blogbus.outbox` installed):
    LISTEN/NOTIFY + sweep, `SELECT ... FOR UPDATE SKIP LOCKED`, sent marked at the
    batch's commit (`blogbus.outbox.store`)."""

    def __init__(self, config: RelayConfig | None = None) -> None:
        from blogbus.outbox.store import SqlOutboxStore  # on use: see the module doc

        self.config = config or RelayConfig.from_settings()
        publisher = EnvelopePublisher(
            self.config.broker_url,
            self.config.exchange,
            connect_timeout=self.config.connect_timeout,
            confirm_timeout=self.config.confirm_timeout,
        )
        super().__init__(
            SqlOutboxStore(self.config.database, self.config.notify_channel),
            publisher,
            batch_size=self.config.batch_size,
            sweep_interval=self.config.sweep_interval,
            backoff_initial=self.config.backoff_initial,
            backoff_max=self.config.backoff_max,
            retry_delay_max=self.config.retry_delay_max,
        )

    @property
    def _publisher(self) -> EnvelopePublisher:
        # The name it had before the loop was shared with other stores.
        return self.publisher
