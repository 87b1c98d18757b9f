import logging
import signal
import sys
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from blogbus.publisher import BrokerUnavailable, EnvelopePublisher
from blogweb.exceptions import DependencyUnavailable
from comments.outbox_relay import CommentsOutboxRelay, log_json


class Command(BaseCommand):
    help = (
        "Publish the comments' pending events (the outbox field of each comment) to the "
        "topic exchange with publisher confirms and mandatory, removing each only after "
        "the broker's ack. Sweeps every 0.5 s; --once for one pass."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one pass, then exit")
        parser.add_argument("--broker-url", help="default: settings.BLOGBUS_BROKER_URL")
        parser.add_argument("--exchange", help="default: settings.BLOGBUS_EXCHANGE")
        parser.add_argument("--batch-size", type=int, default=100)
        parser.add_argument("--sweep-interval", type=float, default=0.1, help="seconds")

    def handle(self, *args, **options):
        relay_logger = logging.getLogger("comments.outbox_relay")
        if not relay_logger.hasHandlers():
            # One JSON object per line on stderr, whatever LOGGING says.
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            relay_logger.addHandler(handler)
            relay_logger.setLevel(logging.INFO)
        publisher = EnvelopePublisher(
            options["broker_url"] or settings.BLOGBUS_BROKER_URL,
            options["exchange"] or settings.BLOGBUS_EXCHANGE,
        )
        relay = CommentsOutboxRelay(
            publisher,
            batch_size=options["batch_size"],
            sweep_interval=options["sweep_interval"],
        )
        if options["once"]:
            try:
                stats = relay.run_once()
            except (BrokerUnavailable, DependencyUnavailable) as exc:
                log_json("relay.unavailable", error=f"{type(exc).__name__}: {exc}")
                sys.exit(1)
            finally:
                publisher.close()
            log_json("relay.once", **vars(stats))
            return
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        relay.run_forever(stop)
