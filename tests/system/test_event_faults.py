"""The newest stage of this tree in async mode (the monolith's counters at
stage 3, the posts service's at stage 4), on a RabbitMQ node of the test's
own: the broker is stopped in the middle of a stream of writes and started
again later. Every comment written meanwhile is counted by the owner of
posts exactly once: no event lost, none applied twice. (The shared broker is
never stopped.)"""

import time
from contextlib import ExitStack

import requests

from blogtest.timing import poll
from stages import table
from tests.support.broker import private_broker
from tests.support.harness import stage_stack

COMMENTS = 30
STOP_AFTER = 10


def test_broker_down_during_writes_loses_no_event(tmp_path):
    with ExitStack() as stack:
        broker = stack.enter_context(private_broker())
        (tmp_path / "stack").mkdir()
        stage4 = stack.enter_context(
            stage_stack(table.NEWEST, gateway="nginx", log_dir=tmp_path / "stack", mode="async",
                        broker=broker.url)
        )  # fmt: skip
        api = f"{stage4.url}/api/posts"
        post = requests.post(f"{api}/", json={"title": "t", "body": "b"}, timeout=10).json()
        comments_url = f"{api}/{post['id']}/comments/"
        # The comments service learns of the post from post.created (or reads through).
        for n in range(COMMENTS):
            if n == STOP_AFTER:
                broker.stop()
            response = requests.post(comments_url, json={"body": f"comment {n}"}, timeout=10)
            # Writes do not need the broker: each event waits in its outbox.
            assert response.status_code == 201, response.text
        assert requests.get(f"{api}/{post['id']}/", timeout=10).json()["comment_count"] <= COMMENTS
        broker.start()

        def counted():
            count = requests.get(f"{api}/{post['id']}/", timeout=10).json()["comment_count"]
            return count if count == COMMENTS else None

        assert poll(counted, timeout_s=90) == COMMENTS
        # Settled: nothing arrives twice later.
        time.sleep(2)
        assert requests.get(f"{api}/{post['id']}/", timeout=10).json()["comment_count"] == COMMENTS
        listed = requests.get(comments_url + "?page_size=100", timeout=10).json()
        assert listed["count"] == COMMENTS
