"""Stage 4, async mode, on the embedded profile, as real processes: posts on
SQLite, comments on the MongoDB-wire server, events through blogbus's
`filesystem://` broker (one folder shared by every process), the dev router.

1. Events flow across processes: post.created feeds the comments service's
   replica, comment.created the posts service's counter, post.deleted removes
   the post's comments.
2. The posts consumer is SIGKILLed while comment events flow: after its
   restart every event is applied exactly once (counter and inbox rows).
3. The relays (comments on MongoDB, posts on SQLite) are killed during a
   stream of writes and started again later: every event is delivered, none
   lost, none applied twice.

Nothing is asserted after a fixed sleep: each check polls with a deadline,
and "nothing more will arrive" is established by the pipeline being empty
(no pending outbox entry, no message ready or unacked in the broker folder).
"""

import os
import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import pymongo
import pytest
import requests

from blogtest.timing import poll, scaled
from tests.support.harness import stage_stack
from tests.system.test_stage4_faults import kill

DEADLINE_S = 60
MONGO_DB = "comments"  # what tests/support/harness.py gives the comments service


@pytest.fixture
def embedded(tmp_path):
    with stage_stack(4, gateway="dev", log_dir=tmp_path, mode="async", profile="embedded") as s:
        assert (s.broker or "").startswith("filesystem:///")
        assert s.databases["posts"].startswith("sqlite:///")
        yield s


@pytest.fixture
def mongo(embedded):
    client = pymongo.MongoClient(embedded.urls["mongodb"], serverSelectionTimeoutMS=5000)
    try:
        yield client[MONGO_DB]
    finally:
        client.close()


# -- what the stack's stores and broker folder hold ---------------------------


def bus_folder(stack) -> Path:
    return Path(urlsplit(stack.broker).path)


def ready_messages(stack, queue: str) -> int:
    return len(list((bus_folder(stack) / "queues" / queue).glob("*.msg")))


def unacked_messages(stack, queue: str = "*") -> int:
    """Messages taken by a consumer and not acked yet (in ``queue``, or in any)."""
    return len(list((bus_folder(stack) / "claimed").glob(f"*/{queue}/*.msg")))


def waiting_messages(stack, queue: str) -> int:
    """Messages of ``queue`` ready or taken and not acked, each counted once:
    a dead consumer's are moved back to the queue (keeping their names)
    meanwhile, so the taken ones are listed first and the names counted."""
    folder = bus_folder(stack)
    taken = {path.name for path in (folder / "claimed").glob(f"*/{queue}/*.msg")}
    ready = {path.name for path in (folder / "queues" / queue).glob("*.msg")}
    return len(taken | ready)


def posts_sql(stack, query: str, *params) -> list[tuple]:
    """A read of the posts service's SQLite file (sqlite:////abs/path)."""
    path = "/" + urlsplit(stack.databases["posts"]).path.lstrip("/")
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        return db.execute(query, params).fetchall()


def inbox_count(stack, event_type: str) -> int:
    rows = posts_sql(stack, "SELECT COUNT(*) FROM blogbus_inbox_event WHERE type = ?", event_type)
    return rows[0][0]


def posts_outbox_pending(stack) -> int:
    rows = posts_sql(stack, "SELECT COUNT(*) FROM blogbus_outbox_event WHERE status = 'pending'")
    return rows[0][0]


def quiet(stack, mongo) -> bool:
    """No event left anywhere between a write and its effect: both outboxes
    empty, nothing ready or unacked in the services' queues or DLQs."""
    queues = ("posts.blog-events", "comments.blog-events")
    return (
        posts_outbox_pending(stack) == 0
        and mongo.comments.count_documents({"outbox": {"$exists": True}}) == 0
        and all(ready_messages(stack, q) == 0 for q in queues)
        and unacked_messages(stack) == 0
    )


def dead_letters(stack) -> int:
    return sum(
        ready_messages(stack, f"{service}.blog-events.dlq") for service in ("posts", "comments")
    )


# -- HTTP -----------------------------------------------------------------------


def create_post(stack, title="t") -> str:
    response = requests.post(
        f"{stack.url}/api/posts/", json={"title": title, "body": "b"}, timeout=10
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def create_comment(base_url: str, post_id: str, body: str) -> requests.Response:
    return requests.post(
        f"{base_url}/api/posts/{post_id}/comments/", json={"body": body}, timeout=10
    )


def comment_count(stack, post_id: str) -> int:
    response = requests.get(f"{stack.url}/api/posts/{post_id}/", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["comment_count"]


def wait_count(stack, post_id: str, expected: int) -> int:
    """The count once it is ``expected``, or the last one seen at the deadline."""
    poll(lambda: comment_count(stack, post_id) == expected, timeout_s=DEADLINE_S)
    return comment_count(stack, post_id)


def write_comments(stack, post_id: str, numbers: range) -> None:
    for n in numbers:
        response = create_comment(stack.url, post_id, f"comment {n}")
        assert response.status_code == 201, response.text


def settle(stack, mongo) -> None:
    assert poll(lambda: quiet(stack, mongo), timeout_s=DEADLINE_S), "events still in flight"


# -- 1. events across processes ---------------------------------------------------


def test_events_flow_across_processes(embedded, mongo):
    kept, doomed = create_post(embedded, "kept"), create_post(embedded, "doomed")
    # post.created reaches the replica with no request to the comments service
    # (a request could have filled it by reading through to posts).
    assert poll(
        lambda: mongo.posts_replica.count_documents({"_id": {"$in": [kept, doomed]}}) == 2,
        timeout_s=DEADLINE_S,
    ), "post.created did not reach the comments service's replica"

    comments_url = embedded.urls["comments"]
    for n in range(3):
        response = create_comment(comments_url, doomed, f"on doomed {n}")
        assert response.status_code == 201, response.text
        assert response.headers["X-Served-By"] == "comments"
    assert create_comment(comments_url, kept, "on kept").status_code == 201

    # comment.created -> the posts service's counter.
    assert wait_count(embedded, doomed, 3) == 3
    assert wait_count(embedded, kept, 1) == 1

    # post.deleted -> a tombstone in the replica and the post's comments gone.
    # The comments service's web process is down, so the posts service's
    # courtesy call (delete its comments after the commit) fails: only the
    # event, applied by the consumer, can remove them.
    kill(embedded, "comments")
    deleted = requests.delete(f"{embedded.url}/api/posts/{doomed}/", timeout=10)
    assert deleted.status_code == 204
    assert poll(
        lambda: (mongo.posts_replica.find_one({"_id": doomed}) or {}).get("deleted") is True,
        timeout_s=DEADLINE_S,
    ), "post.deleted did not tombstone the post in the replica"
    assert poll(
        lambda: mongo.comments.count_documents({"post_id": doomed}) == 0, timeout_s=DEADLINE_S
    ), "post.deleted did not remove the post's comments"
    embedded.restart("comments")
    gone = requests.get(f"{embedded.url}/api/posts/{doomed}/comments/", timeout=10)
    assert gone.status_code == 404
    assert mongo.comments.count_documents({"post_id": kept}) == 1

    # The replica alone answers now: with the posts service dead, the kept post
    # still takes comments and the deleted one still refuses them.
    kill(embedded, "posts")
    alive = create_comment(embedded.url, kept, "posts is down")
    assert alive.status_code == 201, alive.text
    assert create_comment(embedded.url, doomed, "too late").status_code == 404
    assert dead_letters(embedded) == 0


# -- 2. consumer SIGKILLed while events flow ------------------------------------

FIRST, SECOND = 40, 20
QUEUE = "posts.blog-events"


def signal_group(stack, name: str, signum: int) -> None:
    os.killpg(stack.processes[name].pid, signum)


def freeze_holding_a_message(stack, name: str, queue: str) -> int:
    """Lets the frozen consumer ``name`` of ``queue`` run in short slices until
    it is frozen again while it holds a message it has not acked; returns how
    many it holds."""
    deadline = time.monotonic() + scaled(DEADLINE_S)
    while time.monotonic() < deadline:
        held = unacked_messages(stack, queue)
        if held:
            return held
        signal_group(stack, name, signal.SIGCONT)
        time.sleep(0.005)
        signal_group(stack, name, signal.SIGSTOP)
    return unacked_messages(stack, queue)


def test_consumer_killed_while_events_flow_applies_each_event_once(embedded, mongo):
    post_id = create_post(embedded)
    # A backlog for the consumer: frozen while the comments are written and relayed.
    signal_group(embedded, "posts-consumer", signal.SIGSTOP)
    write_comments(embedded, post_id, range(FIRST))
    assert poll(
        lambda: waiting_messages(embedded, QUEUE) == FIRST,
        timeout_s=DEADLINE_S,
    )
    # Killed in the middle of the backlog, with a message taken and not acked
    # (its effect maybe committed already): the redelivery must not count it twice.
    held = freeze_holding_a_message(embedded, "posts-consumer", QUEUE)
    assert held >= 1, "the consumer was never caught holding an unacked message"
    kill(embedded, "posts-consumer")
    applied_before_kill = comment_count(embedded, post_id)
    assert applied_before_kill < FIRST

    # Events go on being published while no consumer runs: they wait in its queue.
    write_comments(embedded, post_id, range(FIRST, FIRST + SECOND))
    assert poll(
        lambda: mongo.comments.count_documents({"outbox": {"$exists": True}}) == 0,
        timeout_s=DEADLINE_S,
    )
    waiting = waiting_messages(embedded, QUEUE)
    # The held message is waiting again, whether its effect was committed or not.
    unapplied = FIRST + SECOND - applied_before_kill
    assert unapplied <= waiting <= unapplied + 1, (waiting, applied_before_kill)

    embedded.restart("posts-consumer")
    total = FIRST + SECOND
    assert wait_count(embedded, post_id, total) == total
    settle(embedded, mongo)
    # Settled: the counter and the inbox say each event was applied once.
    assert comment_count(embedded, post_id) == total
    assert inbox_count(embedded, "comment.created") == total
    assert dead_letters(embedded) == 0
    listed = requests.get(
        f"{embedded.url}/api/posts/{post_id}/comments/?page_size=100", timeout=10
    ).json()
    assert listed["count"] == total


# -- 3. relays stopped during a stream of writes ----------------------------------

COMMENTS, STOP_AFTER, POSTS_WHILE_DOWN = 40, 10, 8


def test_relays_stopped_during_writes_lose_no_event(embedded, mongo):
    post_id = create_post(embedded)
    for n in range(COMMENTS):
        if n == STOP_AFTER:
            kill(embedded, "comments-relay")
        response = create_comment(embedded.url, post_id, f"comment {n}")
        # Writes do not need the relay: each event waits in its comment's document.
        assert response.status_code == 201, response.text
    pending = mongo.comments.count_documents({"outbox": {"$exists": True}})
    assert pending >= COMMENTS - STOP_AFTER
    # Only comments written before the kill can have been published. Some of
    # them may be counted and still pending: the relay died after publishing
    # them and before marking them sent, and will publish them again.
    assert comment_count(embedded, post_id) <= STOP_AFTER

    # The posts relay too: post.created waits in the SQLite outbox meanwhile.
    kill(embedded, "posts-relay")
    created = [create_post(embedded, f"while down {n}") for n in range(POSTS_WHILE_DOWN)]
    assert posts_outbox_pending(embedded) >= POSTS_WHILE_DOWN
    assert mongo.posts_replica.count_documents({"_id": {"$in": created}}) == 0

    embedded.restart("comments-relay")
    embedded.restart("posts-relay")
    assert wait_count(embedded, post_id, COMMENTS) == COMMENTS
    assert poll(
        lambda: mongo.posts_replica.count_documents({"_id": {"$in": created}}) == len(created),
        timeout_s=DEADLINE_S,
    ), "post.created events written while the posts relay was down did not arrive"
    settle(embedded, mongo)
    assert comment_count(embedded, post_id) == COMMENTS
    assert inbox_count(embedded, "comment.created") == COMMENTS
    assert dead_letters(embedded) == 0
    listed = requests.get(
        f"{embedded.url}/api/posts/{post_id}/comments/?page_size=100", timeout=10
    ).json()
    assert listed["count"] == COMMENTS
