"""Outbox relay figures on this machine: throughput with publisher confirms, and lag.

    .venv/bin/python bench/relay.py [--events 2000] [--lag-events 200]   (make bench-relay)

Uses its own PostgreSQL database (`blogbus_bench_<hex>`) and its own exchange and
queue (`*.bench-<hex>`) on the broker at BROKER_URL (RabbitMQ, or the embedded
profile's `filesystem:///abs/folder`), and drops them at the end.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import threading
import time
import uuid

import django
import kombu
import psycopg
from django.conf import settings
from psycopg import sql

PG = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": os.environ.get("PGPORT", "5432"),
    "user": os.environ.get("PGUSER", "postgres"),
    "password": os.environ.get("PGPASSWORD", ""),
}
BROKER_URL = os.environ.get("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")


def configure(dbname: str) -> None:
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "blogbus.outbox"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": dbname,
                "USER": PG["user"],
                "PASSWORD": PG["password"],
                "HOST": PG["host"],
                "PORT": PG["port"],
            }
        },
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        BLOGBUS_BROKER_URL=BROKER_URL,
    )
    django.setup()


def admin_execute(statement: sql.Composable) -> None:
    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as admin:
        admin.execute(statement)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events for the throughput run")
    parser.add_argument("--lag-events", type=int, default=200, help="events for the lag run")
    args = parser.parse_args()

    tag = uuid.uuid4().hex[:10]
    dbname = f"blogbus_bench_{tag}"
    admin_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    configure(dbname)

    from django.core.management import call_command
    from django.db import connections, transaction

    from blogbus import broker as blogbus_broker
    from blogbus.envelope import POST_DELETED
    from blogbus.outbox.services import outbox_append
    from blogbus.relay import OutboxRelay, RelayConfig

    broker = blogbus_broker.connection(BROKER_URL, confirms=False)
    channel = broker.channel()
    exchange = kombu.Exchange(f"blog.events.bench-{tag}", "topic", durable=True)(channel)
    queue = kombu.Queue(f"blogbus.bench-{tag}", exchange=exchange, routing_key="#")(channel)
    try:
        exchange.declare()
        queue.declare()
        call_command("migrate", verbosity=0)

        def append_many(count: int) -> None:
            for start in range(0, count, 100):
                with transaction.atomic():
                    for _ in range(min(100, count - start)):
                        outbox_append(
                            type=POST_DELETED, source="/bench", data={"id": str(uuid.uuid4())}
                        )

        # 1. Throughput: a backlog published in one pass, the confirms of a batch awaited together.
        append_many(args.events)
        relay = OutboxRelay(RelayConfig(broker_url=BROKER_URL, exchange=exchange.name))
        started = time.perf_counter()
        stats = relay.run_once()
        elapsed = time.perf_counter() - started
        relay.close()
        queue.purge()
        print(
            f"throughput: {stats.published} events in {elapsed:.2f} s = "
            f"{stats.published / elapsed:,.0f} events/s (publisher confirms awaited per batch, "
            f"persistent, mandatory, batch {relay.config.batch_size})"
        )

        # 2. Lag from commit to message in the queue, relay woken by NOTIFY only.
        relay = OutboxRelay(
            RelayConfig(broker_url=BROKER_URL, exchange=exchange.name, sweep_interval=600)
        )
        stop = threading.Event()
        worker = threading.Thread(target=relay.run_forever, args=(stop,), daemon=True)
        worker.start()
        deadline = time.monotonic() + 10
        while not relay.listening.is_set():
            if time.monotonic() > deadline:
                raise SystemExit("relay did not start listening")
            time.sleep(0.01)
        lags: list[float] = []
        for _ in range(args.lag_events):
            with transaction.atomic():
                outbox_append(type=POST_DELETED, source="/bench", data={"id": str(uuid.uuid4())})
            committed = time.perf_counter()
            deadline = time.monotonic() + 10
            while queue.get(no_ack=True) is None:
                if time.monotonic() > deadline:
                    raise SystemExit("an event did not arrive within 10 s")
                time.sleep(0.0005)
            lags.append((time.perf_counter() - committed) * 1000)
        stop.set()
        worker.join(timeout=10)
        print(
            f"lag commit -> queue (NOTIFY wake-up, {len(lags)} events one at a time): "
            f"p50 {percentile(lags, 0.5):.1f} ms, p99 {percentile(lags, 0.99):.1f} ms, "
            f"max {max(lags):.1f} ms, mean {statistics.fmean(lags):.1f} ms"
        )
        print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs")
    finally:
        queue.delete()
        exchange.delete()
        broker.release()
        connections.close_all()
        admin_execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))


if __name__ == "__main__":
    main()
