"""Event lag in `make compare`, async mode only: from a comment's write (its
created_at) to the posts service's comment_count counting it, at a fixed
rate, open loop (bench/events.py's writers), with bench/events.py's Poller
(reads the count every 5 ms and remembers when each value was first seen). The
synchronous stacks have no lag to measure: their count is read in the
request. The CPU the stack used meanwhile, by component, says what the rate
asks of the machine (a saturated machine's lag is its queues')."""

from __future__ import annotations

import requests
from common import fail
from compare_figures import lag_summary
from compare_load import post_json
from compare_procs import cpu_deltas_s
from events import Poller, lags_ms, open_loop_writes


def event_lag(url: str, rate: float, seconds: float, meter=None, settle_s: float = 30.0) -> dict:
    """Writes ``rate * seconds`` comments at ``rate``/s to a fresh post through
    the gateway at ``url``; returns lag_summary, the achieved rate and, with
    ``meter`` (a StackMeter), the CPU ms per event by component."""
    session = requests.Session()
    api = f"{url}/api/posts"
    post_id = post_json(session, f"{api}/", {"title": "lag", "body": "event lag"})["id"]
    comments_url = f"{api}/{post_id}/comments/"
    post_json(session, comments_url, {"body": "comment 0"})  # the service knows the post
    poller = Poller(f"{api}/{post_id}/")
    poller.start()
    total = max(1, int(rate * seconds))
    try:
        if not poller.wait_for(1, settle_s):
            fail("event lag: the first comment was never counted; see the stack's logs")
        before = meter.sample() if meter else None
        try:
            committed, elapsed = open_loop_writes(comments_url, rate, total)
        except requests.HTTPError as exc:
            fail(f"event lag: a comment got {exc.response.status_code}: {exc.response.text}")
        counted = poller.wait_for(total + 1, settle_s)
        cpu = cpu_deltas_s(before, meter.sample()) if meter else {}
    finally:
        poller.stop.set()
        poller.join(timeout=10)
    lags = lags_ms(committed, poller.first_seen, offset=1)  # comment 0 came first
    return {
        "rate_per_s": rate,
        "achieved_per_s": round(total / elapsed, 1) if elapsed else None,
        **lag_summary(lags, total),
        "all_counted": counted,
        "cpu_ms_per_event": {
            name: round(used * 1000 / total, 2) for name, used in sorted(cpu.items())
        },
        "lags_ms": [round(lag, 1) for lag in lags],
    }
