"""How long a deleted post still takes comments, in async mode: the window
from the post's DELETE answering 204 to the first 404 for a new comment on it.

In async mode the comments service answers "does this post exist?" from its
replica of posts, which learns of a deletion from ``post.deleted``: the
owner's outbox relay (woken by NOTIFY on PostgreSQL, a 1 s sweep on SQLite),
the broker, the comments worker. Until the tombstone is written, comments
are accepted (201), and removed by the same event's handler afterwards.

For each stage and profile asked, a stack is started (as the system tests
start one: every process real, nginx in front), then, per deletion: a new
post, one comment (the replica now holds it live), a random pause (so the
delete falls anywhere in a relay's sweep), the DELETE, then comments POSTed
back to back until the first 404. One deletion before the measured ones is
reported apart (cold: the first event through freshly started processes).

    python -m bench.deleted_window [--deletions 50] [--stage 3 ...] [--profile real ...]

Prints p50 / p90 / max of the window, how many deletions let a comment in,
and one POST's round trip (the resolution: a window shorter than that shows
as one round trip). Asserts nothing; ``--json PATH`` keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pymongo
import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file: bench/deleted_window.py
    sys.path.insert(0, str(ROOT))

from tests.support.harness import stage_stack  # noqa: E402

STAGES = (3,)
STAGES = (*STAGES, 4)  # [stage 4]
PROFILES = ("real", "embedded")
MONGO_DB = "comments"  # what tests/support/harness.py gives the comments service
# A deletion whose 404 has not come by then is reported as such (a worker down).
GIVE_UP_S = 30.0


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass(frozen=True)
class Deletion:
    """One post deleted, then commented on until the first 404."""

    window_ms: float | None  # DELETE 204 -> first 404 received; None: no 404 in GIVE_UP_S
    accepted: int  # 201s after the 204
    last_201_ms: float | None  # DELETE 204 -> last 201 received
    tombstone_ms: float | None  # DELETE 204 -> tombstone seen in the replica (< 0: before)
    round_trip_ms: float  # median POST round trip during this deletion


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class TombstoneWatch(threading.Thread):
    """Reads the replica every few ms until the post's tombstone is there:
    when the comments service knew of the deletion, finer than a POST's round
    trip (a window shorter than one request is invisible to a client)."""

    INTERVAL_S = 0.002

    def __init__(self, replica, post_id: str) -> None:
        super().__init__(daemon=True)
        self.replica, self.post_id = replica, post_id
        self.seen: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            if self.replica.find_one({"_id": self.post_id, "deleted": True}, {"_id": 1}):
                self.seen = time.monotonic()
                return
            time.sleep(self.INTERVAL_S)


def known_post(session: requests.Session, api: str) -> str:
    """A new post whose first comment is accepted: the replica holds it live."""
    created = session.post(f"{api}/", json={"title": "window", "body": "b"}, timeout=10)
    created.raise_for_status()
    post_id = created.json()["id"]
    first = session.post(f"{api}/{post_id}/comments/", json={"body": "before"}, timeout=10)
    first.raise_for_status()
    return post_id


def one_deletion(session: requests.Session, api: str, replica, *, pause_s: float) -> Deletion:
    post_id = known_post(session, api)
    time.sleep(random.uniform(0, pause_s))
    watch = TombstoneWatch(replica, post_id)
    watch.start()
    try:
        session.delete(f"{api}/{post_id}/", timeout=10).raise_for_status()
        deleted = time.monotonic()
        window, accepted, last_201, trips = comment_until_404(session, api, post_id, deleted)
        watch.join(timeout=GIVE_UP_S)
    finally:
        watch.stop.set()
    tombstone = None if watch.seen is None else (watch.seen - deleted) * 1000
    return Deletion(window, accepted, last_201, tombstone, statistics.median(trips))


def comment_until_404(
    session: requests.Session, api: str, post_id: str, deleted: float
) -> tuple[float | None, int, float | None, list[float]]:
    """Comments POSTed back to back: (ms to the first 404 or None, 201s,
    ms to the last 201 or None, each round trip in ms)."""
    url = f"{api}/{post_id}/comments/"
    accepted, last_201, trips = 0, None, []
    while time.monotonic() - deleted < GIVE_UP_S:
        sent = time.monotonic()
        response = session.post(url, json={"body": f"after {accepted}"}, timeout=10)
        received = time.monotonic()
        trips.append((received - sent) * 1000)
        if response.status_code == 404:
            return (received - deleted) * 1000, accepted, last_201, trips
        response.raise_for_status()
        accepted += 1
        last_201 = (received - deleted) * 1000
    return None, accepted, last_201, trips


def summary(deletions: list[Deletion]) -> dict:
    windows = [d.window_ms for d in deletions if d.window_ms is not None]
    let_in = [d for d in deletions if d.accepted]
    figures = {
        "deletions": len(deletions),
        "no_404_within_s": {"seconds": GIVE_UP_S, "count": len(deletions) - len(windows)},
        "with_comments_accepted": len(let_in),
        "accepted_max": max((d.accepted for d in deletions), default=0),
        "round_trip_ms_p50": round(statistics.median(d.round_trip_ms for d in deletions), 1),
    }
    if windows:
        figures["window_ms"] = quantiles(windows)
    if let_in:
        figures["last_201_ms"] = quantiles([d.last_201_ms for d in let_in])
    tombstones = [d.tombstone_ms for d in deletions if d.tombstone_ms is not None]
    if tombstones:
        figures["tombstone_ms"] = quantiles(tombstones)
    return figures


def quantiles(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 1),
        "p90": round(percentile(values, 90), 1),
        "max": round(max(values), 1),
    }


def measure(stage: int, profile: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        say(f"Stage {stage} async, {profile} profile: starting the stack")
        with stage_stack(
            stage, gateway=args.gateway, log_dir=Path(tmp), mode="async", profile=profile
        ) as stack:
            mongo = pymongo.MongoClient(stack.urls["mongodb"], serverSelectionTimeoutMS=5000)
            try:
                cold, deletions = deletions_on(stack.url, mongo[MONGO_DB]["posts_replica"], args)
            finally:
                mongo.close()
    return {"stage": stage, "profile": profile, "cold": asdict(cold), **summary(deletions)}


def deletions_on(url: str, replica, args: argparse.Namespace) -> tuple[Deletion, list[Deletion]]:
    """The cold deletion, then ``args.deletions`` measured ones, with progress."""
    api = f"{url}/api/posts"
    session = requests.Session()
    cold = one_deletion(session, api, replica, pause_s=0)
    say(f"  cold deletion: {describe(cold)}")
    deletions = []
    for n in range(1, args.deletions + 1):
        deletions.append(one_deletion(session, api, replica, pause_s=args.pause))
        if n % max(1, args.deletions // 10) == 0:
            say(f"  {n}/{args.deletions} deletions; last: {describe(deletions[-1])}")
    return cold, deletions


def describe(deletion: Deletion) -> str:
    accepted = f"{deletion.accepted} comment(s) accepted"
    if deletion.window_ms is None:
        return f"no 404 within {GIVE_UP_S:g} s, {accepted}"
    tombstone = "never seen" if deletion.tombstone_ms is None else f"{deletion.tombstone_ms:.0f} ms"
    return f"first 404 after {deletion.window_ms:.0f} ms, {accepted}, tombstone {tombstone}"


def report(result: dict) -> str:
    head = f"stage {result['stage']} async, {result['profile']} profile"
    n = result["deletions"]
    lines = [
        f"{head}: {n} deletions, one POST's round trip p50 {result['round_trip_ms_p50']} ms",
    ]
    if "window_ms" in result:
        w = result["window_ms"]
        lines.append(
            f"  DELETE 204 -> first 404: p50 {w['p50']} ms, p90 {w['p90']} ms, max {w['max']} ms"
        )
    lines.append(
        f"  comments accepted after the 204 in {result['with_comments_accepted']}/{n} "
        f"deletions (at most {result['accepted_max']} in one)"
    )
    if "tombstone_ms" in result:
        t = result["tombstone_ms"]
        lines.append(
            f"  DELETE 204 -> tombstone in the replica: p50 {t['p50']} ms, p90 {t['p90']} ms, "
            f"max {t['max']} ms (< 0: written before the 204)"
        )
    if "last_201_ms" in result:
        last = result["last_201_ms"]
        lines.append(
            f"  201s kept coming for: p50 {last['p50']} ms, p90 {last['p90']} ms, "
            f"max {last['max']} ms"
        )
    missing = result["no_404_within_s"]["count"]
    if missing:
        lines.append(f"  no 404 within {GIVE_UP_S:g} s: {missing} deletion(s)")
    lines.append(
        f"  cold (the first deletion, not counted): {describe(Deletion(**result['cold']))}"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deletions", type=int, default=50, help="per stack (default 50)")
    parser.add_argument(
        "--stage", type=int, action="append", choices=STAGES, help=f"default: {STAGES}"
    )
    parser.add_argument("--profile", action="append", choices=PROFILES, help=f"default: {PROFILES}")
    parser.add_argument("--gateway", choices=("nginx", "dev"), default="nginx")
    parser.add_argument(
        "--pause", type=float, default=1.0, help="random pause before each DELETE, up to (s)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    results = [
        measure(stage, profile, args)
        for stage in args.stage or STAGES
        for profile in args.profile or PROFILES
    ]
    print()
    for result in results:
        print(report(result))
    if args.json:
        document = {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpu": platform.processor(), "python": platform.python_version()},
            "results": results,
        }
        args.json.write_text(json.dumps(document, indent=1))
        print(f"Wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
