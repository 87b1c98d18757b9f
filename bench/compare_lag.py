"""Event lag in `make compare`, async mode only: from a comment's commit (its
201) to the posts service's comment_count counting it, at a modest fixed
rate, with bench/events.py's Poller (reads the count as fast as it can and
remembers when each value was first seen). The synchronous stacks have no
lag to measure: their count is read in the request."""

from __future__ import annotations

import time

import requests
from common import fail
from compare_figures import lag_summary
from compare_load import post_json
from events import Poller


def event_lag(url: str, rate: float, seconds: float, settle_s: float = 30.0) -> dict:
    """Writes ``rate * seconds`` comments at ``rate``/s to a fresh post through
    the gateway at ``url``; returns lag_summary plus the achieved rate."""
    session = requests.Session()
    api = f"{url}/api/posts"
    post_id = post_json(session, f"{api}/", {"title": "lag", "body": "event lag"})["id"]
    comments_url = f"{api}/{post_id}/comments/"
    post_json(session, comments_url, {"body": "comment 0"})  # the service knows the post
    poller = Poller(f"{api}/{post_id}/")
    poller.start()
    try:
        if not poller.wait_for(1, settle_s):
            fail("event lag: the first comment was never counted; see the stack's logs")
        total = max(1, int(rate * seconds))
        committed: list[float] = []
        start = time.monotonic()
        for n in range(total):
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
            response = session.post(comments_url, json={"body": f"comment {n + 1}"}, timeout=10)
            if response.status_code != 201:
                fail(f"event lag: comment {n + 1} got {response.status_code}: {response.text}")
            committed.append(time.monotonic())
        elapsed = time.monotonic() - start
        poller.wait_for(total + 1, settle_s)
    finally:
        poller.stop.set()
        poller.join(timeout=10)
    # Comment n + 1 is the (n + 2)-th of the post: comment 0 came first.
    lags = [
        (poller.first_seen[n + 2] - done) * 1000
        for n, done in enumerate(committed)
        if n + 2 in poller.first_seen
    ]
    return {
        "rate_per_s": rate,
        "achieved_per_s": round(total / elapsed, 1) if elapsed else None,
        **lag_summary(lags, total),
        "lags_ms": [round(lag, 1) for lag in lags],
    }
