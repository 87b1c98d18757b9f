import logging
import signal
import sys
import threading

from django.core.management.base import BaseCommand

from blogbus.relay import BrokerUnavailable, OutboxRelay, RelayConfig, log_json


class Command(BaseCommand):
    help = (
        "Publish committed outbox events to the topic exchange with publisher confirms. "
        "Woken by NOTIFY on commit, sweeps periodically; --once for one pass."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one pass, then exit")
        parser.add_argument("--broker-url", help="default: settings.BLOGBUS_BROKER_URL")
        parser.add_argument("--exchange", help="default: settings.BLOGBUS_EXCHANGE or blog.events")
        parser.add_argument("--database", help="database alias (default: default)")
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--sweep-interval", type=float, help="seconds between sweeps")

    def handle(self, *args, **options):
        relay_logger = logging.getLogger("blogbus.relay")
        if not relay_logger.hasHandlers():
            # One JSON object per line on stderr, whatever LOGGING the service has.
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            relay_logger.addHandler(handler)
            relay_logger.setLevel(logging.INFO)
        config = RelayConfig.from_settings(
            broker_url=options["broker_url"],
            exchange=options["exchange"],
            database=options["database"],
            batch_size=options["batch_size"],
            sweep_interval=options["sweep_interval"],
        )
        relay = OutboxRelay(config)
        if options["once"]:
            try:
                stats = relay.run_once()
            except BrokerUnavailable as exc:
                log_json("relay.unavailable", error=str(exc))
                sys.exit(1)
            finally:
                relay.close()
            log_json("relay.once", **vars(stats))
            return
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        relay.run_forever(stop)
