"""A comment on a deleted post, as real processes behind nginx: how long a new
comment is still accepted after the post's DELETE answered 204 (the window),
and that nothing the window let in stays.

In async mode the comments service answers from its replica of posts, which
learns of a deletion from ``post.deleted`` (the owner's outbox, its relay, the
broker, the comments worker). At stage 3 that event is its only news: comments
are accepted until it is applied (the window is the event lag), then removed
by its handler. A 404 once seen is final: the tombstone never goes away.

The window is held open on purpose (the comments worker stopped with SIGSTOP)
where a test must see what it lets in; otherwise it is left as it comes and
only recorded. Times are generous deadlines, never assertions.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pymongo
import pytest
import requests

from blogtest.timing import wait_until
from tests.support.harness import Stack, stage_stack

MONGO_DB = "comments"  # what tests/support/harness.py gives the comments service
DEADLINE_S = 20.0
# POSTs after the first 404, each of which must be a 404 too.
AFTER_404 = 20


@contextmanager
def stack_of(tmp_path_factory, stage: int, mode: str) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp(f"stage{stage}-{mode}")
    with stage_stack(stage, gateway="nginx", log_dir=log_dir, mode=mode) as stack:
        yield stack


@pytest.fixture(scope="module")
def stage3_async(tmp_path_factory) -> Iterator[Stack]:
    with stack_of(tmp_path_factory, 3, "async") as stack:
        yield stack


@contextmanager
def paused(stack: Stack, name: str) -> Iterator[None]:
    """``name`` stopped (SIGSTOP, its whole process group) for the block, and
    always continued after: its messages wait in its queue meanwhile."""
    group = stack.processes[name].pid
    os.killpg(group, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(group, signal.SIGCONT)


@contextmanager
def comments_db(stack: Stack) -> Iterator[pymongo.database.Database]:
    client = pymongo.MongoClient(stack.urls["mongodb"], serverSelectionTimeoutMS=5000)
    try:
        yield client[MONGO_DB]
    finally:
        client.close()


def known_post(stack: Stack) -> str:
    """A new post the comments service knows (its replica holds it live, in
    async mode): its first comment is accepted."""
    created = requests.post(f"{stack.url}/api/posts/", json={"title": "t", "body": "b"}, timeout=10)
    assert created.status_code == 201, created.text
    post_id = created.json()["id"]
    assert comment(stack, post_id, "before the delete") == 201
    return post_id


def comment(stack: Stack, post_id: str, body: str) -> int:
    url = f"{stack.url}/api/posts/{post_id}/comments/"
    response = requests.post(url, json={"body": body}, timeout=10)
    assert response.status_code in (201, 404), response.text
    return response.status_code


def delete_post(stack: Stack, post_id: str) -> None:
    response = requests.delete(f"{stack.url}/api/posts/{post_id}/", timeout=10)
    assert response.status_code == 204, response.text


def comments_listed(stack: Stack, post_id: str) -> int:
    """The status of the post's comment list."""
    url = f"{stack.url}/api/posts/{post_id}/comments/"
    return requests.get(url, timeout=10).status_code


def comment_until_refused(stack: Stack, post_id: str) -> int:
    """POSTs comments until the first 404 (with a deadline); how many were
    accepted before it."""
    accepted = 0

    def refused() -> bool:
        nonlocal accepted
        if comment(stack, post_id, f"in the window {accepted}") == 404:
            return True
        accepted += 1
        return False

    wait_until(refused, timeout_s=DEADLINE_S, what="a 404 for a comment on the deleted post")
    return accepted


def assert_refused_from_now_on(stack: Stack, post_id: str, db) -> None:
    """After a 404, every later comment is a 404 and is never stored."""
    for n in range(AFTER_404):
        body = f"after the 404 {n}"
        assert comment(stack, post_id, body) == 404, f"accepted after a 404: {body!r}"
        assert db.comments.count_documents({"body": body}) == 0


def assert_nothing_stays(stack: Stack, post_id: str, db) -> None:
    """The deleted post's comments all go (eventually), and its list is a 404."""
    wait_until(
        lambda: db.comments.count_documents({"post_id": post_id}) == 0,
        timeout_s=DEADLINE_S,
        what="the deleted post's comments removed",
    )
    assert comments_listed(stack, post_id) == 404


def test_stage3_async_the_window_is_the_event_lag_and_closes_for_good(
    stage3_async, record_property
):
    post_id = known_post(stage3_async)
    delete_post(stage3_async, post_id)
    deleted = time.monotonic()
    accepted = comment_until_refused(stage3_async, post_id)
    # The figure, for the curious (`python -m bench.deleted_window` measures it).
    record_property("window_ms", round((time.monotonic() - deleted) * 1000))
    record_property("accepted_in_window", accepted)
    with comments_db(stage3_async) as db:
        assert_refused_from_now_on(stage3_async, post_id, db)
        assert_nothing_stays(stage3_async, post_id, db)


def test_stage3_async_what_the_window_let_in_is_removed(stage3_async):
    """The worker stopped: post.deleted waits in its queue, the replica still
    holds the post live, and comments are accepted (and listed). Once the
    worker goes on, the tombstone refuses new ones and every comment goes."""
    post_id = known_post(stage3_async)
    with comments_db(stage3_async) as db:
        with paused(stage3_async, "comments-consumer"):
            delete_post(stage3_async, post_id)
            assert comment(stage3_async, post_id, "in the window") == 201
            assert comments_listed(stage3_async, post_id) == 200
            assert db.comments.count_documents({"post_id": post_id}) == 2
        comment_until_refused(stage3_async, post_id)
        assert_refused_from_now_on(stage3_async, post_id, db)
        assert_nothing_stays(stage3_async, post_id, db)


# >>> stage 4: the posts service tells the comments service before its 204
@pytest.fixture(scope="module")
def stage4_async(tmp_path_factory) -> Iterator[Stack]:
    with stack_of(tmp_path_factory, 4, "async") as stack:
        yield stack


@pytest.fixture(scope="module")
def stage4_sync(tmp_path_factory) -> Iterator[Stack]:
    with stack_of(tmp_path_factory, 4, "sync") as stack:
        yield stack


@pytest.mark.parametrize("worker", ["running", "stopped"])
def test_stage4_async_has_no_window(stage4_async, worker):
    """The posts service calls DELETE /internal/posts/{id}/comments/ once its
    delete is committed and before its 204; the comments service records the
    tombstone there. The first comment after the 204 is a 404 already, with
    the worker (which would apply post.deleted) running or stopped."""
    post_id = known_post(stage4_async)
    with comments_db(stage4_async) as db:
        if worker == "stopped":
            with paused(stage4_async, "comments-consumer"):
                delete_post(stage4_async, post_id)
                assert comment(stage4_async, post_id, "right after the 204") == 404
                assert_refused_from_now_on(stage4_async, post_id, db)
        else:
            delete_post(stage4_async, post_id)
            assert comment(stage4_async, post_id, "right after the 204") == 404
            assert_refused_from_now_on(stage4_async, post_id, db)
        assert db.comments.count_documents({"post_id": post_id}) == 0
        assert comments_listed(stage4_async, post_id) == 404


def test_stage4_sync_a_comment_after_the_delete_is_a_404_at_once(stage4_sync):
    """Sync mode asks the posts service every time: no window."""
    post_id = known_post(stage4_sync)
    delete_post(stage4_sync, post_id)
    assert comment(stage4_sync, post_id, "right after the 204") == 404
    with comments_db(stage4_sync) as db:
        assert_refused_from_now_on(stage4_sync, post_id, db)
        assert db.comments.count_documents({"post_id": post_id}) == 0
    assert comments_listed(stage4_sync, post_id) == 404
    # <<< stage 4
