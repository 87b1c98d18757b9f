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

Writes bench/results/compare-<date>/compare.json (every figure, the machine,
the versions, the commit) and compare.html (charts inlined), prints the table
of ratios. Asserts nothing. Stops every process it started, Ctrl-C included.

    .venv/bin/python bench/compare.py [--rounds 2] [--duration 3] [--mode async|sync|both]
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests
from common import ROOT, BenchError, fail, say, shown
from compare_procs import StackMeter, cpu_deltas_s, footprint
from compare_report import (
    BASELINE,
    SECANTUS_NOTE,
    html_page,
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
        "--mongo-url", default=None, help="a real MongoDB for stage 4's comments service "
        "(mongodb://127.0.0.1:PORT; default: a SecantusDB MongoDB-wire server of the run's own)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration < 1 or args.threads > args.connections:
        parser.error("--rounds and --duration >= 1; --threads <= --connections")
    return args


def mongo_port(url: str | None) -> int | None:
    """The loopback port of --mongo-url: the harness connects to 127.0.0.1:PORT."""
    if url is None:
        return None
    parts = urlsplit(url)
    if (
        parts.scheme != "mongodb"
        or parts.hostname not in ("127.0.0.1", "localhost")
        or not parts.port
    ):
        fail(f"--mongo-url {url}: only mongodb://127.0.0.1:PORT is supported for now")
    return parts.port


# ---------------------------------------------------------------- stacks and data


def stacks_wanted(mode: str) -> dict[str, tuple[int, str | None]]:
    """Name -> (stage, mode), the monolith first."""
    modes = ("async", "sync") if mode == "both" else (mode,)
    return {BASELINE: (0, None), **{f"stage4-{m}": (4, m) for m in modes}}


def post_json(session: requests.Session, url: str, body: str, deadline_s: float = 30) -> dict:
    """POSTs until 201 (a new post's comments wait for the comments service to know it)."""
    deadline = time.monotonic() + deadline_s
    while True:
        response = session.post(url, data=body, headers={"Content-Type": "application/json"})
        if response.status_code == 201:
            return response.json()
        if time.monotonic() > deadline:
            fail(f"POST {url} answered {response.status_code}: {response.text[:300]}")
        time.sleep(0.1)


def seed(url: str, posts: int, comments: int) -> dict[str, int]:
    """The same data set on each stack, through its public API: ``posts``
    posts, ``comments`` comments on the first (the one read), a post for
    the comments written by the load. Returns the ids used."""
    session = requests.Session()
    api = f"{url}/api/posts/"
    ids = [post_json(session, api, POST_BODY)["id"] for _ in range(max(2, posts))]
    for _ in range(comments):
        post_json(session, f"{api}{ids[0]}/comments/", COMMENT_BODY)
    post_json(session, f"{api}{ids[1]}/comments/", COMMENT_BODY)
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


def meter_for(stack, name: str) -> StackMeter:
    roots = {process: popen.pid for process, popen in stack.processes.items()}
    return StackMeter(roots, stack.databases, SERVER_URL, broker=stack.broker is not None)


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
            options["mongo_port"] = mongo_port(args.mongo_url)
        try:
            stack = exits.enter_context(stage_stack(stage, **options))
        except Exception as exc:  # the harness names the failing component and its log
            fail(f"{name} did not start: {exc}\n{log_tails(log_dir)}")
        say(f"  seeding {args.posts} posts, {args.comments} comments through {stack.url}")
        ids = seed(stack.url, args.posts, args.comments)
        stacks[name] = stack
        run.urls[name] = stack.url
        run.paths[name] = endpoints(ids)
        run.meters[name] = meter_for(stack, name)
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
            "mongo": args.mongo_url or "SecantusDB (MongoDB-wire server)",
            "note": (
                "Stage 0 is the monolith alone (gunicorn, 2 sync workers); stage 4 runs each "
                "service under gunicorn with 2 sync workers behind nginx. Rounds interleave "
                "the stacks. Latency: httperf, one connection per request, 1 ms bins "
                "(upper edge). CPU: /proc time of each component over the wrk run ÷ requests."
                + ("" if args.mongo_url else f" Comments endpoints: {SECANTUS_NOTE}.")
            ),
        },
        "summary": summary,
        "ratios": ratio_table,
        "footprint": footprints,
        "rounds": run.rounds,
        "table": table(summary, ratio_table),
    }


def measure(args: argparse.Namespace, out: Path) -> dict:
    with ExitStack() as exits, tempfile.TemporaryDirectory(prefix="compare-") as tmp:
        workdir = Path(tmp)
        run = Run(args, workdir)
        start_stacks(args, workdir, exits, run)
        say("Warming up every endpoint on every stack")
        warm_up(run)
        for number in range(1, args.rounds + 1):
            if run.out_of_time():
                say(f"Deadline of {args.deadline} s reached: reporting what was measured")
                break
            say(f"Round {number}/{args.rounds}")
            run.round(number)
        footprints = {name: footprint(meter.sample()) for name, meter in run.meters.items()}
        say("Stopping the stacks")
        return document(args, run, footprints)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C (even when started where SIGINT is ignored, as `cmd &` in a
    # script) and SIGTERM: the stacks are stopped and their databases dropped.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    out = args.out or RESULTS / f"compare-{datetime.now(UTC):%Y-%m-%d-%H%M}"
    try:
        check_tools()
        doc = measure(args, out)
    except BenchError as exc:
        print(f"compare: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("compare: interrupted; every process stopped, databases dropped", file=sys.stderr)
        return 130
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "compare.json", doc)
    (out / "compare.html").write_text(html_page(doc))
    print()
    print(doc["table"])
    print()
    say(f"Wrote {shown(out / 'compare.json')} and {shown(out / 'compare.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
