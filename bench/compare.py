"""`make compare`: what the split costs, stage 4 measured beside stage 0 in one run.

Starts stage 0 (the monolith alone, gunicorn with 2 sync workers) and stage 4
(posts and comments services under gunicorn, nginx in front, the
MongoDB-wire server, in async mode its relays and consumers on RabbitMQ) on
the real profile, side by side, as tests/support/harness.py starts them. Gives
each the same data set through the public API, then measures in rounds; in
each round every endpoint is measured on every stack in turn (the order of
the stacks flips from round to round), so the machine's noise hits all alike:

- wrk for the saturation throughput, with the CPU each component used
  (from /proc) divided by the requests served;
- httperf at a fixed, open-loop rate (default: half the monolith's
  saturation of that endpoint, taken in the first round) for p50/p90/p99
  without coordinated omission.

Before the rounds, the network hops of each endpoint, counted from the
X-Request-ID in the components' logs (compare_hops); after them, in async
mode, the event lag from commit to effect (compare_lag), then the fault
drills, every stack under the same steady load while a part of stage 4 is
killed or paused (compare_faults; stage 4 async then runs on a RabbitMQ node
of the run's own, so the broker drill never stops the shared one).

Writes bench/results/compare-<date>/compare.json (every figure, the machine,
the versions, the commit), compare.html (charts inlined), the charts as
ratios.png, cpu.png and faults.png, and every drill request in
drill-requests.jsonl; prints the tables. Asserts nothing. Stops every
process it started, Ctrl-C included.

    .venv/bin/python bench/compare.py [--rounds 2] [--duration 3] [--mode async|sync|both]
    .venv/bin/python bench/compare.py --report bench/results/compare-<date>   # from its JSON

The report ends with the goals set for the split (read and write ratios,
event lag, the monolith's throughput): met or not, and for each one missed
what stands in the way, in the run's own numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests
from common import ROOT, BenchError, fail, say, shown
from compare_charts import charts
from compare_faults import DEFAULT_DRILLS, DRILLS, DrillSettings, own_broker_or_none, run_drills
from compare_hops import measure_hops
from compare_lag import event_lag
from compare_load import post_json
from compare_procs import StackMeter, cpu_deltas_s, footprint
from compare_report import (
    BASELINE,
    SECANTUS_NOTE,
    explanations,
    faults_table,
    goals,
    goals_table,
    hops_table,
    html_page,
    lag_lines,
    on_secantus,
    ratios,
    summarize,
    table,
    write_json,
)
from compare_tools import (
    check_tools,
    httperf_session_file,
    httperf_version,
    run_httperf,
    wrk_post_script,
)
from report import git_commit, machine_info
from wrk import run_wrk

sys.path.insert(0, str(ROOT))

from tests.support.harness import stage_stack

SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
RESULTS = ROOT / "bench" / "results"
POST_BODY = '{"title": "compare", "body": "a post written by make compare"}'
COMMENT_BODY = '{"body": "a comment written by make compare"}'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds (default 2)")
    parser.add_argument(
        "--duration", type=int, default=3, help="seconds per measurement (default 3)"
    )
    parser.add_argument(
        "--mode", choices=("async", "sync", "both"), default="async", help="stage 4's mode"
    )
    parser.add_argument(
        "--rate", type=float, default=None, help="fixed rate/s for every endpoint "
        "(default: half the monolith's saturation of each endpoint, first round)",
    )  # fmt: skip
    parser.add_argument("--posts", type=int, default=20, help="posts seeded (default 20)")
    parser.add_argument(
        "--comments", type=int, default=200, help="comments seeded on one post (default 200)"
    )
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument(
        "--max-rate", type=float, default=400.0, help="cap on the fixed rate (default 400/s)"
    )
    parser.add_argument(
        "--deadline", type=int, default=900, help="stop measuring after this many s (default 900)"
    )
    parser.add_argument(
        "--mongo-url", default=os.environ.get("MONGO_URL") or None,
        help="a real MongoDB for stage 4's comments service (default: $MONGO_URL, else a "
        "SecantusDB MongoDB-wire server of the run's own); each stack uses a database of "
        "its own there, dropped at the end",
    )  # fmt: skip
    parser.add_argument(
        "--hops-requests", type=int, default=3, help="requests per endpoint whose hops are "
        "counted from the logs (default 3; 0: none)",
    )  # fmt: skip
    parser.add_argument(
        "--lag-rates", default="50,100",
        help="events/s for the event lag, comma-separated (default 50,100)",
    )  # fmt: skip
    parser.add_argument(
        "--lag-seconds", type=float, default=10.0, help="event lag run, s (default 10; 0: none)"
    )
    parser.add_argument(
        "--faults", action=argparse.BooleanOptionalAction, default=True,
        help="run the fault drills (default: yes)",
    )  # fmt: skip
    parser.add_argument(
        "--drills", default=",".join(DEFAULT_DRILLS),
        help=f"drills, comma-separated, of {', '.join(DRILLS)} (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--fault-rate", type=float, default=20.0, help="requests/s to each stack in a drill "
        "(default 20)",
    )  # fmt: skip
    parser.add_argument(
        "--fault-down", type=float, default=5.0, help="s between a fault and its end (default 5)"
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument(
        "--report", type=Path, default=None, metavar="FOLDER", help="measure nothing: write "
        "FOLDER's report again from its compare.json (tables and goals recomputed)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration < 1 or args.threads > args.connections:
        parser.error("--rounds and --duration >= 1; --threads <= --connections")
    args.drills = [d.strip() for d in args.drills.split(",") if d.strip()] if args.faults else []
    unknown = [d for d in args.drills if d not in DRILLS]
    if unknown:
        parser.error(f"unknown drills {', '.join(unknown)}; of {', '.join(DRILLS)}")
    try:
        args.lag_rates = [float(rate) for rate in args.lag_rates.split(",") if rate.strip()]
    except ValueError:
        parser.error(f"--lag-rates: numbers, comma-separated, not {args.lag_rates!r}")
    if args.fault_rate <= 0 or args.fault_down <= 0 or min(args.lag_rates, default=0) <= 0:
        parser.error("--fault-rate, --fault-down and --lag-rates > 0")
    return args


def shown_url(url: str) -> str:
    """A URL without its password, for the report and the messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.netloc.rsplit('@', 1)[1]}"
    return parts._replace(netloc=netloc).geturl()


def check_mongo(url: str, timeout_s: float = 5.0) -> None:
    """--mongo-url answers a ping, or the run stops before starting anything."""
    import pymongo
    import pymongo.errors

    if urlsplit(url).scheme not in ("mongodb", "mongodb+srv"):
        fail(f"--mongo-url {shown_url(url)}: a mongodb:// or mongodb+srv:// URL")
    try:
        with pymongo.MongoClient(url, serverSelectionTimeoutMS=int(timeout_s * 1000)) as client:
            client.admin.command("ping")
    except pymongo.errors.PyMongoError as exc:
        fail(f"--mongo-url {shown_url(url)}: no MongoDB answers there: {exc}")


def drop_mongo_database(url: str, name: str) -> None:
    import pymongo

    with pymongo.MongoClient(url, serverSelectionTimeoutMS=5000) as client:
        client.drop_database(name)


# ---------------------------------------------------------------- stacks and data


def stacks_wanted(mode: str) -> dict[str, tuple[int, str | None]]:
    """Name -> (stage, mode), the monolith first."""
    modes = ("async", "sync") if mode == "both" else (mode,)
    return {BASELINE: (0, None), **{f"stage4-{m}": (4, m) for m in modes}}


def seed(url: str, posts: int, comments: int) -> dict[str, int]:
    """The same data set on each stack, through its public API: ``posts``
    posts, ``comments`` comments on the first (the one read), a post for
    the comments written by the load. Returns the ids used."""
    session = requests.Session()
    api = f"{url}/api/posts/"
    post, comment = json.loads(POST_BODY), json.loads(COMMENT_BODY)
    ids = [post_json(session, api, post)["id"] for _ in range(max(2, posts))]
    for _ in range(comments):
        post_json(session, f"{api}{ids[0]}/comments/", comment)
    post_json(session, f"{api}{ids[1]}/comments/", comment)
    return {"read": ids[0], "write": ids[1]}


def endpoints(ids: dict[str, int]) -> dict[str, tuple[str, str | None]]:
    """Endpoint name -> (path, JSON body of a POST or None)."""
    return {
        "post list": ("/api/posts/", None),
        "post detail": (f"/api/posts/{ids['read']}/", None),
        "post comments": (f"/api/posts/{ids['read']}/comments/", None),
        "create post": ("/api/posts/", POST_BODY),
        "create comment": (f"/api/posts/{ids['write']}/comments/", COMMENT_BODY),
    }


def meter_for(stack, own_broker=None) -> StackMeter:
    """The stack's components; its own RabbitMQ node counted as one when it has one."""
    roots = {process: popen.pid for process, popen in stack.processes.items()}
    if own_broker is not None:
        roots["rabbitmq (own node)"] = own_broker.process.pid
    shared = stack.broker is not None and own_broker is None
    return StackMeter(roots, stack.databases, SERVER_URL, broker=shared)


# ---------------------------------------------------------------- measuring


class Run:
    """The run's state: stacks, their endpoints, the rounds recorded."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args, self.workdir = args, workdir
        self.urls: dict[str, str] = {}
        self.meters: dict[str, StackMeter] = {}
        self.paths: dict[str, dict[str, tuple[str, str | None]]] = {}
        self.rounds: dict[str, dict[str, dict[str, list]]] = {}
        self.rates: dict[str, float] = {}
        self.stacks: dict = {}
        self.broker = None  # stage 4 async's own RabbitMQ node, for the broker drill
        self.hops: dict[str, dict] = {}
        self.lag: dict[str, dict] = {}
        self.faults: dict = {}
        self.drill_requests: list[dict] = []
        self.started = time.monotonic()

    def out_of_time(self) -> bool:
        return time.monotonic() - self.started > self.args.deadline

    def saturation(self, stack: str, endpoint: str) -> dict:
        path, body = self.paths[stack][endpoint]
        script = None
        if body is not None:
            script = wrk_post_script(self.workdir, f"{stack}-{endpoint.replace(' ', '-')}", body)
        meter = self.meters[stack]
        before = meter.sample()
        wrk = run_wrk(
            self.urls[stack] + path,
            threads=self.args.threads,
            connections=self.args.connections,
            duration_s=self.args.duration,
            script=script,
        )
        used = cpu_deltas_s(before, meter.sample())
        served = max(wrk.requests, 1)
        return {
            "requests_per_s": wrk.requests_per_s,
            "requests": wrk.requests,
            "latency_ms": wrk.latency_ms,
            "errors": wrk.errors,
            "cpu_ms_per_request": {c: round(s * 1000 / served, 3) for c, s in used.items()},
        }

    def fixed_rate(self, stack: str, endpoint: str) -> dict:
        path, body = self.paths[stack][endpoint]
        session = None
        if body is not None:
            name = f"{stack}-{endpoint.replace(' ', '-')}"
            session = httperf_session_file(self.workdir, name, path, body)
        result = run_httperf(
            self.urls[stack] + path,
            rate=self.rates[endpoint],
            duration_s=self.args.duration,
            session_file=session,
        )
        return {
            "rate_per_s": result.rate_per_s,
            "achieved_per_s": result.request_rate_per_s,
            "latency_ms": result.latency_ms,
            "failed": result.failed,
            "status": result.status,
            "histogram_ms": {str(k): v for k, v in result.histogram.items()},
        }

    def record(self, stack: str, endpoint: str, kind: str, figures: dict) -> None:
        by_endpoint = self.rounds.setdefault(stack, {}).setdefault(endpoint, {})
        by_endpoint.setdefault(kind, []).append(figures)

    def round(self, number: int) -> None:
        order = list(self.urls) if number % 2 else list(reversed(self.urls))
        for endpoint in next(iter(self.paths.values())):
            for stack in order:
                if self.out_of_time():
                    return
                figures = self.saturation(stack, endpoint)
                self.record(stack, endpoint, "saturation", figures)
                say(
                    f"  round {number} {endpoint:<15} {stack:<12} wrk "
                    f"{figures['requests_per_s']:8.0f} req/s"
                    + (f"  ({figures['errors']} errors)" if figures["errors"] else "")
                )
            if endpoint not in self.rates:
                mono = self.rounds[BASELINE][endpoint]["saturation"][0]["requests_per_s"]
                rate = self.args.rate or max(1.0, round(mono / 2))
                self.rates[endpoint] = min(rate, self.args.max_rate)
            for stack in order:
                if self.out_of_time():
                    return
                figures = self.fixed_rate(stack, endpoint)
                self.record(stack, endpoint, "fixed_rate", figures)
                lat = figures["latency_ms"]
                say(
                    f"  round {number} {endpoint:<15} {stack:<12} httperf "
                    f"{self.rates[endpoint]:5.0f}/s p50 {lat['p50']:.0f} p99 {lat['p99']:.0f} ms"
                    + (f"  ({figures['failed']} failed)" if figures["failed"] else "")
                )


def warm_up(run: Run) -> None:
    """A second of each endpoint on each stack: connections, caches, workers."""
    for stack, url in run.urls.items():
        for path, body in run.paths[stack].values():
            script = wrk_post_script(run.workdir, "warmup", body) if body else None
            run_wrk(url + path, threads=1, connections=2, duration_s=1, script=script)


def start_stacks(args: argparse.Namespace, workdir: Path, exits: ExitStack, run: Run) -> dict:
    """Every stack up and seeded; their footprint at rest is taken later."""
    stacks = {}
    for name, (stage, mode) in stacks_wanted(args.mode).items():
        say(f"Starting {name} (stage {stage}{', ' + mode if mode else ''}, real profile)")
        log_dir = workdir / name
        log_dir.mkdir()
        options = {"gateway": "nginx", "log_dir": log_dir, "mode": mode}
        if stage == 4 and args.mongo_url:
            # A database of the stack's own on a MongoDB that others may use.
            database = f"compare_{name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
            say(f"  its comments in database {database} at {shown_url(args.mongo_url)}")
            exits.callback(drop_mongo_database, args.mongo_url, database)
            options |= {"mongo_url": args.mongo_url, "mongo_db": database}
        if mode == "async" and "broker-stop" in args.drills:
            say("  its own RabbitMQ node, for the broker drill (the shared one is never stopped)")
            run.broker = own_broker_or_none(exits, want=True)
            if run.broker is not None:
                options["broker"] = run.broker.url
        try:
            stack = exits.enter_context(stage_stack(stage, **options))
        except Exception as exc:  # the harness names the failing component and its log
            fail(f"{name} did not start: {exc}\n{log_tails(log_dir)}")
        names = sorted(urlsplit(url).path.lstrip("/") for url in stack.databases.values())
        say(f"  its PostgreSQL databases (dropped at the end): {', '.join(names)}")
        say(f"  seeding {args.posts} posts, {args.comments} comments through {stack.url}")
        ids = seed(stack.url, args.posts, args.comments)
        stacks[name] = stack
        run.urls[name] = stack.url
        run.paths[name] = endpoints(ids)
        run.meters[name] = meter_for(stack, run.broker if "broker" in options else None)
    run.stacks = stacks
    return stacks


def log_tails(folder: Path, lines: int = 15) -> str:
    tails = []
    for log in sorted(folder.rglob("*.log")):
        text = log.read_text(errors="replace").splitlines()[-lines:]
        tails.append(f"--- {shown(log)}\n" + "\n".join(text))
    return "\n".join(tails)


def postgresql_version() -> str:
    with psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=5) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def document(args: argparse.Namespace, run: Run, footprints: dict) -> dict:
    summary = summarize(run.rounds)
    ratio_table = ratios(summary)
    info = machine_info(pg_version=postgresql_version())
    info["software"]["httperf"] = httperf_version()
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": info["machine"],
        "software": info["software"],
        "settings": {
            "rounds": args.rounds,
            "duration_s": args.duration,
            "mode": args.mode,
            "posts": args.posts,
            "comments": args.comments,
            "wrk": f"-t{args.threads} -c{args.connections}",
            "fixed_rates_per_s": run.rates,
            "mongo": shown_url(args.mongo_url)
            if args.mongo_url
            else "SecantusDB (MongoDB-wire server)",
            "note": (
                "Stage 0 is the monolith alone (gunicorn, 2 sync workers); stage 4 runs each "
                "service under gunicorn with 2 sync workers behind nginx. Rounds interleave "
                "the stacks. Latency: httperf, one connection per request, 1 ms bins "
                "(upper edge). CPU: /proc time of each component over the wrk run ÷ requests."
                + (
                    " Comments on the MongoDB at --mongo-url, not metered: its CPU and "
                    "memory are not in the figures."
                    if args.mongo_url
                    else f" Comments endpoints: {SECANTUS_NOTE}."
                )
                + " Hops: components whose logs carry a request's X-Request-ID. Event lag: "
                "a comment's created_at (stamped before its insert) to the posts service's "
                "comment_count counting it. Drills: "
                "every stack under the same steady load while a part of stage 4 is killed "
                "or paused; the monolith gets the equivalent where it has one."
            ),
            "hops_requests_per_endpoint": args.hops_requests,
            "event_lag": {"rates_per_s": args.lag_rates, "seconds": args.lag_seconds},
            "drills": args.drills,
        },
        "summary": summary,
        "ratios": ratio_table,
        "footprint": footprints,
        "hops": run.hops,
        "event_lag": run.lag,
        "faults": run.faults,
        "explanations": explanations(run.hops),
        "goals": goals(summary, ratio_table, run.lag, info["machine"]["cores"]),
        "rounds": run.rounds,
        "table": table(summary, ratio_table, secantus=not args.mongo_url),
    }


def measure(args: argparse.Namespace, out: Path) -> dict:
    with ExitStack() as exits, tempfile.TemporaryDirectory(prefix="compare-") as tmp:
        workdir = Path(tmp)
        run = Run(args, workdir)
        start_stacks(args, workdir, exits, run)
        say("Warming up every endpoint on every stack")
        warm_up(run)
        if args.hops_requests > 0:
            say(f"Counting hops: {args.hops_requests} requests per endpoint with known request ids")
            for name, stack in run.stacks.items():
                run.hops[name] = measure_hops(stack, run.paths[name], name, args.hops_requests)
        for number in range(1, args.rounds + 1):
            if run.out_of_time():
                say(f"Deadline of {args.deadline} s reached: reporting what was measured")
                break
            say(f"Round {number}/{args.rounds}")
            run.round(number)
        footprints = {name: footprint(meter.sample()) for name, meter in run.meters.items()}
        kinds = stacks_wanted(args.mode)
        if args.lag_seconds > 0:
            for name, stack in run.stacks.items():
                if kinds[name][1] == "async":
                    for rate in args.lag_rates:
                        say(f"Event lag on {name}: {rate:g}/s for {args.lag_seconds:g} s")
                        run.lag[f"{name} at {rate:g}/s"] = event_lag(
                            stack.url, rate, args.lag_seconds, meter=run.meters[name]
                        )
        if args.drills:
            say(f"Fault drills, every stack under {args.fault_rate:g} requests/s: "
                + ", ".join(args.drills))  # fmt: skip
            settings = DrillSettings(rate=args.fault_rate, down_s=args.fault_down)
            run.faults, run.drill_requests = run_drills(
                args.drills, run.stacks, kinds, run.broker, settings
            )
        say("Stopping the stacks")
        return document(args, run, footprints) | {"drill_requests": run.drill_requests}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C (even when started where SIGINT is ignored, as `cmd &` in a
    # script) and SIGTERM: the stacks are stopped and their databases dropped.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.report is not None:
        return report_again(args.report)
    out = args.out or RESULTS / f"compare-{datetime.now(UTC):%Y-%m-%d-%H%M}"
    try:
        check_tools()
        if args.mongo_url:
            check_mongo(args.mongo_url)
        doc = measure(args, out)
    except BenchError as exc:
        print(f"compare: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("compare: interrupted; every process stopped, databases dropped", file=sys.stderr)
        return 130
    write_report(out, doc)
    return 0


def report_again(folder: Path) -> int:
    """The report of a recorded run, from its compare.json, with the tables
    and the goals of this version of the report."""
    try:
        doc = json.loads((folder / "compare.json").read_text())
    except (OSError, ValueError) as exc:
        print(f"compare: no report to write again in {folder}: {exc}", file=sys.stderr)
        return 1
    doc["table"] = table(doc["summary"], doc["ratios"], secantus=on_secantus(doc))
    doc["goals"] = goals(
        doc["summary"], doc["ratios"], doc.get("event_lag") or {}, doc["machine"]["cores"]
    )
    write_report(folder, doc)
    return 0


def write_report(out: Path, doc: dict) -> None:
    """compare.json, the charts as PNG files, compare.html, the drills'
    requests (one JSON line each), and the tables printed."""
    out.mkdir(parents=True, exist_ok=True)
    drill_requests = doc.pop("drill_requests", [])
    write_json(out / "compare.json", doc)
    pngs = charts(doc)
    for stem, png in pngs.items():
        (out / f"{stem}.png").write_bytes(png)
    (out / "compare.html").write_text(html_page(doc, pngs))
    if drill_requests:
        with (out / "drill-requests.jsonl").open("w") as lines:
            lines.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in drill_requests)
    print()
    print(doc["table"])
    for part, text in (
        ("goals", goals_table),
        ("hops", hops_table),
        ("event_lag", lag_lines),
        ("faults", faults_table),
    ):
        if doc.get(part):
            print()
            print(text(doc[part]))
    print()
    say(f"Wrote {shown(out)}/: compare.json, compare.html, " + ", ".join(f"{s}.png" for s in pngs)
        + (", drill-requests.jsonl" if drill_requests else ""))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
