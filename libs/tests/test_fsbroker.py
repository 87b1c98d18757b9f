"""blogbus.fsbroker: the embedded profile's filesystem:// broker, on its own.

The guarantees the relays and consumers rely on (test_bus, test_relay and
test_publisher run on this broker too) come from the behaviour tested here:
routing shared between processes, durable atomic publishes, claims that
survive a SIGKILLed consumer, dead-lettering, mandatory returns.
Cross-process cases run real Python processes on the same folder.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import kombu
import pytest
from kombu.exceptions import ChannelError

from blogbus import broker
from blogbus.fsbroker import root_of

LIBS = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(60)
# How every child process runs: blogbus importable from libs/.
CHILD = {"cwd": LIBS, "env": {**os.environ, "PYTHONPATH": str(LIBS)}}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The broker's folder."""
    return (tmp_path / "bus").resolve()


@pytest.fixture
def url(root: Path) -> str:
    return broker.filesystem_url(root)


@pytest.fixture
def conn(url: str) -> Iterator[kombu.Connection]:
    connection = broker.connection(url)
    connection.connect()
    yield connection
    connection.release()


def topic(channel, name: str = "blog.events") -> kombu.Exchange:
    exchange = kombu.Exchange(name, "topic", durable=True)(channel)
    exchange.declare()
    return exchange


def run_python(code: str, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        **CHILD,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def files(folder: Path, pattern: str = "*.msg") -> list[Path]:
    return sorted(folder.rglob(pattern)) if folder.exists() else []


# --- URLs ---------------------------------------------------------------------------------


def test_urls_name_one_absolute_folder(tmp_path):
    assert broker.kombu_url("filesystem:///srv/bus") == "blogbus-filesystem:///srv/bus"
    assert broker.kombu_url("amqp://guest:guest@127.0.0.1:5672//").startswith("amqp://")
    assert broker.filesystem_url(tmp_path) == f"filesystem://{tmp_path.resolve()}"
    assert broker.is_filesystem("filesystem:///srv/bus")
    assert not broker.is_filesystem("amqp://127.0.0.1//")
    for relative in ("filesystem://", "filesystem://.data/bus", "filesystem:///"):
        with pytest.raises(ValueError, match="absolute folder"):
            broker.kombu_url(relative)
    assert root_of("srv/bus") == Path("/srv/bus")


# --- routing and the topology ----------------------------------------------------------------


def test_topic_routing_is_shared_with_a_process_that_never_declared_the_exchange(conn, url):
    channel = conn.channel()
    exchange = topic(channel)
    posts = kombu.Queue("posts.q", exchange=exchange, routing_key="comment.*")(channel)
    posts.declare()
    comments = kombu.Queue("comments.q", exchange=exchange, routing_key="post.created")(channel)
    comments.declare()

    # Another process publishes by the exchange's name only: without the persisted type
    # kombu would treat it as a direct exchange and route "comment.created" nowhere.
    published = run_python(
        """
        import sys, kombu
        from blogbus import broker
        with broker.connection(sys.argv[1]) as conn:
            producer = kombu.Producer(conn.channel())
            for key in ("comment.created", "comment.deleted", "post.created", "user.created"):
                producer.publish(key, exchange="blog.events", routing_key=key)
        """,
        url,
    )
    assert published.returncode == 0, published.stderr

    got = [posts.get(no_ack=True).body for _ in range(2)]
    assert sorted(got) == [b"comment.created", b"comment.deleted"]
    assert posts.get(no_ack=True) is None
    assert comments.get(no_ack=True).body == b"post.created"
    assert comments.get(no_ack=True) is None


def test_an_exchange_is_not_redeclared_with_another_type(conn):
    channel = conn.channel()
    topic(channel, "typed")
    with pytest.raises(ChannelError, match="PRECONDITION_FAILED"):
        kombu.Exchange("typed", "direct")(channel).declare()


def test_a_queue_is_not_redeclared_with_other_arguments_and_passive_declares_check(conn):
    channel = conn.channel()
    kombu.Queue("args.q", queue_arguments={"x-dead-letter-exchange": "dlx"})(channel).declare()
    with pytest.raises(ChannelError, match="PRECONDITION_FAILED"):
        kombu.Queue("args.q")(channel).declare()
    # A passive declare neither creates nor changes a queue.
    name, messages, consumers = channel.queue_declare(queue="args.q", passive=True)
    assert (name, messages, consumers) == ("args.q", 0, 0)
    with pytest.raises(ChannelError, match="NOT_FOUND"):
        channel.queue_declare(queue="missing.q", passive=True)
    assert not channel._has_queue("missing.q")


def test_mandatory_unroutable_messages_are_returned_and_never_stored(conn, root):
    channel = conn.channel()
    exchange = topic(channel)
    returned: list[tuple] = []
    producer = kombu.Producer(
        channel, exchange=exchange, on_return=lambda *args: returned.append(args)
    )
    producer.publish("lost?", routing_key="post.created", mandatory=True, message_id="m-1")
    producer.publish("dropped", routing_key="post.created")  # not mandatory: dropped

    assert len(returned) == 1
    error, exchange_name, routing_key, message = returned[0]
    assert "NO_ROUTE" in str(error)
    assert (exchange_name, routing_key) == ("blog.events", "post.created")
    assert message.properties["message_id"] == "m-1"
    assert files(root) == []
    # The default exchange returns a message for a queue that does not exist.
    producer.publish("x", exchange="", routing_key="no.such.queue", mandatory=True)
    assert len(returned) == 2


# --- durability: what a publish leaves on disk ---------------------------------------------------


def test_a_publish_leaves_one_complete_file_and_nothing_in_staging(conn, root):
    channel = conn.channel()
    queue = kombu.Queue("durable.q")(channel)
    queue.declare()
    producer = kombu.Producer(channel)
    for n in range(20):
        producer.publish({"n": n}, exchange="", routing_key="durable.q", serializer="json")

    stored = files(root / "queues" / "durable.q")
    assert len(stored) == 20
    assert all(json.loads(path.read_bytes())["properties"] for path in stored)
    assert list((root / "tmp").iterdir()) == []
    # FIFO: file names sort in publish order.
    assert [queue.get(no_ack=True).payload["n"] for _ in range(20)] == list(range(20))


def test_an_unreadable_message_is_set_aside_not_lost_silently(conn, root):
    channel = conn.channel()
    queue = kombu.Queue("corrupt.q")(channel)
    queue.declare()
    (root / "queues" / "corrupt.q" / "00000000000000000001-1-000000000-x.msg").write_bytes(b"{")
    kombu.Producer(channel).publish("fine", exchange="", routing_key="corrupt.q")

    assert queue.get(no_ack=True).body == b"fine"
    assert [path.name for path in files(root / "corrupt")] == [
        "00000000000000000001-1-000000000-x.msg"
    ]


# --- consuming: claims, acks, requeues, crashes ---------------------------------------------------


def test_ack_deletes_requeue_and_close_put_back_in_place(conn, root):
    channel = conn.channel()
    queue = kombu.Queue("claims.q")(channel)
    queue.declare()
    producer = kombu.Producer(channel)
    for body in ("a", "b", "c"):
        producer.publish(body, exchange="", routing_key="claims.q")

    first = queue.get(no_ack=False)
    assert first.body == b"a"
    assert len(files(root / "claimed")) == 1
    assert channel.queue_declare("claims.q", passive=True)[1] == 2
    first.requeue()
    assert queue.get(no_ack=False).body == b"a"  # back at the head of the queue

    other = conn.channel()
    taken = kombu.Queue("claims.q")(other).get(no_ack=False)
    assert taken.body == b"b"
    other.close()  # unacked: returned to the queue by the close
    again = queue.get(no_ack=False)
    assert again.body == b"b"
    again.ack()
    [left] = files(root / "queues")
    assert base64.b64decode(json.loads(left.read_bytes())["body"]) == b"c"
    assert len(files(root / "claimed")) == 1  # "a", still unacked on `channel`


def test_a_sigkilled_consumers_messages_go_back_to_the_queue_once_and_live_ones_stay(
    conn, url, root
):
    channel = conn.channel()
    queue = kombu.Queue("crash.q")(channel)
    queue.declare()
    producer = kombu.Producer(channel)
    for body in ("one", "two"):
        producer.publish(body, exchange="", routing_key="crash.q")
    mine = queue.get(no_ack=False)  # held by this (live) process
    assert mine.body == b"one"

    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            """
            import sys, time, kombu
            from blogbus import broker
            conn = broker.connection(sys.argv[1]); conn.connect()
            message = kombu.Queue("crash.q")(conn.channel()).get(no_ack=False)
            print(message.body.decode(), flush=True)
            time.sleep(60)
            """
        ), url],
        **CHILD, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "two"
        assert queue.get(no_ack=False) is None
        assert channel.recover_orphans() == 0  # its consumer is alive
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)

    assert channel.recover_orphans() == 1  # the kernel dropped the dead consumer's lock
    assert channel.recover_orphans() == 0  # and only once
    redelivered = queue.get(no_ack=False)
    assert redelivered.body == b"two"
    redelivered.ack()
    mine.ack()
    assert files(root / "queues") == []
    assert files(root / "claimed") == []


def test_two_consumer_processes_share_a_queue_without_a_message_twice(conn, url, tmp_path):
    channel = conn.channel()
    kombu.Queue("shared.q")(channel).declare()
    producer = kombu.Producer(channel)
    total = 300
    for n in range(total):
        producer.publish(str(n), exchange="", routing_key="shared.q")

    consumer = """
        import sys, kombu
        from blogbus import broker
        conn = broker.connection(sys.argv[1]); conn.connect()
        queue = kombu.Queue("shared.q")(conn.channel())
        seen = []
        while (message := queue.get(no_ack=False)) is not None:
            seen.append(message.body.decode()); message.ack()
        print(" ".join(seen))
        """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(consumer), url],
            **CHILD,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=60)[0].split() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    everything = outputs[0] + outputs[1]
    assert len(everything) == total  # no message twice ...
    assert sorted(map(int, everything)) == list(range(total))  # ... and none lost


def test_consumers_are_counted_across_processes(conn, url):
    channel = conn.channel()
    kombu.Queue("counted.q")(channel).declare()
    assert channel.queue_declare("counted.q", passive=True)[2] == 0
    consumer = kombu.Consumer(channel, queues=[kombu.Queue("counted.q")], callbacks=[])
    consumer.consume()
    other = broker.connection(url)
    try:
        assert other.channel().queue_declare("counted.q", passive=True)[2] == 1
        consumer.cancel()
        assert other.channel().queue_declare("counted.q", passive=True)[2] == 0
    finally:
        other.release()


# --- dead-lettering ------------------------------------------------------------------------------


def test_a_rejected_message_is_dead_lettered_with_x_death_as_rabbitmq_does(conn):
    channel = conn.channel()
    exchange = topic(channel)
    dlx = kombu.Exchange("dlx", "direct", durable=True)(channel)
    dlx.declare()
    dead = kombu.Queue("work.q.dlq", exchange=dlx, routing_key="work.q.dlq")(channel)
    dead.declare()
    work = kombu.Queue(
        "work.q",
        exchange=exchange,
        routing_key="post.*",
        queue_arguments={
            "x-dead-letter-exchange": "dlx",
            "x-dead-letter-routing-key": "work.q.dlq",
        },
    )(channel)
    work.declare()
    plain = kombu.Queue("plain.q")(channel)  # no dead-letter exchange: a reject drops it
    plain.declare()
    producer = kombu.Producer(channel)
    producer.publish("poison", exchange=exchange, routing_key="post.created", headers={"a": 1})
    producer.publish("gone", exchange="", routing_key="plain.q")

    work.get(no_ack=False).reject(requeue=False)
    plain.get(no_ack=False).reject(requeue=False)

    letter = dead.get(no_ack=False)
    assert letter.body == b"poison"
    assert letter.headers["a"] == 1
    [death] = letter.headers["x-death"]
    assert (death["reason"], death["queue"], death["count"]) == ("rejected", "work.q", 1)
    assert (death["exchange"], death["routing-keys"]) == ("blog.events", ["post.created"])
    assert letter.headers["x-first-death-queue"] == "work.q"
    assert letter.delivery_info["routing_key"] == "work.q.dlq"
    assert work.get(no_ack=True) is None
    assert plain.get(no_ack=True) is None
    assert dead.get(no_ack=True) is None  # one copy only

    # Sent back and rejected again: the same x-death entry counts 2.
    producer.publish(letter.body, exchange="", routing_key="work.q", headers=dict(letter.headers))
    letter.ack()
    work.get(no_ack=False).reject(requeue=False)
    assert dead.get(no_ack=True).headers["x-death"][0]["count"] == 2
