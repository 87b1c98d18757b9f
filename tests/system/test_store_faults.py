"""Acknowledged means durable: the MongoDB-wire server under the comments
service is SIGKILLed in the middle of a stream of comments written through
the gateway, and started again on the same storage. Every comment that was
answered 201 is there afterwards, exactly once, and the post's count agrees;
during the outage the clients got fast 503s, never a hang or a 500.

(The comments service writes with a journaled, majority write concern; with
the default w:1 and no journal, a crash can lose the last acknowledged
writes.) Runs on the newest stage of this tree."""

import os
import signal
import time

import requests

from blogtest.timing import poll, scaled
from stages import table
from tests.support.harness import stage_stack

WRITES = 240
KILLED_AT = {80, 160}  # the writes before which the store is killed
STARTED_AT = {n + 5 for n in KILLED_AT}  # ... and started again


def test_the_comments_store_killed_mid_stream_loses_no_acknowledged_comment(tmp_path):
    with stage_stack(table.NEWEST, gateway="nginx", log_dir=tmp_path) as stack:
        api = f"{stack.url}/api/posts"
        post = requests.post(f"{api}/", json={"title": "durable", "body": "b"}, timeout=10)
        assert post.status_code == 201, post.text
        comments_url = f"{api}/{post.json()['id']}/comments/"
        acknowledged: list[str] = []
        statuses: dict[int, int] = {}
        for n in range(WRITES):
            if n in KILLED_AT:
                os.killpg(stack.processes["mongodb"].pid, signal.SIGKILL)
                stack.processes["mongodb"].wait(timeout=10)
            if n in STARTED_AT:
                stack.restart("mongodb")
            started = time.monotonic()
            response = requests.post(comments_url, json={"body": f"comment {n}"}, timeout=30)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert time.monotonic() - started < scaled(5), "a dead store must be a fast answer"
            assert response.status_code in (201, 503), response.text
            if response.status_code == 201:
                acknowledged.append(response.json()["id"])
        assert statuses.get(503), "the outage was never seen: the kill did not happen"

        def listed() -> list[str] | None:
            response = requests.get(comments_url, params={"page_size": 100}, timeout=10)
            if response.status_code != 200:
                return None
            ids, body = [], response.json()
            ids += [c["id"] for c in body["results"]]
            while body["next"]:
                body = requests.get(body["next"], timeout=10).json()
                ids += [c["id"] for c in body["results"]]
            return ids

        ids = poll(listed, timeout_s=30)
        assert ids is not None, "the comments could not be listed after the restarts"
        assert sorted(ids) == sorted(set(ids)), "a comment is listed twice"
        missing = set(acknowledged) - set(ids)
        assert not missing, (
            f"{len(missing)} comment(s) answered 201 are gone: {sorted(missing)[:5]}"
        )

        def counted() -> int | None:
            count = requests.get(f"{api}/{post.json()['id']}/", timeout=10).json()["comment_count"]
            return count if count == len(ids) else None

        assert poll(counted, timeout_s=30) == len(ids), "comment_count disagrees with the list"
