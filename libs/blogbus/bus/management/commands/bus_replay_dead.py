from amqp.exceptions import NotFound
from django.core.management.base import BaseCommand, CommandError

from blogbus.bus.management.commands._common import broker_url
from blogbus.bus.replay import replay_dead
from blogbus.bus.topology import dead_letter_queue_name, queue_name


class Command(BaseCommand):
    help = (
        "Move messages from <service>.blog-events.dlq back to <service>.blog-events "
        "(default exchange, only that service), resetting x-retries."
    )

    def add_arguments(self, parser):
        parser.add_argument("--service", required=True)
        parser.add_argument("--limit", type=int, help="move at most this many (default: all)")
        parser.add_argument("--broker-url", help="default: settings.BLOGBUS_BROKER_URL")

    def handle(self, *args, **options):
        service, limit = options["service"], options["limit"]
        if limit is not None and limit < 0:
            raise CommandError("--limit must be >= 0")
        try:
            moved = replay_dead(broker_url(options["broker_url"]), service, limit=limit)
        except NotFound as exc:
            raise CommandError(f"no such queue (run bus_declare first): {exc}") from exc
        self.stdout.write(
            f"replayed {moved} message(s) from {dead_letter_queue_name(service)} "
            f"to {queue_name(service)}"
        )
