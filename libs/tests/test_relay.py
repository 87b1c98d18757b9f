import contextlib
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction

from blogbus.envelope import COMMENT_CREATED, POST_CREATED, POST_DELETED, Envelope
from blogbus.outbox.models import OutboxEvent
from blogbus.outbox.services import outbox_append
from blogbus.publisher import EnvelopePublisher, Outgoing
from blogbus.relay import BrokerUnavailable, OutboxRelay, Pending, Relay, RelayConfig

pytestmark = pytest.mark.django_db(transaction=True)


# RabbitMQ and the embedded profile's filesystem:// broker (broker_url in conftest).
both_brokers = pytest.mark.parametrize("broker_url", ["amqp", "filesystem"], indirect=True)


def append(event_type: str = POST_CREATED, **data) -> OutboxEvent:
    data = {"id": str(uuid.uuid4()), **data}
    with transaction.atomic():
        return outbox_append(type=event_type, source="/monolith", data=data)


@both_brokers
def test_relay_publishes_the_envelope_and_marks_the_row_sent(relay, make_queue, drain):
    queue = make_queue(POST_CREATED)
    event = append(title="Hello", created_at="2026-11-25T18:30:00.123Z")

    stats = relay.run_once()

    assert (stats.claimed, stats.published, stats.returned, stats.nacked) == (1, 1, 0, 0)
    [message] = drain(queue, 1)
    assert json.loads(message.body) == event.envelope().to_dict()
    assert Envelope.from_json(message.body).id == str(event.event_id)
    assert message.delivery_info["routing_key"] == POST_CREATED
    assert message.content_type == "application/cloudevents+json"
    assert message.properties["delivery_mode"] == 2
    assert message.properties["message_id"] == str(event.event_id)
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.SENT
    assert event.sent_at is not None
    assert relay.run_once().claimed == 0


@both_brokers
def test_routing_key_is_the_event_type(relay, make_queue, drain):
    posts = make_queue(POST_CREATED, POST_DELETED)
    comments = make_queue("comment.*")
    append(POST_CREATED)
    append(COMMENT_CREATED, post_id=str(uuid.uuid4()))
    append(POST_DELETED)

    assert relay.run_once().published == 3

    assert [m.delivery_info["routing_key"] for m in drain(posts, 2)] == [POST_CREATED, POST_DELETED]
    assert [m.delivery_info["routing_key"] for m in drain(comments, 1)] == [COMMENT_CREATED]


@both_brokers
def test_batches_are_published_in_creation_order(relay_config, make_queue, drain):
    queue = make_queue(POST_DELETED)
    events = [append(POST_DELETED) for _ in range(25)]
    relay = OutboxRelay(RelayConfig(**{**vars(relay_config), "batch_size": 10}))
    try:
        stats = relay.run_once()
    finally:
        relay.close()
    assert (stats.claimed, stats.published) == (25, 25)
    received = [json.loads(m.body)["id"] for m in drain(queue, 25)]
    assert received == [str(e.event_id) for e in events]
    assert not OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).exists()


@both_brokers
def test_unroutable_event_stays_pending_then_goes_once_a_queue_is_bound(relay, make_queue, drain):
    event = append(POST_DELETED)  # nothing is bound to post.deleted yet

    stats = relay.run_once()

    assert (stats.claimed, stats.published, stats.returned) == (1, 0, 1)
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.PENDING
    assert event.attempts == 1
    assert "unroutable" in event.last_error
    assert event.sent_at is None
    assert event.available_at > datetime.now(UTC)  # backed off: the next pass skips it
    assert relay.run_once().claimed == 0

    queue = make_queue(POST_DELETED)
    OutboxEvent.objects.filter(pk=event.pk).update(available_at=datetime.now(UTC))
    assert relay.run_once().published == 1
    [message] = drain(queue, 1)
    assert json.loads(message.body)["id"] == str(event.event_id)
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.SENT


def test_nacked_event_stays_pending(relay, make_queue):
    # A full queue with overflow=reject-publish makes RabbitMQ nack the publish.
    make_queue(POST_DELETED, arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    event = append(POST_DELETED)

    stats = relay.run_once()

    assert (stats.published, stats.nacked) == (0, 1)
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.PENDING
    assert event.attempts == 1
    assert "nack" in event.last_error


def test_broker_down_loses_nothing(relay_config):
    event = append(POST_DELETED)
    down = OutboxRelay(
        RelayConfig(
            **{**vars(relay_config), "broker_url": "amqp://guest:guest@127.0.0.1:1//"},
        )
    )
    try:
        with pytest.raises(BrokerUnavailable):
            down.run_once()
    finally:
        down.close()
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.PENDING
    assert event.attempts == 0  # not the event's fault


def test_row_locked_by_another_relay_is_skipped(relay, make_queue, drain, pg_connect):
    queue = make_queue(POST_DELETED)
    event = append(POST_DELETED)
    other = pg_connect(autocommit=False)
    other.execute("SELECT id FROM blogbus_outbox_event WHERE id = %s FOR UPDATE", [event.pk])
    assert relay.run_once().claimed == 0  # SKIP LOCKED: no wait, no double publish
    other.rollback()
    assert relay.run_once().published == 1
    drain(queue, 1)


def test_notify_wakes_the_relay_before_its_sweep(relay_config, make_queue, drain, wait_for):
    queue = make_queue(POST_CREATED)
    # A sweep every 10 minutes: only the NOTIFY can bring the event out within the test.
    relay = OutboxRelay(RelayConfig(**{**vars(relay_config), "sweep_interval": 600.0}))
    stop = threading.Event()
    worker = threading.Thread(target=relay.run_forever, args=(stop,), daemon=True)
    worker.start()
    try:
        wait_for(relay.listening.is_set, timeout_s=10, what="the relay to LISTEN")
        event = append(POST_CREATED)
        [message] = drain(queue, 1, timeout=10)
        assert json.loads(message.body)["id"] == str(event.event_id)
        wait_for(
            lambda: OutboxEvent.objects.get(pk=event.pk).status == OutboxEvent.Status.SENT,
            what="the row to be marked sent",
        )
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()
    assert relay.totals.published == 1


def test_relay_loop_backs_off_while_the_broker_is_down(relay_config, wait_for):
    append(POST_DELETED)
    relay = OutboxRelay(
        RelayConfig(
            **{
                **vars(relay_config),
                "broker_url": "amqp://guest:guest@127.0.0.1:1//",
                "backoff_initial": 0.05,
                "backoff_max": 0.2,
            }
        )
    )
    stop = threading.Event()
    worker = threading.Thread(target=relay.run_forever, args=(stop,), daemon=True)
    worker.start()
    try:
        wait_for(lambda: relay.outages >= 3, timeout_s=10, what="three reconnection attempts")
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()
    assert OutboxEvent.objects.get().status == OutboxEvent.Status.PENDING


@both_brokers
def test_outbox_relay_command_once(exchange, broker_url, make_queue, drain, caplog):
    queue = make_queue(POST_DELETED)
    event = append(POST_DELETED)

    with caplog.at_level("INFO", logger="blogbus.relay"):
        call_command(
            "outbox_relay", "--once", "--exchange", exchange.name, "--broker-url", broker_url
        )

    [message] = drain(queue, 1)
    assert json.loads(message.body)["id"] == str(event.event_id)
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.SENT
    lines = [json.loads(record.getMessage()) for record in caplog.records]  # JSON lines
    assert {
        "event": "relay.once",
        "claimed": 1,
        "published": 1,
        "returned": 0,
        "nacked": 0,
        "refused": 0,
    } in lines


def test_outbox_relay_command_once_exits_1_when_the_broker_is_down(exchange):
    event = append(POST_DELETED)
    with pytest.raises(SystemExit) as exited:
        call_command(
            "outbox_relay",
            "--once",
            "--exchange",
            exchange.name,
            "--broker-url",
            "amqp://guest:guest@127.0.0.1:1//",
        )
    assert exited.value.code == 1
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.PENDING


def test_events_written_while_the_broker_is_down_are_delivered_when_it_is_back(
    relay_config, make_queue, drain, wait_for, broker_proxy
):
    queue = make_queue(POST_DELETED)
    url = relay_config.broker_url.replace("127.0.0.1:5672", f"127.0.0.1:{broker_proxy.port}")
    assert str(broker_proxy.port) in url
    relay = OutboxRelay(
        RelayConfig(
            **{
                **vars(relay_config),
                "broker_url": url,
                "backoff_initial": 0.05,
                "backoff_max": 0.2,
            }
        )
    )
    stop = threading.Event()
    worker = threading.Thread(target=relay.run_forever, args=(stop,), daemon=True)
    worker.start()
    try:
        wait_for(relay.listening.is_set, what="the relay to LISTEN")
        before = {str(append(POST_DELETED).event_id) for _ in range(3)}
        assert {json.loads(m.body)["id"] for m in drain(queue, 3)} == before
        # Delivered is not yet confirmed: a consumer can take a message before
        # its publisher's ack, and the batch is marked sent after every ack.
        wait_for(
            lambda: not OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).exists(),
            what="the first three events marked sent",
        )

        broker_proxy.cut()
        during = {str(append(POST_DELETED).event_id) for _ in range(5)}
        wait_for(lambda: relay.outages >= 3, what="the relay to retry a few times")
        pending = OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING)
        assert {str(event_id) for event_id in pending.values_list("event_id", flat=True)} == during

        broker_proxy.restore()
        seen: set[str] = set()

        def all_delivered() -> bool:
            while (message := queue.get(no_ack=True)) is not None:
                seen.add(json.loads(message.body)["id"])
            return during <= seen

        wait_for(all_delivered, timeout_s=20, what="the events written while the broker was down")
        wait_for(lambda: not pending.exists(), what="every row to be marked sent")
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()


@both_brokers
def test_the_sweep_finds_an_event_whose_notify_was_missed(
    relay_config, make_queue, drain, wait_for, settings
):
    queue = make_queue(POST_DELETED)
    relay = OutboxRelay(RelayConfig(**{**vars(relay_config), "sweep_interval": 0.2}))
    stop = threading.Event()
    worker = threading.Thread(target=relay.run_forever, args=(stop,), daemon=True)
    worker.start()
    try:
        wait_for(relay.listening.is_set, what="the relay to LISTEN")
        settings.BLOGBUS_OUTBOX_CHANNEL = f"nobody_listens_{uuid.uuid4().hex[:8]}"
        event = append(POST_DELETED)  # its NOTIFY goes to a channel the relay does not hear
        [message] = drain(queue, 1)
        assert json.loads(message.body)["id"] == str(event.event_id)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()


def test_publish_refused_by_the_broker_keeps_the_row_and_the_relay_recovers(
    relay, exchange, broker, make_queue, drain
):
    make_queue(POST_DELETED)
    append(POST_DELETED)
    assert relay.run_once().published == 1  # the relay is connected, its exchange declared
    exchange(broker.default_channel).delete()  # the broker now closes the channel on publish
    event = append(POST_DELETED)

    stats = relay.run_once()

    assert (stats.claimed, stats.published, stats.refused) == (1, 0, 1)
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.PENDING
    assert event.attempts == 1
    assert "refused by the broker" in event.last_error
    # The exchange comes back (declared again with a new queue): the relay opens a new
    # channel and the postponed row goes out.
    queue = make_queue(POST_DELETED)
    OutboxEvent.objects.filter(pk=event.pk).update(available_at=datetime.now(UTC))
    assert relay.run_once().published == 1
    [message] = drain(queue, 1)
    assert json.loads(message.body)["id"] == str(event.event_id)


def test_a_channel_closed_over_a_batch_tries_each_event_alone(
    relay, exchange, broker, make_queue, drain
):
    """Which publish the broker closed the channel over, it does not say: each
    event is published again alone, on a new channel, and answered on its own
    (here the exchange is declared again with no queue: unroutable)."""
    make_queue(POST_DELETED)
    append(POST_DELETED)
    assert relay.run_once().published == 1
    exchange(broker.default_channel).delete()
    events = [append(POST_DELETED) for _ in range(3)]

    stats = relay.run_once()

    assert (stats.claimed, stats.published, stats.postponed) == (3, 0, 3)
    for event in events:
        event.refresh_from_db()
        assert (event.status, event.attempts) == (OutboxEvent.Status.PENDING, 1)
    queue = make_queue(POST_DELETED)
    OutboxEvent.objects.filter(pk__in=[e.pk for e in events]).update(available_at=datetime.now(UTC))
    assert relay.run_once().published == 3
    assert [json.loads(m.body)["id"] for m in drain(queue, 3)] == [str(e.event_id) for e in events]


@pytest.mark.parametrize("broker_url", ["filesystem"], indirect=True)
def test_a_publish_the_filesystem_broker_cannot_store_keeps_the_row_pending(
    relay, broker_url, make_queue, drain
):
    """The embedded broker's "broker down": its folder cannot take the message."""
    queue = make_queue(POST_DELETED)
    staging = Path(broker_url.removeprefix("filesystem://")) / "tmp"
    append(POST_DELETED)
    assert relay.run_once().published == 1
    staging.rmdir()
    staging.write_text("not a folder")  # every write now fails, as on a full disk
    event = append(POST_DELETED)

    stats = relay.run_once()

    assert (stats.claimed, stats.published, stats.refused) == (1, 0, 1)
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.PENDING
    assert "cannot store a message" in event.last_error
    staging.unlink()
    OutboxEvent.objects.filter(pk=event.pk).update(available_at=datetime.now(UTC))
    assert relay.run_once().published == 1
    assert [json.loads(m.body)["id"] for m in drain(queue, 2)][1] == str(event.event_id)


def proxied_relay(relay_config: RelayConfig, broker_proxy) -> OutboxRelay:
    """A relay connected to the broker through `broker_proxy`, which a test can cut."""
    url = relay_config.broker_url.replace("127.0.0.1:5672", f"127.0.0.1:{broker_proxy.port}")
    relay = OutboxRelay(RelayConfig(**{**vars(relay_config), "broker_url": url}))
    relay.publisher._ensure()
    return relay


def test_acked_rows_stay_sent_when_the_broker_goes_away_mid_batch(
    relay_config, make_queue, drain, broker_proxy
):
    queue = make_queue(POST_DELETED)
    events = [append(POST_DELETED) for _ in range(3)]
    relay = proxied_relay(relay_config, broker_proxy)
    publisher = relay.publisher
    publish = publisher._channel._basic_publish
    calls: list[int] = []

    def publish_then_cut(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            # The first event's ack is in; the broker is gone before the second publish.
            while publisher._unconfirmed:
                publisher._connection.drain_events(timeout=10)
            broker_proxy.cut()
        return publish(*args, **kwargs)

    publisher._channel._basic_publish = publish_then_cut
    try:
        with pytest.raises(BrokerUnavailable) as down:
            relay.run_once()
    finally:
        relay.close()
    assert down.value.answered == {str(events[0].event_id): None}
    # The batch's transaction committed the ack it had: no needless republish.
    rows = [OutboxEvent.objects.get(pk=e.pk) for e in events]
    assert [(r.status, r.attempts) for r in rows] == [("sent", 0), ("pending", 0), ("pending", 0)]
    [message] = drain(queue, 1)
    assert json.loads(message.body)["id"] == str(events[0].event_id)


def test_the_broker_going_away_while_confirms_are_awaited_marks_only_what_was_acked(
    relay_config, make_queue, wait_for, broker_proxy
):
    """The whole batch is written, then the connection breaks before any ack
    reaches the relay: no event is marked sent, and none pays an attempt.
    (Acks read before the break: test_acked_rows_stay_sent_when_the_broker_goes_away_mid_batch.)"""
    queue = make_queue(POST_DELETED)
    events = [append(POST_DELETED) for _ in range(20)]
    relay = proxied_relay(relay_config, broker_proxy)
    publisher = relay.publisher
    drain_events = publisher._connection.drain_events

    def cut_then_drain(**kwargs):
        broker_proxy.cut()
        return drain_events(**kwargs)

    # Without the hold, the broker's acks can all be in the relay's socket
    # before it starts reading them, and the cut would find nothing to break.
    broker_proxy.hold_answers()
    publisher._connection.drain_events = cut_then_drain
    try:
        with pytest.raises(BrokerUnavailable) as down:
            relay.run_once()
    finally:
        relay.close()
    assert down.value.answered == {}
    rows = [OutboxEvent.objects.get(pk=e.pk) for e in events]
    assert [(r.status, r.attempts) for r in rows] == [("pending", 0)] * len(events)
    # They are published again once the broker is back: what reached it
    # before the cut is on the queue twice, which the consumers' inbox absorbs.
    broker_proxy.restore()
    assert relay.run_once().published == len(events)
    expected = {str(e.event_id) for e in events}
    delivered: set[str] = set()

    def all_delivered() -> bool:
        while (message := queue.get(no_ack=True)) is not None:
            delivered.add(json.loads(message.body)["id"])
        return delivered >= expected

    wait_for(all_delivered, what="every event on the queue")
    assert delivered == expected


def test_one_batch_answers_each_event_on_its_own(exchange, broker_url, make_queue, drain):
    """Acked, unroutable and nacked events in one pipelined batch, and a batch
    larger than the broker acks one by one."""
    routed = make_queue(POST_DELETED)
    make_queue(COMMENT_CREATED, arguments={"x-max-length": 0, "x-overflow": "reject-publish"})

    def outgoing(routing_key: str) -> Outgoing:
        event_id = str(uuid.uuid4())
        return Outgoing(event_id, POST_DELETED, routing_key, json.dumps({"id": event_id}))

    batch = [
        outgoing(POST_DELETED),
        outgoing("blog.nobody.listens"),
        outgoing(COMMENT_CREATED),
        outgoing(POST_DELETED),
    ]
    publisher = EnvelopePublisher(broker_url, exchange.name)
    try:
        answers = publisher.publish_many(batch)
        assert list(answers) == [e.event_id for e in batch]
        assert answers[batch[0].event_id] is None
        assert answers[batch[1].event_id].startswith("unroutable")
        assert answers[batch[2].event_id].startswith("nacked")
        assert answers[batch[3].event_id] is None
        many = [outgoing(POST_DELETED) for _ in range(500)]
        answers = publisher.publish_many(many)
        assert sorted(answers) == sorted(e.event_id for e in many)
        assert set(answers.values()) == {None}
    finally:
        publisher.close()
    bodies = [json.loads(m.body)["id"] for m in drain(routed, 502)]
    assert bodies == [batch[0].event_id, batch[3].event_id, *(e.event_id for e in many)]


def test_importing_the_loop_needs_no_django_model():
    """A service without blogbus.outbox (its outbox in MongoDB) runs `blogbus.relay.Relay`."""
    code = (
        "import sys, blogbus.relay\n"
        "loaded = [m for m in sys.modules if m.startswith(('blogbus.outbox', 'blogbus.inbox'))]\n"
        "assert not loaded, loaded\n"
    )
    libs = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], cwd=libs, check=True, timeout=60)


class ListStore:
    """A store stand-in: events in a list, oldest first; a failed one goes to the
    back, due again at once (as with a retry delay shorter than a pass)."""

    errors = ()

    def __init__(self, count: int) -> None:
        self.events = [
            Pending(str(uuid.uuid4()), POST_DELETED, POST_DELETED, body="{}", attempts=0)
            for _ in range(count)
        ]

    @contextlib.contextmanager
    def claim_batch(self, limit: int) -> Iterator[list[Pending]]:
        yield self.events[:limit]

    def mark_sent(self, pending: Pending) -> None:
        self.events.remove(pending)

    def mark_failed(self, pending: Pending, error: str, retry_in: float) -> None:
        self.events.remove(pending)
        self.events.append(replace(pending, attempts=pending.attempts + 1))

    def listen(self) -> None: ...

    def wait_for_work(self, timeout: float) -> bool:
        return False

    def close(self) -> None: ...


@pytest.mark.parametrize("broker_url", ["filesystem"], indirect=True)
def test_a_pass_ends_when_a_batch_brings_back_only_events_it_tried(broker_url):
    store = ListStore(3)  # nothing is bound: each publish comes back unroutable
    relay = Relay(store, EnvelopePublisher(broker_url), batch_size=2, sweep_interval=0)
    try:
        stats = relay.run_once()  # would spin forever without the rule
    finally:
        relay.close()
    # [1 2] -> [3 1] (3 is new) -> [2 3]: all tried in this pass, so it ends.
    assert (stats.claimed, stats.published, stats.returned) == (6, 0, 6)
    assert all(pending.attempts >= 1 for pending in store.events)
