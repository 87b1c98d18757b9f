"""Move dead letters back to their service's own queue."""

from __future__ import annotations

import kombu

from blogbus import broker
from blogbus.bus.consumer import copy_properties
from blogbus.bus.topology import dead_letter_queue_name, queue_name


def replay_dead(
    broker_url: str, service: str, *, limit: int | None = None, confirm_timeout: float = 10.0
) -> int:
    """Republish up to `limit` messages of `<service>.blog-events.dlq` to `<service>.blog-events`.

    Each goes through the default exchange (routing key = the service's queue,
    so no other service sees it again) with `x-retries` reset to 0, published
    with confirms and `mandatory=True`, and only then acked in the DLQ: a crash
    in between leaves a copy in both, which the inbox makes harmless.
    Returns how many were moved.
    """
    moved = 0
    with broker.connection(broker_url) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0.2)
        source = connection.channel()
        target = connection.channel()
        try:
            # Passive: replaying never creates a queue (a typo in --service must not).
            dlq = kombu.Queue(dead_letter_queue_name(service), no_declare=True)(source)
            source.queue_declare(queue=dlq.name, passive=True)
            target.queue_declare(queue=queue_name(service), passive=True)
            producer = kombu.Producer(target, auto_declare=False)
            while limit is None or moved < limit:
                message = dlq.get(no_ack=False, accept=None)
                if message is None:
                    break
                producer.publish(
                    message.body,
                    exchange="",
                    routing_key=queue_name(service),
                    mandatory=True,
                    timeout=confirm_timeout,
                    **copy_properties(message, retries=0),
                )
                message.ack()
                moved += 1
        finally:
            for channel in (source, target):
                channel.close()
    return moved
