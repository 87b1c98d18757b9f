"""A Celery app per consuming service, whose worker consumes `<service>.blog-events`.

The relay publishes raw CloudEvents JSON bodies (content type
`application/cloudevents+json`), not Celery task messages, so the events are
consumed by a kombu consumer that a Celery bootstep (`EventConsumerStep`, a
`ConsumerStep`) attaches to the worker's broker connection. Celery runs it:
connection, reconnection with back-off (the step is restarted and declares the
topology again), signals, warm shutdown, logging, remote control on the app's
own exchanges. See docs/adr/0002-celery-consumers.md.

    app = make_consumer_app("comments", {"post.created": "comments.events.on_post_created"})
    app.worker_main(["worker", "--pool=solo", ...])  # or: manage.py bus_consume --service comments
"""

from __future__ import annotations

from collections.abc import Mapping

import kombu
from celery import Celery, bootsteps

from blogbus import broker
from blogbus.bus.consumer import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_DELAY,
    EventHandler,
    Handler,
    OwnQueuePublisher,
    log_json,
)
from blogbus.bus.topology import Topology
from blogbus.envelope import STRUCTURED_CONTENT_TYPE

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
# Arguments for `app.worker_main`: one process (the handler runs in the consumer
# step; a SIGKILL loses the connection and RabbitMQ redelivers every unacked
# message), and none of the cluster chatter the bus does not use.
WORKER_ARGV = ["worker", "--pool=solo", "--without-gossip", "--without-mingle"]


class EventConsumerStep(bootsteps.ConsumerStep):
    """Declares the service's topology and consumes its queue with prefetch 1.

    Runs on every (re)start of the worker's consumer, i.e. after each
    reconnection, so the queue and its bindings always exist while it consumes.
    """

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.handler: EventHandler | None = None
        self.config: dict = {}

    def start(self, c):
        self.config = c.app.conf.blogbus
        super().start(c)

    def get_consumers(self, channel):
        config = self.config
        topology: Topology = config["topology"]
        topology.declare(channel)
        if self.handler is None:
            self.handler = EventHandler(
                topology.service,
                config["handlers"],
                publisher=OwnQueuePublisher(config["broker_url"], topology.service),
                max_retries=config["max_retries"],
                retry_delay=config["retry_delay"],
                using=config["database"],
                inbox=config.get("inbox", True),
            )
        log_json("bus.consuming", service=topology.service, queue=topology.queue_name)
        return [
            kombu.Consumer(
                channel,
                queues=[topology.queue],
                on_message=self.handler.on_message,
                accept=[STRUCTURED_CONTENT_TYPE, "application/json"],
                prefetch_count=1,
                no_ack=False,
            )
        ]

    def shutdown(self, c):
        super().shutdown(c)
        if self.handler is not None:
            self.handler.close()


def make_consumer_app(
    service: str,
    handlers: Mapping[str, str | Handler],
    broker_url: str = DEFAULT_BROKER_URL,
    *,
    bindings: tuple[str, ...] | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    retry_delay: float = DEFAULT_RETRY_DELAY,
    database: str = "default",
    inbox: bool = True,
) -> Celery:
    """A Celery app whose worker applies `handlers` (event type -> callable or dotted path).

    `bindings` default to the handled types (routing key = event type).
    Django must be set up before the worker handles a message (the inbox is a
    Django model); `manage.py bus_consume` does that. `inbox=False` runs the
    handlers without the inbox (no SQL database needed; handlers must be
    idempotent by construction).
    """
    topology = Topology(service=service, bindings=tuple(bindings or handlers))
    filesystem = broker.is_filesystem(broker_url)
    app = Celery(f"blogbus-{service}", broker=broker.kombu_url(broker_url), set_as_current=False)
    app.conf.update(
        # On the embedded profile's filesystem broker, remote control would leave a
        # pidbox queue per worker run in the folder; nothing uses it there.
        worker_enable_remote_control=not filesystem,
        # For any Celery task the service adds; the event step acks after commit by itself.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Several apps share a vhost: their own pidbox / event exchanges and task queue.
        control_exchange=f"blogbus.{service}",
        event_exchange=f"blogbus.{service}.ev",
        task_default_queue=f"{service}.celery",
        task_default_exchange=f"{service}.celery",
        task_default_routing_key=f"{service}.celery",
        accept_content=["json", STRUCTURED_CONTENT_TYPE],
        task_serializer="json",
        result_serializer="json",
        result_backend=None,
        broker_connection_retry_on_startup=True,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_heartbeat=60,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        blogbus={
            "topology": topology,
            "handlers": dict(handlers),
            "broker_url": broker_url,
            "max_retries": max_retries,
            "retry_delay": retry_delay,
            "database": database,
            "inbox": inbox,
        },
    )
    app.steps["consumer"].add(EventConsumerStep)
    return app
