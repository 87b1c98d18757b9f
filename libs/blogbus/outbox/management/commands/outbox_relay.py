from django.core.management.base import BaseCommand

from blogbus.relay import OutboxRelay, RelayConfig, run_command


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
        config = RelayConfig.from_settings(
            broker_url=options["broker_url"],
            exchange=options["exchange"],
            database=options["database"],
            batch_size=options["batch_size"],
            sweep_interval=options["sweep_interval"],
        )
        run_command(OutboxRelay(config), once=options["once"])
