from django.core.management.base import BaseCommand, CommandError

from blogbus import broker
from blogbus.bus.management.commands._common import broker_url
from blogbus.bus.topology import declare_topology


class Command(BaseCommand):
    help = (
        "Declare (idempotently) blog.events, the dead-letter exchange, a service's queue "
        "<service>.blog-events bound by the given keys, and its <service>.blog-events.dlq."
    )

    def add_arguments(self, parser):
        parser.add_argument("--service", required=True)
        parser.add_argument(
            "--key", action="append", default=[], help="routing key to bind (repeatable)"
        )
        parser.add_argument("--broker-url", help="default: settings.BLOGBUS_BROKER_URL")

    def handle(self, *args, **options):
        try:
            with broker.connection(broker_url(options["broker_url"])) as conn:
                conn.ensure_connection(max_retries=1, interval_start=0.2)
                topology = declare_topology(conn, options["service"], options["key"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"declared {topology.queue_name} bound to {topology.exchange_name} by "
            f"{', '.join(topology.bindings) or '(no key)'}; DLQ {topology.dead_letter_queue_name}"
        )
