"""`make bench-events`: the event path of stage 4 (async mode) end to end, on
the real profile: posts service on PostgreSQL, comments service on the
MongoDB-wire server, RabbitMQ (a vhost of its own), every relay and consumer
as its own process.

At a fixed rate, open loop (up to --writers requests in flight, so a slow
answer does not lower the rate), comments are created at the comments
service; each one's
comment.created travels comments outbox -> relay (publisher confirms) ->
blog.events -> posts consumer -> inbox + counter. A poller reads the post's
comment_count at the posts service, and the lag of a comment is the time from
its write to the first read that counts it: the k-th comment by created_at
(stamped by the comments service just before its insert) against the count
reaching k. Then a burst, as fast as the writers go, gives the throughput of
the whole path.

    .venv/bin/python bench/events.py [--rate 100] [--seconds 15] [--burst 1000] [--writers 8]

Prints figures and writes bench/results/events-<date>.json and .png. Asserts
nothing. The relay alone (no consumer): `make bench-relay`.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.harness import stage_stack  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Poller(threading.Thread):
    """Reads comment_count every ``interval_s`` (5 ms: a finer resolution than
    the lags measured, without a read loop that takes a core from the stack
    measured); remembers when each value was first seen."""

    def __init__(self, url: str, interval_s: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.interval_s = interval_s
        self.first_seen: dict[int, float] = {}
        self.stop = threading.Event()
        self.session = requests.Session()

    def run(self) -> None:
        while not self.stop.wait(self.interval_s):
            try:
                count = self.session.get(self.url, timeout=5).json()["comment_count"]
            except requests.RequestException:
                if self.stop.is_set():
                    return  # the stack is being stopped under the last read
                raise
            now = time.monotonic()
            for n in range(max(self.first_seen, default=0) + 1, count + 1):
                self.first_seen[n] = now

    def wait_for(self, count: int, deadline_s: float) -> bool:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if count in self.first_seen:
                return True
            time.sleep(0.01)
        return False


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# time.monotonic() minus the wall clock, to put a server's timestamp on the
# clock the poller reads (the same machine's clock, over a run of minutes).
_MONOTONIC_MINUS_WALL = time.monotonic() - time.time()


def written_at(created_at: str) -> float:
    """A comment's ``created_at`` (ISO 8601, ms) on time.monotonic()'s clock."""
    return datetime.fromisoformat(created_at).timestamp() + _MONOTONIC_MINUS_WALL


def write(session, url: str, n: int) -> float:
    """Creates comment ``n``; returns when it was written: its created_at,
    which the service stamps (truncated to the ms) before the insert that
    commits it. Not the 201's arrival: with several writes in flight, an
    event can be counted before its 201 reaches the client, while nothing
    can be counted before the comment exists, so a lag from created_at is
    never negative, and at most the insert's time (and 1 ms) too long."""
    response = session.post(url, json={"body": f"comment {n}"}, timeout=10)
    response.raise_for_status()
    return written_at(response.json()["created_at"])


def open_loop_writes(
    url: str, rate: float, total: int, *, first: int = 1, writers: int = 8, progress=None
) -> tuple[list[float], float]:
    """Creates comments ``first`` .. ``first + total - 1`` at ``url`` at
    ``rate``/s (``math.inf``: at once), open loop: comment i is sent at
    start + i / rate whatever the earlier ones take (up to ``writers`` in
    flight), so a slow answer does not lower the rate. Returns when each
    comment was written (``write``), in order, and the seconds the whole
    took. ``progress(done)`` is called every tenth."""
    local = threading.local()
    done = 0
    lock = threading.Lock()

    def one(i: int) -> float:
        nonlocal done
        if rate != math.inf:
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        committed = write(session, url, first + i)
        with lock:
            done += 1
            if progress and done % max(1, total // 10) == 0:
                progress(done)
        return committed

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=writers) as pool:
        committed = sorted(pool.map(one, range(total)))
    return committed, time.monotonic() - start


def lags_ms(committed: list[float], first_seen: dict[int, float], offset: int) -> list[float]:
    """The k-th comment written against the first read that counted
    ``offset + k`` (the counter goes up by one per event, in whatever order
    they arrive; when k are counted, at least k were written before)."""
    return [
        (first_seen[offset + k] - done) * 1000
        for k, done in enumerate(committed, start=1)
        if offset + k in first_seen
    ]


def run(args) -> dict:
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        say("Starting stage 4 (async): posts, comments, MongoDB-wire server, relays, consumers")
        stage = stack.enter_context(
            stage_stack(4, gateway="nginx", log_dir=Path(tmp), mode="async")
        )
        api = f"{stage.url}/api/posts"
        post = requests.post(f"{api}/", json={"title": "bench", "body": "events"}, timeout=10)
        post_id = post.json()["id"]
        comments_url = f"{api}/{post_id}/comments/"
        write(requests, comments_url, 0)  # the comments service learns of the post
        poller = Poller(f"{api}/{post_id}/")
        poller.start()
        if not poller.wait_for(1, 30):
            raise SystemExit("bench: the first event never arrived; see the stack's logs")

        total = int(args.rate * args.seconds)
        say(f"Steady rate: {total} comments at {args.rate:g}/s, open loop, {args.writers} writers")
        committed, took = open_loop_writes(
            comments_url,
            args.rate,
            total,
            writers=args.writers,
            progress=lambda done: say(f"  {done}/{total} written"),
        )
        poller.wait_for(total + 1, 60)
        lags = lags_ms(committed, poller.first_seen, offset=1)

        say(f"Burst: {args.burst} comments as fast as {args.writers} writers go")
        base = total + 1
        burst_start = time.monotonic()
        open_loop_writes(comments_url, math.inf, args.burst, first=base + 1, writers=args.writers)
        written = time.monotonic()
        poller.wait_for(base + args.burst, 120)
        applied = poller.first_seen.get(base + args.burst)
        poller.stop.set()

    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "steady": {
            "rate_per_s": args.rate,
            "achieved_per_s": round(total / took, 1),
            "writers": args.writers,
            "events": len(committed),
            "counted": len(lags),
            "lag_ms": {
                "p50": round(percentile(lags, 50), 1),
                "p90": round(percentile(lags, 90), 1),
                "p99": round(percentile(lags, 99), 1),
                "max": round(max(lags), 1),
                "mean": round(statistics.fmean(lags), 1),
            },
            "lags": [round(lag, 1) for lag in lags],
        },
        "burst": {
            "events": args.burst,
            "write_s": round(written - burst_start, 2),
            "applied_s": round(applied - burst_start, 2) if applied else None,
            "applied_per_s": round(args.burst / (applied - burst_start), 1) if applied else None,
        },
    }


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lags = result["steady"]["lags"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    left.plot(range(1, len(lags) + 1), lags, ".", markersize=3)
    left.set(title="Commit -> counted, per event", xlabel="event", ylabel="lag (ms)")
    right.hist(lags, bins=40)
    q = result["steady"]["lag_ms"]
    for name in ("p50", "p99"):
        right.axvline(q[name], linestyle="--", color="red" if name == "p99" else "green")
        right.text(q[name], right.get_ylim()[1] * 0.9, f" {name} {q[name]} ms")
    right.set(title=f"Lag at {result['steady']['rate_per_s']} events/s", xlabel="lag (ms)")
    fig.suptitle(
        "Stage 4 async: comment.created from the comments service's outbox to the posts "
        f"service's counter\nburst throughput {result['burst']['applied_per_s']} events/s"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="events per second (default 100)")
    parser.add_argument("--seconds", type=float, default=15.0, help="steady phase (default 15)")
    parser.add_argument(
        "--burst", type=int, default=1000, help="events in the burst (default 1000)"
    )
    parser.add_argument(
        "--writers",
        type=int,
        default=8,
        help="requests in flight at most, steady phase (default 8)",
    )
    args = parser.parse_args()
    if args.rate <= 0 or args.seconds <= 0 or args.burst < 1 or args.writers < 1:
        parser.error("--rate, --seconds > 0; --burst, --writers >= 1")
    result = run(args)
    lag, burst = result["steady"]["lag_ms"], result["burst"]
    print(
        f"\nsteady {args.rate:g}/s (achieved {result['steady']['achieved_per_s']}/s): "
        f"{result['steady']['counted']}/{result['steady']['events']} "
        f"counted; lag p50 {lag['p50']} ms, p90 {lag['p90']} ms, p99 {lag['p99']} ms, "
        f"max {lag['max']} ms"
    )
    print(
        f"burst: {burst['events']} written in {burst['write_s']} s, all counted after "
        f"{burst['applied_s']} s -> {burst['applied_per_s']} events/s end to end"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"events-{datetime.now(UTC):%Y-%m-%d}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    plot(result, stem.with_suffix(".png"))
    print(f"Wrote {stem}.json and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
