from django.conf import settings
from django.core.management.base import BaseCommand

from blogbus.publisher import EnvelopePublisher
from blogbus.relay import run_command
from comments.outbox_relay import CommentsOutboxRelay


class Command(BaseCommand):
    help = (
        "Publish the comments' pending events (the outbox field of each comment) to the "
        "topic exchange with publisher confirms and mandatory, removing each only after "
        "the broker's ack. Woken by a change stream where MongoDB has them (a replica set), "
        "sweeping every second; every 0.1 s where it has not (a standalone). --once for one pass."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one pass, then exit")
        parser.add_argument("--broker-url", help="default: settings.BLOGBUS_BROKER_URL")
        parser.add_argument("--exchange", help="default: settings.BLOGBUS_EXCHANGE")
        parser.add_argument("--batch-size", type=int, default=100)
        parser.add_argument(
            "--sweep-interval", type=float, default=1.0, help="seconds, with a change stream"
        )
        parser.add_argument(
            "--fallback-sweep-interval",
            type=float,
            default=0.1,
            help="seconds, where the server has no change streams",
        )
        parser.add_argument(
            "--no-watch", action="store_true", help="sweep only, without a change stream"
        )

    def handle(self, *args, **options):
        publisher = EnvelopePublisher(
            options["broker_url"] or settings.BLOGBUS_BROKER_URL,
            options["exchange"] or settings.BLOGBUS_EXCHANGE,
        )
        relay = CommentsOutboxRelay(
            publisher,
            batch_size=options["batch_size"],
            sweep_interval=options["sweep_interval"],
            fallback_sweep_interval=options["fallback_sweep_interval"],
            watch=not options["no_watch"],
        )
        run_command(relay, once=options["once"])
