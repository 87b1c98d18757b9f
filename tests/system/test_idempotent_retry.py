"""Stage 4 (sync mode) as real processes behind each gateway: what a client
sees when the comments service hangs (SIGSTOP) or is gone (SIGKILL).

A hung service: the gateway gives up after its timeout (a JSON 504), but the
request is still in the service's listen queue and runs once the service
goes on (SIGCONT). The client cannot tell whether it happened; its retry with
the same Idempotency-Key gets the first answer again instead of a second
comment. Times are deadlines (the gateway's limit plus a scaled margin), not
benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from blogtest.timing import scaled, wait_until
from gateway import routes
from tests.support.harness import Stack, stage_stack

# What a gateway's answer may take beyond its own limit (a busy machine, process start).
MARGIN_S = 3.0


@pytest.fixture(params=["nginx", "dev"])
def stage4(request: pytest.FixtureRequest, tmp_path) -> Iterator[Stack]:
    with stage_stack(4, gateway=request.param, log_dir=tmp_path, mode="sync") as stack:
        yield stack


def group_signal(process: subprocess.Popen, signum: int) -> None:
    """Signal the whole process group: gunicorn's master and its workers."""
    os.killpg(process.pid, signum)


@contextmanager
def paused(stack: Stack, name: str) -> Iterator[None]:
    """``name`` stopped (SIGSTOP) for the block: it accepts no connection
    (the kernel still queues them) and answers nothing. Always continued
    after, or the stack could not stop it."""
    process = stack.processes[name]
    group_signal(process, signal.SIGSTOP)
    try:
        yield
    finally:
        group_signal(process, signal.SIGCONT)


def kill(stack: Stack, name: str) -> None:
    """SIGKILL the whole process group: gunicorn's workers would go on
    serving after their master alone died."""
    process = stack.processes[name]
    group_signal(process, signal.SIGKILL)
    process.wait(timeout=10)


def timed(method: str, url: str, *, deadline_s: float, **kwargs) -> tuple[requests.Response, float]:
    """The response and how long it took; the client waits beyond
    ``deadline_s``, so that a late answer fails the deadline's assertion."""
    started = time.monotonic()
    response = requests.request(method, url, timeout=deadline_s + scaled(10), **kwargs)
    return response, time.monotonic() - started


def assert_gateway_error(response: requests.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["X-Served-By"] == "gateway"
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["detail"]


def create_post(stack: Stack) -> str:
    response = requests.post(
        f"{stack.url}/api/posts/", json={"title": "t", "body": "b"}, timeout=scaled(5)
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def comments_of(stack: Stack, post_id: str) -> list[dict]:
    response = requests.get(f"{stack.url}/api/posts/{post_id}/comments/", timeout=scaled(5))
    assert response.status_code == 200, response.text
    return response.json()["results"]


def comments_once_answered(stack: Stack, post_id: str) -> list[dict]:
    """The comments, or none while the service, just continued, is not answering yet."""
    response = requests.get(f"{stack.url}/api/posts/{post_id}/comments/", timeout=scaled(5))
    return response.json()["results"] if response.status_code == 200 else []


def test_a_timed_out_comment_is_stored_once_and_its_retry_replayed(stage4: Stack) -> None:
    post_id = create_post(stage4)
    url = f"{stage4.url}/api/posts/{post_id}/comments/"
    key = str(uuid.uuid4())
    body = {"body": "sent while the comments service hung"}
    deadline = routes.WRITE_TIMEOUT_S + scaled(MARGIN_S)

    with paused(stage4, "comments"):
        timed_out, seconds = timed(
            "POST", url, deadline_s=deadline, json=body, headers={"Idempotency-Key": key}
        )
    assert_gateway_error(timed_out, 504)
    assert seconds < deadline
    # A write is given its own, longer limit than a read's.
    assert seconds > routes.READ_TIMEOUT_S

    # The request waited in the listen queue: it runs now, the gateway's 504 notwithstanding.
    stored = wait_until(
        lambda: comments_once_answered(stage4, post_id),
        timeout_s=10,
        what="the comment of the timed-out request",
    )
    assert [c["body"] for c in stored] == [body["body"]]

    # The client's retry with the same key: the first answer again, nothing new.
    retried = requests.post(url, json=body, headers={"Idempotency-Key": key}, timeout=scaled(5))
    assert retried.status_code == 201, retried.text
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.headers["X-Served-By"] == "comments"
    assert retried.json()["id"] == stored[0]["id"]
    assert retried.json()["body"] == body["body"]

    assert [c["id"] for c in comments_of(stage4, post_id)] == [stored[0]["id"]]
    post = requests.get(f"{stage4.url}/api/posts/{post_id}/", timeout=scaled(5))
    assert post.status_code == 200, post.text
    assert post.json()["comment_count"] == 1


def test_reads_of_a_hung_or_dead_service_get_gateway_errors_in_time(stage4: Stack) -> None:
    post_id = create_post(stage4)
    url = f"{stage4.url}/api/posts/{post_id}/comments/"

    # Hung: the connection is queued by the kernel, no answer comes: a 504.
    deadline = routes.READ_TIMEOUT_S + scaled(MARGIN_S)
    with paused(stage4, "comments"):
        hung, seconds = timed("GET", url, deadline_s=deadline)
    assert_gateway_error(hung, 504)
    assert seconds < deadline

    # Dead: the connection is refused: a 503.
    kill(stage4, "comments")
    deadline = routes.CONNECT_TIMEOUT_S + scaled(MARGIN_S)
    dead, seconds = timed("GET", url, deadline_s=deadline)
    assert_gateway_error(dead, 503)
    assert seconds < deadline
