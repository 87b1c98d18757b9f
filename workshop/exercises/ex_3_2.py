"""Exercise 3.2: the idempotent consumer (the inbox)."""

from workshop.blank import Function
from workshop.catalogue import Exercise, Lesson, Suite

LIBS = ("--ds=libs.tests.settings",)

EXERCISE = Exercise(
    id="3.2",
    stage=3,
    title="Idempotent consumer: the inbox",
    goal=(
        "Write blogbus.inbox.services.consume_once(envelope, handler): apply the handler "
        "to an event unless this event (its source and id) was applied before, and say "
        "whether it ran. Every consumer of stage 3 (the monolith's counters, the comments "
        "service's replica) goes through it."
    ),
    why=(
        "RabbitMQ delivers at least once: a consumer that dies after its commit but before "
        "its ack gets the same event again, and the relay may publish an event twice. "
        "Without an inbox, a redelivered comment.created counts the comment twice. The "
        "inbox turns at-least-once delivery into exactly-once effect."
    ),
    patterns=("idempotent consumer (inbox)", "at-least-once delivery", "unique constraint"),
    minutes=30,
    blanks=(
        Function(
            "libs/blogbus/inbox/services.py",
            "consume_once",
            "record the event in the inbox and run the handler in one transaction",
            doc="Apply `handler(envelope)` unless this event was applied before; True if it ran.",
        ),
    ),
    check=(Suite(("libs/tests/test_inbox.py", *LIBS)),),
    lessons={
        "test_the_same_envelope_twice_applies_once": Lesson(
            "a redelivered event (same source, same id) must not run the handler again, "
            "and consume_once returns False for it",
            2,
        ),
        "test_dedup_is_per_source_and_id": Lesson(
            "two services may use the same event id: an event is known by (source, id), "
            "not by id alone",
            2,
        ),
        "test_a_handler_that_raises_leaves_no_inbox_row": Lesson(
            "a handler that raises must leave neither its writes nor the inbox row, so the "
            "redelivery is applied",
            1,
        ),
        "test_concurrent_deliveries_apply_once": Lesson(
            "two workers given the same event at once: the second must wait for the first "
            "and then skip it; insert the inbox row before running the handler",
            3,
        ),
    },
    hints=(
        "One transaction for both: `with transaction.atomic(using=using):` around the "
        "insert of an InboxEvent(source=..., event_id=..., type=...) and the call of "
        "handler(envelope). Then the handler's writes and the record of the event commit "
        "together, or neither does.",
        "The table has a unique constraint on (source, event_id): the second insert of "
        "the same event raises IntegrityError. Catch it and return False, but put the "
        "insert in its own nested `transaction.atomic(using=using)` (a savepoint): on "
        "PostgreSQL an error inside a transaction breaks the rest of it.",
        "Order matters for two concurrent deliveries: insert the row first, then run the "
        "handler. The second worker's insert waits on the first one's uncommitted row and "
        "sees the duplicate once the first commits; had you run the handler first, both "
        "would apply the effect.",
    ),
    after=(
        "STAGE=3 make up   # the monolith's consumer counts comments through the inbox",
        ".venv/bin/pytest tests/system/test_event_faults.py -q   "
        "# kills the broker while writing: no event lost, none counted twice",
    ),
    fast=(Suite(("libs/tests/test_envelope.py", "libs/tests/test_outbox.py", *LIBS)),),
)
