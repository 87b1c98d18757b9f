"""The fault drill (workshop exercise 4.2) as a system test: stage 4 in async
mode, as real processes behind real nginx, on a RabbitMQ node of the test's
own (the shared broker is never stopped). Each scenario of
``tests/system/fault_drill.py`` stops one part while the client writes,
asks its questions of the running system through the gateway, starts the part
again, and only then compares what the client saw with ``predictions()``:
every wrong prediction is named with what the client really got and where
the behaviour comes from.

In the main tree the predictions are the right ones, so this is also the
regression test of what stage 4 promises when a part fails: fail fast (a
JSON 503 at once, never a hang), the bulkhead of async mode (the post routes
serve with the comments service down, known posts take comments with the
posts service down), and store and forward (the writes go on while the
broker or a consumer is down; the counts catch up, no event lost, none
counted twice).

One stack serves every scenario (starting it is most of the time); each
scenario makes its own posts, starts again what it stopped, and asks no
question before the part it stops is down."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

import kombu
import pytest
import requests

from blogbus.bus.topology import queue_name
from blogtest.processes import restart
from blogtest.timing import scaled
from tests.support.broker import PrivateBroker, private_broker
from tests.support.harness import Stack, stage_stack
from tests.system import fault_drill
from tests.system.fault_drill import SCENARIOS, WRITES

# Deadlines (scaled by TEST_TIME_SCALE): for the events of a healthy stack,
# and for a part started again to catch up (the relays back off up to 30 s
# while the broker is down, so one can sleep 30 s after it is back, and
# Celery's reconnect intervals grow too; a consumer starts Celery first).
SETTLE_S = 30.0
CATCH_UP_S = 90.0
A_POST = {"title": "written while a part is down", "body": "b"}


@dataclass(frozen=True)
class Seen:
    """One answer of the real system: the value compared, and what the client
    got around it, for the failure message."""

    value: object
    detail: str = ""


@pytest.fixture(scope="module")
def predicted():
    """Asked before the stack starts: a drill predicts first."""
    return fault_drill.predictions()


class Drill:
    """The client of the drill, and the hands that stop and start the parts."""

    def __init__(self, stack: Stack, broker: PrivateBroker) -> None:
        self.stack = stack
        self.broker = broker
        self.api = f"{stack.url}/api/posts"

    # -- the client, through the gateway ------------------------------------------

    def call(self, method: str, path: str, **kwargs) -> tuple[requests.Response, str]:
        """The response, and how the client saw it (status, who, time, body)."""
        started = time.monotonic()
        response = requests.request(method, f"{self.stack.url}{path}", timeout=15, **kwargs)
        took = time.monotonic() - started
        body = response.text.strip().replace("\n", " ")
        body = body if len(body) <= 120 else body[:117] + "..."
        who = response.headers.get("X-Served-By", "nobody")
        return response, f"{response.status_code} from {who} in {took:.2f} s: {body}"

    def status(self, method: str, path: str, **kwargs) -> tuple[Seen, Seen]:
        """The status the client gets, and who answered."""
        response, detail = self.call(method, path, **kwargs)
        who = response.headers.get("X-Served-By", "nobody")
        return Seen(response.status_code, detail), Seen(who, detail)

    def new_post(self, title: str = "drill") -> str:
        response, detail = self.call("POST", "/api/posts/", json={"title": title, "body": "b"})
        assert response.status_code == 201, f"creating a post on the healthy stack: {detail}"
        return response.json()["id"]

    def comment(self, post_id: str, body: str) -> tuple[Seen, Seen]:
        return self.status("POST", f"/api/posts/{post_id}/comments/", json={"body": body})

    def comments(self, post_id: str, n: int) -> tuple[Seen, Seen]:
        """``n`` comments on the post: their statuses (one value when they
        agree) and who answered the first."""
        seen = [self.comment(post_id, f"comment {i}") for i in range(n)]
        statuses = [status.value for status, _ in seen]
        value = statuses[0] if len(set(statuses)) == 1 else tuple(statuses)
        return Seen(value, seen[0][0].detail), seen[0][1]

    def comment_count(self, post_id: str) -> Seen:
        response, detail = self.call("GET", f"/api/posts/{post_id}/")
        value = response.json().get("comment_count") if response.status_code == 200 else None
        return Seen(value, detail)

    def listed(self, post_id: str) -> Seen:
        response, detail = self.call("GET", f"/api/posts/{post_id}/comments/?page_size=100")
        return Seen(response.json()["count"] if response.status_code == 200 else None, detail)

    def post_with_one_comment(self) -> str:
        """P: a post with one comment, counted and its event acked (the events
        flow before any fault)."""
        consumer_log = self.stack.log_dir / "posts-consumer.log"
        seen_before = consumer_log.stat().st_size
        post_id = self.new_post("P")
        status, _ = self.comment(post_id, "the first")
        assert status.value == 201, f"a comment on the healthy stack: {status.detail}"
        self.wait(lambda: self.comment_count(post_id).value == 1, SETTLE_S, "P counted (1)")

        # Counted is committed; the ack comes next, and "bus.applied" is logged
        # after it. A consumer killed in between gets the event again (its
        # inbox drops it), one message more in its queue than the drill says.
        def acked() -> bool:
            with consumer_log.open("rb") as log:
                log.seek(seen_before)
                return any(b"bus.applied" in line and b"comment.created" in line for line in log)

        self.wait(acked, SETTLE_S, "P's comment.created acked by the posts consumer")
        return post_id

    def caught_up(self, post_id: str, deadline_s: float) -> Seen:
        """P's comment_count once it equals what the comments service lists
        (or at the deadline), read again a second later: a count that
        overshoots (an event counted twice) shows there."""
        truth = self.listed(post_id).value
        started = time.monotonic()
        self.wait(lambda: self.comment_count(post_id).value == truth, deadline_s, None)
        time.sleep(1)
        seen = self.comment_count(post_id)
        took = time.monotonic() - started
        return Seen(seen.value, f"{seen.detail} (the comments service lists {truth}; "
                                f"waited {took:.0f} s)")  # fmt: skip

    @staticmethod
    def wait(ready: Callable[[], bool], deadline_s: float, what: str | None) -> None:
        """Polls ``ready``; at the deadline fails naming ``what`` (a
        precondition of the drill), or returns (None: the caller reports
        what it sees)."""
        deadline = time.monotonic() + scaled(deadline_s)
        while not ready():
            if time.monotonic() > deadline:
                if what is None:
                    return
                pytest.fail(f"the healthy stack: {what} not within {scaled(deadline_s):g} s")
            time.sleep(0.25)

    # -- the broker, read as its admin -------------------------------------------

    def queued(self, service: str) -> int:
        """Messages ready in the service's queue."""
        with kombu.Connection(self.broker.url, connect_timeout=5) as connection:
            channel = connection.channel()
            try:
                return channel.queue_declare(queue=queue_name(service), passive=True)[1]
            finally:
                channel.close()

    # -- the hands -------------------------------------------------------------------

    def kill(self, name: str) -> None:
        """SIGKILL the process group: gunicorn's workers would go on serving
        after their master alone died."""
        process = self.stack.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def start(self, name: str, **env: str) -> None:
        """Starts ``name`` again, as the stage runs it, or with ``env`` changed."""
        spec = self.stack.specs[name]
        if env:
            spec = dataclasses.replace(spec, env={**spec.env, **env})
        assert self.stack.log_dir is not None
        restart(spec, self.stack.processes, self.stack.log_dir)


@pytest.fixture(scope="module")
def drill(predicted, tmp_path_factory):
    with ExitStack() as stack:
        broker = stack.enter_context(private_broker())
        stage4 = stack.enter_context(
            stage_stack(4, gateway="nginx", log_dir=tmp_path_factory.mktemp("fault-drill"),
                        mode="async", broker=broker.url)
        )  # fmt: skip
        yield Drill(stage4, broker)


def answers_for(scenario: str, predicted: object) -> dict[str, object]:
    """The predictions of ``scenario``, checked for form before the scenario
    runs: a missing or malformed answer is named as such."""
    problems = fault_drill.check_shape(predicted, only=scenario)
    assert not problems, f"{scenario}: predictions() is incomplete:\n" + "\n".join(problems)
    return predicted[scenario]


def compare(scenario: str, answers: dict[str, object], seen: dict[str, Seen]) -> None:
    """Fails naming every wrong prediction of ``scenario``, with what the
    client really saw and where to read why."""
    questions = SCENARIOS[scenario].questions
    assert set(seen) == set(questions), "the drill asks every question of the scenario"
    wrong = [key for key in questions if answers[key] != seen[key].value]
    lines = [
        f"- {key} ({questions[key].ask}): you predicted {answers[key]!r}; the client saw "
        f"{seen[key].value!r} [{seen[key].detail}]. Read {questions[key].look}."
        for key in wrong
    ]
    assert not wrong, (
        f"{scenario}: {len(wrong)} of {len(questions)} predictions wrong: {', '.join(wrong)}\n"
        f"{SCENARIOS[scenario].down}\n" + "\n".join(lines)
    )


def test_comments_service_down(predicted, drill):
    answers = answers_for("comments_down", predicted)
    post = drill.post_with_one_comment()
    other = drill.new_post("Q")
    seen: dict[str, Seen] = {}
    drill.kill("comments")
    try:
        seen["list_posts"], _ = drill.status("GET", "/api/posts/")
        seen["get_post"], _ = drill.status("GET", f"/api/posts/{post}/")
        seen["comment_count"] = drill.comment_count(post)
        seen["list_comments"], seen["list_comments_by"] = drill.status(
            "GET", f"/api/posts/{post}/comments/"
        )
        seen["write_comment"], _ = drill.comment(post, "comments is down")
        seen["write_post"], _ = drill.status("POST", "/api/posts/", json=A_POST)
        seen["delete_post"], _ = drill.status("DELETE", f"/api/posts/{other}/")
    finally:
        drill.start("comments")
    compare("comments_down", answers, seen)


def test_counts_by_call_comments_down(predicted, drill):
    answers = answers_for("comments_down_counts_by_call", predicted)
    post = drill.post_with_one_comment()
    seen: dict[str, Seen] = {}
    drill.kill("comments")
    try:
        # The same posts service, set back to its call: as microservices("async", "sync").
        drill.start("posts", COMMENT_COUNTS="sync")
        seen["list_posts"], seen["list_posts_by"] = drill.status("GET", "/api/posts/")
        seen["get_post"], _ = drill.status("GET", f"/api/posts/{post}/")
        seen["write_post"], _ = drill.status("POST", "/api/posts/", json=A_POST)
    finally:
        drill.start("posts")
        drill.start("comments")
    compare("comments_down_counts_by_call", answers, seen)


def test_posts_service_down(predicted, drill):
    answers = answers_for("posts_down", predicted)
    post = drill.post_with_one_comment()
    seen: dict[str, Seen] = {}
    drill.kill("posts")
    try:
        seen["write_comment"], seen["write_comment_by"] = drill.comments(post, WRITES)
        seen["list_comments"], _ = drill.status("GET", f"/api/posts/{post}/comments/")
        seen["write_comment_unknown_post"], seen["write_comment_unknown_post_by"] = drill.comment(
            str(uuid.uuid4()), "on a post nobody knows"
        )
        seen["list_posts"], seen["list_posts_by"] = drill.status("GET", "/api/posts/")
    finally:
        drill.start("posts")
    seen["comment_count_after"] = drill.caught_up(post, SETTLE_S)
    compare("posts_down", answers, seen)


def test_consumer_down(predicted, drill):
    answers = answers_for("consumer_down", predicted)
    post = drill.post_with_one_comment()
    seen: dict[str, Seen] = {}
    drill.kill("posts-consumer")
    try:
        seen["write_comment"], _ = drill.comments(post, WRITES)
        # Once the comments relay has published them (or at the deadline).
        drill.wait(lambda: drill.queued("posts") >= WRITES, SETTLE_S, None)
        queued = drill.queued("posts")
        seen["queued_during"] = Seen(queued, f"{queued} ready in {queue_name('posts')}")
        seen["comment_count_during"] = drill.comment_count(post)
        seen["listed_comments_during"] = drill.listed(post)
    finally:
        drill.start("posts-consumer")
    seen["comment_count_after"] = drill.caught_up(post, CATCH_UP_S)
    compare("consumer_down", answers, seen)


def test_broker_down(predicted, drill):
    answers = answers_for("broker_down", predicted)
    post = drill.post_with_one_comment()
    seen: dict[str, Seen] = {}
    drill.broker.stop()
    try:
        seen["write_comment"], _ = drill.comments(post, WRITES)
        seen["comment_count_during"] = drill.comment_count(post)
        seen["listed_comments_during"] = drill.listed(post)
        response, detail = drill.call("POST", "/api/posts/", json={"title": "R", "body": "b"})
        seen["write_post"] = Seen(response.status_code, detail)
        new_post = response.json().get("id") if response.status_code == 201 else None
        if new_post is None:
            seen["write_comment_new_post"] = Seen(None, "no post R to comment on")
        else:
            seen["write_comment_new_post"], _ = drill.comment(new_post, "R is news")
    finally:
        drill.broker.start()
    seen["comment_count_after"] = drill.caught_up(post, CATCH_UP_S)
    compare("broker_down", answers, seen)
