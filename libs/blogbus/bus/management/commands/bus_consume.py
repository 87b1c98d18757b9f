import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from blogbus import broker
from blogbus.bus.consumer import DEFAULT_MAX_RETRIES, DEFAULT_RETRY_DELAY
from blogbus.bus.management.commands._common import broker_url
from blogbus.bus.worker import WORKER_ARGV, make_consumer_app


class Command(BaseCommand):
    help = (
        "Run the Celery worker of a service: declare its queue and bindings, then apply "
        "each event once (inbox), retry on its own queue, dead-letter after the retries. "
        "Handlers: settings.BLOGBUS_CONSUMERS[service] = {type: dotted path}, or --handler."
    )

    def add_arguments(self, parser):
        parser.add_argument("--service", required=True)
        parser.add_argument(
            "--handler",
            action="append",
            default=[],
            metavar="TYPE=DOTTED.PATH",
            help="event type and its handler (repeatable; overrides the settings)",
        )
        parser.add_argument("--broker-url", help="default: settings.BLOGBUS_BROKER_URL")
        parser.add_argument("--max-retries", type=int, default=DEFAULT_MAX_RETRIES)
        parser.add_argument("--retry-delay", type=float, default=DEFAULT_RETRY_DELAY)
        parser.add_argument("--database", default="default")
        parser.add_argument("--loglevel", default="INFO")
        parser.add_argument(
            "--no-inbox",
            action="store_true",
            help="run the handlers without the inbox (idempotent handlers, no SQL database); "
            "default: settings.BLOGBUS_INBOX (True)",
        )

    def handle(self, *args, **options):
        service = options["service"]
        handlers = dict(getattr(settings, "BLOGBUS_CONSUMERS", {}).get(service, {}))
        for item in options["handler"]:
            event_type, sep, path = item.partition("=")
            if not sep or not event_type or not path:
                raise CommandError(f"--handler wants TYPE=DOTTED.PATH, not {item!r}")
            handlers[event_type] = path
        if not handlers:
            raise CommandError(f"no handlers for {service!r} (BLOGBUS_CONSUMERS or --handler)")
        url = broker_url(options["broker_url"])
        app = make_consumer_app(
            service,
            handlers,
            url,
            max_retries=options["max_retries"],
            retry_delay=options["retry_delay"],
            database=options["database"],
            inbox=not options["no_inbox"] and getattr(settings, "BLOGBUS_INBOX", True),
        )
        # Celery's command line reads BROKER_URL from the environment as its --broker
        # option, which would replace the app's broker with the raw URL (for
        # filesystem://, kombu's stock transport). The app already has the right one.
        os.environ.pop("BROKER_URL", None)
        os.environ["CELERY_BROKER_URL"] = broker.kombu_url(url)
        app.worker_main(
            [*WORKER_ARGV, f"--hostname={service}@%h", f"--loglevel={options['loglevel']}"]
        )
