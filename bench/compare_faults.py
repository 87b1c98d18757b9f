"""The fault drills of `make compare`, side by side: every stack under the
same steady load (compare_load.SteadyLoad) over the same seconds, while one
component of stage 4 is killed or paused and brought back; the monolith
gets the equivalent fault where it has one, and is the control where it has
none (it has no comments service, no broker, no consumer).

Each drill: ``before_s`` of load, the fault, ``down_s``, the restart (or
SIGCONT, or the broker started again), then load until every stack has had
a whole second of 2xx (at most ``recovery_s``). Afterwards every id a 201
returned is looked for, and the drill post's comment_count is awaited until
it equals its comments (the counters converge, in async mode through the
events). The arithmetic is compare_figures'.

The broker drill stops a RabbitMQ node of the run's own
(tests/support/broker.py's private node), never the shared one: without
one (it needs root and rabbitmq-server here), that drill is skipped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

import requests
from common import BenchError, fail, say
from compare_figures import by_phase, counter_behind, per_second, recovery, writes_check
from compare_load import Call, SteadyLoad, post_json

from blogtest.processes import StartFailed


@dataclass(frozen=True)
class Drill:
    title: str
    kind: str  # kill, pause or broker
    target: str | None  # stage 4's process (None: the broker)
    monolith: str | None  # stage 0's equivalent, or why it has none (monolith_note)
    monolith_note: str = ""
    async_only: bool = False


MONOLITH_HAS_NO_COMMENTS = "no equivalent: the monolith serves comments in its own process"
WHOLE_MONOLITH = "the equivalent: its only process, so the whole blog, is {}"
DRILLS = {
    "comments-kill": Drill(
        title="comments service killed",
        kind="kill",
        target="comments",
        monolith=None,
        monolith_note=MONOLITH_HAS_NO_COMMENTS,
    ),
    "comments-pause": Drill(
        title="comments service paused",
        kind="pause",
        target="comments",
        monolith=None,
        monolith_note=MONOLITH_HAS_NO_COMMENTS,
    ),
    "posts-kill": Drill(
        title="posts service killed",
        kind="kill",
        target="posts",
        monolith="monolith",
        monolith_note=WHOLE_MONOLITH.format("killed"),
    ),
    "posts-pause": Drill(
        title="posts service paused",
        kind="pause",
        target="posts",
        monolith="monolith",
        monolith_note=WHOLE_MONOLITH.format("paused")
        + " (no gateway in front of it: clients wait for their own timeout)",
    ),
    "broker-stop": Drill(
        title="broker stopped",
        kind="broker",
        target=None,
        monolith=None,
        monolith_note="no equivalent: the monolith counts comments in the request's transaction",
        async_only=True,
    ),
    "consumer-pause": Drill(
        title="posts consumer paused",
        kind="pause",
        target="posts-consumer",
        monolith=None,
        monolith_note="no equivalent: no consumer, the counter is updated in the request",
        async_only=True,
    ),
}
DEFAULT_DRILLS = ("comments-kill", "comments-pause", "posts-kill", "broker-stop", "consumer-pause")


class Action:
    """One fault on one stack: ``down()``, then ``up()``; ``restore()`` undoes
    a pause whatever happened (a stopped process cannot be stopped politely)."""

    def __init__(self, kind: str, stack, process: str | None, broker) -> None:
        self.kind, self.stack, self.process, self.broker = kind, stack, process, broker
        self.paused = False
        self.not_ready: str | None = None

    def describe(self) -> str:
        return {
            "kill": f"SIGKILL to {self.process}'s process group, then started again",
            "pause": f"SIGSTOP to {self.process}'s process group, then SIGCONT",
            "broker": "its own RabbitMQ node stopped (rabbitmqctl stop), then started",
        }[self.kind]

    def _signal(self, signum: int) -> None:
        os.killpg(self.stack.processes[self.process].pid, signum)

    def down(self) -> None:
        if self.kind == "kill":
            self._signal(signal.SIGKILL)
            self.stack.processes[self.process].wait(timeout=10)
        elif self.kind == "pause":
            self.paused = True
            self._signal(signal.SIGSTOP)
        else:
            self.broker.stop()

    def up(self) -> None:
        if self.kind == "kill":
            # A process that runs but does not answer its readiness probe in
            # time (its workers busy with the load) is a result, not an error:
            # it keeps running (the harness stops it at the end), and the
            # clients' seconds show whether it ever recovers.
            try:
                self.stack.restart(self.process)
            except StartFailed as exc:
                first = str(exc).splitlines()[0].rstrip(":")
                self.not_ready = f"{first} (its readiness probe, under the load)"
        elif self.kind == "pause":
            self.restore()
        else:
            self.broker.start()

    def restore(self) -> None:
        if self.paused:
            self._signal(signal.SIGCONT)
            self.paused = False


def action_for(drill: Drill, stage: int, mode: str | None, stack, broker) -> Action | str:
    """The fault ``drill`` does to this stack, or why it does none."""
    if stage == 0:
        if drill.monolith is None:
            return drill.monolith_note
        return Action(drill.kind, stack, drill.monolith, None)
    if drill.async_only and mode != "async":
        return "no equivalent: sync mode has no events (no broker, no consumer)"
    if drill.kind == "broker" and broker is None:
        return "skipped: no RabbitMQ node of the run's own (the shared one is never stopped)"
    return Action(drill.kind, stack, drill.target, broker)


def drill_calls(post_id: str, name: str) -> list[Call]:
    """The mix each stack gets: the drill post read three ways, the list, two writes."""
    api = "/api/posts/"
    return [
        Call("post detail", "GET", f"{api}{post_id}/"),
        Call("post list", "GET", api),
        Call("post comments", "GET", f"{api}{post_id}/comments/"),
        Call("create comment", "POST", f"{api}{post_id}/comments/", {"body": f"drill {name}"}),
        Call("create post", "POST", api, {"title": f"drill {name}", "body": "written in a drill"}),
    ]


def _get_json(url: str, deadline_s: float = 30, **params) -> dict:
    """GET until 200: after a drill a stack may need a while to drain its queues."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            response = requests.get(url, params=params, timeout=10)
            if response.status_code == 200:
                return response.json()
            problem = f"{response.status_code}: {response.text[:200]}"
        except requests.RequestException as exc:
            problem = str(exc)
        if time.monotonic() > deadline:
            fail(f"GET {url} after the drill: still {problem}")
        time.sleep(0.5)


def _exists(url: str, deadline_s: float = 30) -> bool:
    """True on 200, False on 404; anything else is asked again until the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            status = requests.get(url, timeout=10).status_code
        except requests.RequestException:
            status = None
        if status in (200, 404):
            return status == 200
        if time.monotonic() > deadline:
            fail(f"GET {url} after the drill: still {status or 'no reply'}")
        time.sleep(0.5)


def comment_ids(url: str, post_id: str) -> list[str]:
    ids, page = [], 1
    while True:
        body = _get_json(f"{url}/api/posts/{post_id}/comments/", page=page, page_size=100)
        ids += [c["id"] for c in body["results"]]
        if not body.get("next"):
            return ids
        page += 1


def check_writes(url: str, post_id: str, records: list[dict], first_comment: str, wait_s: float):
    """Every 201 looked for; the post's comment_count awaited until it
    equals its comments (``wait_s`` at most): the counters converge."""
    posts = [r["id"] for r in records if r["endpoint"] == "create post" and r.get("id")]
    found_posts = [p for p in posts if _exists(f"{url}/api/posts/{p}/")]
    comments = [first_comment] + [
        r["id"] for r in records if r["endpoint"] == "create comment" and r.get("id")
    ]
    listed = comment_ids(url, post_id)
    started, count = time.monotonic(), None
    while True:
        count = _get_json(f"{url}/api/posts/{post_id}/")["comment_count"]
        converged = count == len(listed)
        if converged or time.monotonic() - started > wait_s:
            break
        time.sleep(0.1)
    return {
        "posts": writes_check(posts, found_posts),
        "comments": writes_check(comments, listed),
        "comment_count": count,
        "comments_listed": len(listed),
        "counter_converged_after_s": round(time.monotonic() - started, 2) if converged else None,
    }


def unverified_writes(records: list[dict], why: str) -> dict:
    """The writes of a stack that did not answer after its drill: acknowledged
    ones counted, none looked for (neither found nor lost), and why."""

    def acknowledged(endpoint: str) -> dict:
        ids = {r["id"] for r in records if r["endpoint"] == endpoint and r.get("id")}
        return {"acknowledged": len(ids), "found": None, "missing": [], "unacknowledged": 0}

    return {
        "posts": acknowledged("create post"),
        "comments": acknowledged("create comment"),
        "comment_count": None,
        "comments_listed": None,
        "counter_converged_after_s": None,
        "unverified": why,
    }


@dataclass
class DrillSettings:
    rate: float = 20.0
    before_s: float = 5.0
    down_s: float = 5.0
    recovery_s: float = 20.0
    timeout_s: float = 5.0
    workers: int = 32


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def run_drill(key: str, stacks: dict, kinds: dict, broker, settings: DrillSettings):
    """One drill on every stack at once. ``stacks``: name -> Stack;
    ``kinds``: name -> (stage, mode). Returns (figures by stack, raw records),
    or None when no stack has the component (nothing to drill)."""
    drill = DRILLS[key]
    actions = {
        name: action_for(drill, *kinds[name], stack, broker) for name, stack in stacks.items()
    }
    if not any(isinstance(action, Action) for action in actions.values()):
        return None
    loads, posts, firsts, marks = {}, {}, {}, {name: {} for name in stacks}
    for name, stack in stacks.items():
        session = requests.Session()
        post = post_json(session, f"{stack.url}/api/posts/", {"title": key, "body": "drill"})
        posts[name] = post["id"]
        first = post_json(
            session, f"{stack.url}/api/posts/{posts[name]}/comments/", {"body": "before the drill"}
        )
        firsts[name] = first["id"]
        loads[name] = SteadyLoad(
            stack.url,
            drill_calls(posts[name], key),
            settings.rate,
            label=f"drill-{key}-{name}",
            workers=settings.workers,
            timeout_s=settings.timeout_s,
        )
    acting = {name: a for name, a in actions.items() if isinstance(a, Action)}
    dropped = {}
    t0 = time.monotonic() + 0.3
    try:
        for load in loads.values():
            load.start(t0)
        _sleep_until(t0 + settings.before_s)
        at_once({n: a.down for n, a in acting.items()}, marks, t0, "fault_at_s", "down_done_s")
        _sleep_until(t0 + settings.before_s + settings.down_s)
        at_once({n: a.up for n, a in acting.items()}, marks, t0, "up_at_s", "ready_at_s")
        say(f"    {drill.title}: back up; waiting for a whole second of 2xx on every stack")
        wait_for_recovery(loads, marks, acting, t0, settings)
    finally:
        for action in acting.values():
            action.restore()
        for name, load in loads.items():
            dropped[name] = load.stop()
    fault_at = min((m["fault_at_s"] for m in marks.values() if m), default=settings.before_s)
    figures, raw = {}, []
    for name, stack in stacks.items():
        records = sorted(loads[name].records, key=lambda r: r["at_s"])
        raw += [{"drill": key, "stack": name, **r} for r in records]
        mark = marks[name] or {"fault_at_s": fault_at, "up_at_s": None}
        rows = per_second(records)
        try:
            writes = check_writes(
                stack.url, posts[name], records, firsts[name], max(30.0, settings.recovery_s)
            )
        except BenchError as exc:  # the stack did not come back: say so, drill on
            writes = unverified_writes(records, str(exc))
        action = actions[name]
        acted = isinstance(action, Action)
        note = (action.not_ready if acted else action) or None
        if writes.get("unverified"):
            note = "; ".join(filter(None, [note, f"writes not verified: {writes['unverified']}"]))
        figures[name] = {
            "action": action.describe() if acted else None,
            "note": note,
            **mark,
            "requests": len(records),
            "not_sent": dropped[name],
            **recovery(rows, mark["fault_at_s"], mark.get("up_at_s")),
            "per_second": rows,
            "counter_behind": counter_behind(records, counted_before=1),
            "by_phase": by_phase(records, mark["fault_at_s"], mark.get("up_at_s")),
            "writes": writes,
        }
    return figures, raw


def at_once(steps: dict, marks: dict, t0: float, begun: str, done: str) -> None:
    """Runs each stack's step (name -> callable) at the same moment, one thread
    each, so a slow restart on one stack does not delay the other's; marks
    when each began and ended. Every step has ended when this returns, also
    on Ctrl-C, so nothing is started again after the stacks are stopped."""
    errors: list[BaseException] = []

    def step(name: str, action) -> None:
        marks[name][begun] = round(time.monotonic() - t0, 3)
        try:
            action()
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)
        marks[name][done] = round(time.monotonic() - t0, 3)

    threads = [threading.Thread(target=step, args=item) for item in steps.items()]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    finally:
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]


def wait_for_recovery(loads, marks, acting, t0: float, settings: DrillSettings) -> None:
    """Until every stack that had a fault has had a whole second of 2xx since
    it came back (and 3 s more, for the replies of that second; 3 s after
    the restart when no request failed), or ``recovery_s`` after the last
    restart began."""
    last_up = max((m["up_at_s"] for m in marks.values() if m), default=time.monotonic() - t0)
    # A restart can take longer than recovery_s (the harness waits 30 s for
    # its readiness probe): a few seconds after it returned, at least.
    deadline = max(t0 + last_up + settings.recovery_s, time.monotonic() + 3)
    while time.monotonic() < deadline:
        now = time.monotonic() - t0
        done = True
        for name in acting:
            rows = per_second(sorted(loads[name].records, key=lambda r: r["at_s"]))
            state = recovery(rows, marks[name]["fault_at_s"], marks[name]["up_at_s"])
            settled = state["recovered_at_s"] if state["recovery_s"] else marks[name]["up_at_s"]
            if state["recovery_s"] is None or now < settled + 3:
                done = False
        if done:
            return
        time.sleep(0.25)


def run_drills(keys, stacks: dict, kinds: dict, broker, settings: DrillSettings):
    """Every drill of ``keys`` in turn. Returns (the JSON part, raw records).
    A drill that breaks a stack (a restart that fails, a service that never
    answers again) ends the drills; the ones done are kept, the error noted."""
    drills, raw = {}, []
    faults = {"settings": vars(settings), "drills": drills}
    for key in keys:
        say(f"  drill {key}: {DRILLS[key].title}")
        try:
            result = run_drill(key, stacks, kinds, broker, settings)
        except (BenchError, RuntimeError, AssertionError, requests.RequestException) as exc:
            say(f"    drill {key} failed, no more drills: {exc}")
            return faults | {"error": f"{key}: {exc}"}, raw
        if result is None:
            say("    skipped: no stack of this run has that component")
            continue
        figures, records = result
        drills[key] = {"title": DRILLS[key].title, "stacks": figures}
        raw += records
        for name, fig in figures.items():
            writes = fig["writes"]
            lost = len(writes["posts"]["missing"]) + len(writes["comments"]["missing"])
            say(
                f"    {name:<12} failed {fig['failed']:>4}/{fig['requests']:<4} recovery "
                f"{_s(fig['recovery_s'])}  lost writes {lost}  counter "
                + (
                    f"converged after {writes['counter_converged_after_s']} s"
                    if writes["counter_converged_after_s"] is not None
                    else "NOT converged"
                )
            )
    return faults, raw


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def own_broker_or_none(exits, want: bool):
    """A private RabbitMQ node for the broker drill (entered into ``exits``),
    or None, saying why, when it cannot start here."""
    if not want:
        return None
    from tests.support.broker import private_broker

    try:
        return exits.enter_context(private_broker())
    except (OSError, RuntimeError, subprocess.SubprocessError, AssertionError) as exc:
        say(f"  no RabbitMQ node of the run's own ({exc}): the broker drill is skipped")
        return None
