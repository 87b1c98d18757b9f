"""blogbus.bus without the inbox (`inbox=False`, `bus_consume --no-inbox`,
`settings.BLOGBUS_INBOX = False`): for a service with no SQL database whose
handlers are idempotent by construction. The default is unchanged (inbox)."""

import uuid

import kombu
import pytest
from django.conf import settings

from blogbus.bus.consumer import EventHandler, OwnQueuePublisher
from blogbus.bus.management.commands import bus_consume
from blogbus.bus.worker import make_consumer_app
from blogbus.envelope import POST_CREATED, Envelope
from blogbus.inbox.models import InboxEvent

pytestmark = pytest.mark.django_db(transaction=True)


def post_created() -> Envelope:
    return Envelope.new(
        type=POST_CREATED,
        source="/monolith",
        data={"id": str(uuid.uuid4()), "title": "t", "created_at": "2026-11-25T18:30:00.000Z"},
    )


@pytest.fixture
def deliver(broker, exchange, make_queue, wait_for):
    """Publish an envelope to a queue of the test and hand back the delivered message."""
    queue = make_queue(POST_CREATED)
    channel = broker.channel()

    def deliver(envelope: Envelope) -> kombu.Message:
        kombu.Producer(channel).publish(
            envelope.to_json(),
            exchange=exchange.name,
            routing_key=envelope.type,
            content_type="application/cloudevents+json",
            content_encoding="utf-8",
        )
        got: list[kombu.Message] = []

        def one() -> bool:
            message = queue.get(no_ack=False, accept=["application/cloudevents+json"])
            if message is not None:
                got.append(message)
            return bool(got)

        wait_for(one, what="the delivery")
        return got[0]

    yield deliver
    channel.close()


def make_handler(calls: list[str], *, inbox: bool) -> EventHandler:
    return EventHandler(
        "noinbox-test",
        {POST_CREATED: lambda envelope: calls.append(envelope.id)},
        publisher=OwnQueuePublisher(settings.BLOGBUS_BROKER_URL, "noinbox-test"),
        inbox=inbox,
    )


def test_without_the_inbox_the_handler_runs_for_every_delivery(deliver):
    calls: list[str] = []
    handler = make_handler(calls, inbox=False)
    event = post_created()
    assert handler.on_message(deliver(event)) == "applied"
    assert handler.on_message(deliver(event)) == "applied"  # idempotence is the handler's
    assert calls == [event.id, event.id]
    assert InboxEvent.objects.count() == 0  # the inbox is never touched
    handler.close()


def test_the_default_still_applies_each_event_once_through_the_inbox(deliver):
    calls: list[str] = []
    handler = make_handler(calls, inbox=True)
    event = post_created()
    assert handler.on_message(deliver(event)) == "applied"
    assert handler.on_message(deliver(event)) == "duplicate"
    assert calls == [event.id]
    assert InboxEvent.objects.filter(event_id=event.id).count() == 1
    handler.close()


def test_make_consumer_app_carries_the_option():
    handlers = {POST_CREATED: "tests.bus_handlers.apply"}
    assert make_consumer_app("svc-a", handlers).conf.blogbus["inbox"] is True
    assert make_consumer_app("svc-b", handlers, inbox=False).conf.blogbus["inbox"] is False


class _App:
    def worker_main(self, argv):
        self.argv = argv


@pytest.mark.parametrize(
    ("setting", "flag", "expected"),
    [(None, False, True), (None, True, False), (False, False, False), (True, True, False)],
)
def test_bus_consume_takes_the_setting_and_the_flag(monkeypatch, settings, setting, flag, expected):
    if setting is not None:
        settings.BLOGBUS_INBOX = setting
    elif hasattr(settings, "BLOGBUS_INBOX"):
        del settings.BLOGBUS_INBOX
    seen = {}

    def fake_make_consumer_app(service, handlers, broker_url, **kwargs):
        seen.update(kwargs)
        return _App()

    monkeypatch.setattr(bus_consume, "make_consumer_app", fake_make_consumer_app)
    args = ["--service=svc", f"--handler={POST_CREATED}=tests.bus_handlers.apply"]
    if flag:
        args.append("--no-inbox")
    command = bus_consume.Command()
    command.run_from_argv(["manage.py", "bus_consume", *args])
    assert seen["inbox"] is expected
