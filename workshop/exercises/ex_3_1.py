"""Exercise 3.1: the transactional outbox and its relay."""

from workshop.blank import Function
from workshop.catalogue import Exercise, Lesson, Suite

LIBS = ("--ds=libs.tests.settings",)

EXERCISE = Exercise(
    id="3.1",
    stage=3,
    title="Transactional outbox: write the event with the change, publish with confirms",
    goal=(
        "Write the two ends of the outbox: blogbus.outbox.services.outbox_append (record "
        "an event in the caller's transaction, so it commits with the state change or not "
        "at all) and Relay._relay_batch in blogbus/relay.py (publish one claimed batch "
        "with publisher confirms, and mark an event sent only once the broker has acked "
        "it)."
    ),
    why=(
        "A service that commits to its database and then publishes to the broker loses "
        "the event when it dies in between, or when the broker is down; one that publishes "
        "first announces changes that may roll back. Writing the event into the same "
        "transaction makes 'changed' and 'will be announced' one fact; the relay turns it "
        "into at-least-once delivery, and only a broker's ack lets it forget an event."
    ),
    patterns=("transactional outbox", "publisher confirms", "at-least-once delivery"),
    minutes=45,
    blanks=(
        Function(
            "libs/blogbus/outbox/services.py",
            "outbox_append",
            "record the event in the caller's transaction",
            doc="Record an event in the caller's transaction; it is published after the commit.",
        ),
        Function(
            "libs/blogbus/relay.py",
            "Relay._relay_batch",
            "publish the claimed batch with confirms; mark sent only after the ack",
        ),
    ),
    check=(Suite(("libs/tests/test_outbox.py", "libs/tests/test_relay.py", *LIBS)),),
    lessons={
        "test_event_commits_with_the_state_change": Lesson(
            "outbox_append stores an OutboxEvent row (from a validated Envelope) in the "
            "caller's transaction",
            1,
        ),
        "test_rollback_removes_the_event": Lesson(
            "the event row must roll back with the change: no autocommit, no second "
            "connection, no separate transaction",
            1,
        ),
        "test_append_outside_a_transaction_is_refused": Lesson(
            "outbox_append outside transaction.atomic() must raise RuntimeError: an event "
            "written on its own could be published for a change that never commits",
            2,
        ),
        "test_invalid_event_is_refused": Lesson(
            "validate before storing: build the Envelope (Envelope.new) first", 1
        ),
        "notify": Lesson(
            "on PostgreSQL, outbox_append also sends pg_notify(notify_channel(), ''), which "
            "the server delivers at commit and which wakes the relay before its sweep",
            2,
        ),
        "test_relay_publishes_the_envelope_and_marks_the_row_sent": Lesson(
            "the claimed batch is published (publisher.publish_many(batch)) and an event "
            "is marked sent (store.mark_sent) only when its answer is None (acked)",
            3,
        ),
        "unroutable": Lesson(
            "an event the broker returned (no queue bound) stays pending with a back-off: "
            "self._postpone(pending, error), counted in stats.returned",
            4,
        ),
        "nacked": Lesson(
            "a nacked event stays pending (self._postpone), counted in stats.nacked", 4
        ),
        "refused": Lesson(
            "an event the broker refused stays pending (self._postpone), counted in "
            "stats.refused, and the relay carries on",
            4,
        ),
        "channel_closed": Lesson(
            "every event the broker answered with anything but an ack stays pending "
            "with a back-off (self._postpone), and is counted",
            4,
        ),
        "broker": Lesson(
            "the broker going away (BrokerUnavailable) ends the batch: close the publisher, "
            "mark sent the events its .answered says were acked, leave the unanswered ones "
            "as they were, and raise it after the block",
            4,
        ),
        "test_batches_are_published_in_creation_order": Lesson(
            "publish the batch in the order claimed", 3
        ),
        "a_pass_ends": Lesson(
            "return whether the batch held an event this pass had not tried yet (add each "
            "event id to `tried`)",
            3,
        ),
    },
    hints=(
        "outbox_append: check transaction.get_connection(using).in_atomic_block first. "
        "Build the envelope with Envelope.new(type=..., source=..., data=..., "
        "request_id=..., time=now) (it validates), then "
        "OutboxEvent.objects.using(using).create(...) with its fields (look at the model: "
        "event_id, source, type, time, request_id, data, routing_key, available_at, "
        "created_at). Timestamps in whole milliseconds, like the rest of the contract.",
        "The relay sleeps between sweeps; a NOTIFY wakes it at once. On PostgreSQL "
        "(connection.vendor == 'postgresql') run SELECT pg_notify(%s, '') with "
        "notify_channel(): PostgreSQL delivers it at commit, never for a rollback.",
        "_relay_batch: `with self.store.claim_batch(self.batch_size) as batch:` (rows "
        "locked, FOR UPDATE SKIP LOCKED). stats.claimed = len(batch); fresh = any event id "
        "not in `tried`; then add every id to tried. answers = "
        "self.publisher.publish_many(batch) writes the whole batch, awaits its confirms "
        "together and returns {event id: None when acked, else why not}. For each pending "
        "in the batch, None means acked: self.store.mark_sent(pending); stats.published "
        "+= 1. Return fresh.",
        "Otherwise the answer says why: 'unroutable...' (stats.returned), 'nacked...' "
        "(stats.nacked), anything else (stats.refused); all go to self._postpone(pending, "
        "answer). BrokerUnavailable: self.publisher.close(), remember it, and take its "
        ".answered as the answers (what the broker answered before it went; an event not "
        "in them is left as it is). After the with block (so the marks commit) log "
        "relay.batch with asdict(stats) if anything was claimed, and raise what you "
        "remembered.",
    ),
    after=(
        "STAGE=3 make up   # relays beside each writer, consumers on RabbitMQ",
        ".venv/bin/pytest tests/system/test_event_faults.py -q   # the broker dies "
        "during writes: nothing lost",
        "make bench-relay   # events/s with confirms",
    ),
    fast=(Suite(("libs/tests/test_envelope.py", "libs/tests/test_publisher.py", *LIBS)),),
)
