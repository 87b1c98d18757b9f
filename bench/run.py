"""Benchmark the monolith's read endpoints with wrk (``make bench``).

Builds a throwaway PostgreSQL database, migrates it, seeds the demo data set
(1,000 posts, 10,000 comments), serves it with gunicorn (sync workers, as in
production), measures three read endpoints with wrk and writes the figures
as JSON and a PNG chart under bench/results/. The server and the database
are removed at the end, also on Ctrl-C or failure.

    .venv/bin/python bench/run.py [--duration 10] [--connections 8] ...

See bench/README.md for how to read the output. This file runs the steps;
its neighbours do the work: server.py (database, Django, gunicorn), wrk.py
(running wrk, reading its output), cpu.py (CPU time from /proc) and
report.py (table, verdict, JSON, chart).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import requests
from common import ROOT, BenchError, fail, say, shown
from cpu import CpuMeter, machine_busy_share
from report import (
    EndpointResult,
    document,
    machine_info,
    print_table,
    print_verdict,
    target_result,
    write_chart,
    write_json,
)
from server import (
    DEFAULT_SERVER_URL,
    SETTINGS,
    Gunicorn,
    create_database,
    database_url,
    django_env,
    drop_database,
    manage,
    vacuum_analyze,
)
from wrk import WrkResult, run_wrk

from blogtest.ports import free_port

RESULTS_DIR = ROOT / "bench" / "results"
# Above this share of the CPU used by others with the server idle, the
# figures will be low and noisy: say so before measuring.
BUSY_WARNING_SHARE = 0.10

# (description, action), run in reverse order at the end, also on failure.
Cleanup = list[tuple[str, Callable[[], object]]]
# (name, path, note) of a measured endpoint.
Endpoint = tuple[str, str, str]


# ---------------------------------------------------------------- arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument(
        "--duration", type=int, default=10, help="seconds per endpoint (default 10)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="warm-up seconds per endpoint (default 2)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per endpoint, the median is kept (default 1)"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    parser.add_argument("--posts", type=int, default=1000, help="posts to seed (default 1000)")
    parser.add_argument(
        "--comments", type=int, default=10000, help="comments to seed (default 10000)"
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of the data set (default 42)")
    parser.add_argument(
        "--server-url",
        default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_SERVER_URL),
        help="PostgreSQL server to create the database on (env BENCH_POSTGRES_URL)",
    )
    parser.add_argument(
        "--database", default="blog_bench", help="database to create and drop (default blog_bench)"
    )
    parser.add_argument("--port", type=int, default=0, help="gunicorn port (default: a free one)")
    parser.add_argument(
        "--label", default="monolith", help="results file prefix (default monolith)"
    )
    parser.add_argument(
        "--output-dir", type=Path, default=RESULTS_DIR, help="default bench/results"
    )
    parser.add_argument(
        "--keep-db", action="store_true", help="leave the database behind for a look"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when the post list misses its target"
    )
    return parser.parse_args(argv)


def check_prerequisites(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        fail("wrk is not installed. Install it with `apt-get install -y wrk` and run again.")
    if args.repeat < 1 or args.duration < 1:
        fail("--repeat and --duration must be at least 1")
    if args.threads > args.connections:
        fail("--threads must not exceed --connections (wrk needs a connection per thread)")


def wrk_options(args: argparse.Namespace, duration_s: int | None = None) -> dict:
    return {
        "threads": args.threads,
        "connections": args.connections,
        "duration_s": args.duration if duration_s is None else duration_s,
    }


def wrk_flags(args: argparse.Namespace) -> str:
    return f"-t{args.threads} -c{args.connections} -d{args.duration}s"


# ---------------------------------------------------------------- the server under load


def prepare_database(args: argparse.Namespace, cleanup: Cleanup) -> tuple[dict[str, str], str]:
    """Creates, migrates and seeds the database; returns Django's environment
    for it and PostgreSQL's version."""
    say(f"Creating database {args.database}")
    pg_version = create_database(args.server_url, args.database)
    if not args.keep_db:
        cleanup.append(
            (
                "dropping database " + args.database,
                lambda: drop_database(args.server_url, args.database),
            )
        )
    env = django_env(database_url(args.server_url, args.database))

    say("Migrating (production settings)")
    manage(env, "migrate", "--noinput", "-v", "0")

    say(f"Seeding {args.posts:,} posts and {args.comments:,} comments (seed {args.seed})")
    counts = ["--posts", str(args.posts), "--comments", str(args.comments)]
    manage(env, "seed", *counts, "--seed", str(args.seed), show_output=True)
    say("VACUUM ANALYZE (steady state, as autovacuum would leave it)")
    vacuum_analyze(env["DATABASE_URL"])
    return env, pg_version


def start_server(
    args: argparse.Namespace, env: dict[str, str], workdir: Path, cleanup: Cleanup
) -> Gunicorn:
    server = Gunicorn(env=env, port=args.port or free_port(), workers=args.workers, workdir=workdir)
    say(f"Starting gunicorn: {args.workers} sync workers on {server.base_url}")
    server.start()
    cleanup.append(("stopping gunicorn", server.stop))
    server.wait_healthy()
    return server


def get_json(url: str) -> dict:
    response = requests.get(url, timeout=5)
    if response.status_code != 200:
        fail(f"GET {url} answered {response.status_code}: {response.text[:500]}")
    return response.json()


def pick_post(base_url: str, min_comments: int = 10) -> dict:
    """The post with the fewest comments that still has ``min_comments``."""
    posts = get_json(f"{base_url}/api/posts/?page_size=100")["results"]
    if not posts:
        fail("the post list is empty: did the seed run?")
    busy = [post for post in posts if post["comment_count"] >= min_comments]
    if busy:
        return min(busy, key=lambda post: (post["comment_count"], post["id"]))
    return max(posts, key=lambda post: post["comment_count"])


def choose_endpoints(base_url: str) -> list[Endpoint]:
    """The three read endpoints, each checked to answer before it is measured."""
    post = pick_post(base_url)
    endpoints = [
        ("post list", "/api/posts/", "page of 20, newest first"),
        ("post detail", f"/api/posts/{post['id']}/", "one post with its comment_count"),
        (
            "post comments",
            f"/api/posts/{post['id']}/comments/",
            f"a post with {post['comment_count']} comments",
        ),
    ]
    for name, path, _ in endpoints:
        body = get_json(base_url + path)
        if name == "post list" and len(body.get("results", [])) != 20:
            fail(f"expected a page of 20 posts at {path}, got {len(body.get('results', []))}")
    return endpoints


# ---------------------------------------------------------------- measuring


def background_cpu_share() -> float | None:
    """What others use of the CPU while the server idles; warns when it is a lot."""
    background = machine_busy_share()
    if background is not None:
        say(f"Background CPU use with the server idle: {background:.0%} of all cores")
        if background > BUSY_WARNING_SHARE:
            say(
                "  warning: something else is using the CPU; req/s and latency will be low and "
                "noisy (the CPU ms/req columns are less affected)"
            )
    return background


def measure_endpoint(
    args: argparse.Namespace, base_url: str, endpoint: Endpoint, meter: CpuMeter
) -> EndpointResult:
    """A warm-up, then ``--repeat`` measured runs; keeps the median run by req/s."""
    name, path, note = endpoint
    url = base_url + path
    if args.warmup:
        say(f"Warming up {name} ({args.warmup} s)")
        run_wrk(url, **wrk_options(args, duration_s=args.warmup))
    runs: list[tuple[WrkResult, dict[str, float]]] = []
    for run in range(1, args.repeat + 1):
        of = f" (run {run}/{args.repeat})" if args.repeat > 1 else ""
        say(f"Measuring {name}{of}: wrk {wrk_flags(args)} {path}")
        meter.start()
        wrk = run_wrk(url, **wrk_options(args))
        runs.append((wrk, meter.stop(wrk.requests)))
        if wrk.errors:
            say(f"  warning: {wrk.non_2xx_3xx} non-2xx/3xx, socket errors {wrk.socket_errors}")
    wrk, cpu = sorted(runs, key=lambda run: run[0].requests_per_s)[len(runs) // 2]
    return EndpointResult(
        name=name,
        path=path,
        note=note,
        wrk=wrk,
        cpu_ms_per_request=cpu,
        runs_requests_per_s=[run[0].requests_per_s for run in runs] if len(runs) > 1 else [],
    )


def measure(
    args: argparse.Namespace, server: Gunicorn, endpoints: list[Endpoint]
) -> list[EndpointResult]:
    meter = CpuMeter(server.process.pid, args.server_url, args.database)
    results = [measure_endpoint(args, server.base_url, endpoint, meter) for endpoint in endpoints]
    if server.process.poll() is not None:
        fail(f"gunicorn died during the run:\n{server.log_tail()}")
    return results


# ---------------------------------------------------------------- results


def setup_document(args: argparse.Namespace) -> dict:
    """How the figures were measured, for the JSON file."""
    return {
        "settings": SETTINGS,
        "server": f"gunicorn, {args.workers} workers, sync, access logs off",
        "data_set": {"posts": args.posts, "comments": args.comments, "seed": args.seed},
        "wrk": {
            "threads": args.threads,
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeat": args.repeat,
        },
    }


def chart_title(args: argparse.Namespace, machine: dict, now: datetime) -> str:
    return (
        f"{args.label}: {args.workers} sync gunicorn workers, {args.posts:,} posts / "
        f"{args.comments:,} comments, wrk {wrk_flags(args)}"
        + (f", median of {args.repeat} runs" if args.repeat > 1 else "")
        + "\n"
        f"{machine['cpu_model']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM, "
        f"{now:%Y-%m-%d}"
    )


def write_results(
    args: argparse.Namespace,
    results: list[EndpointResult],
    info: dict,
    background: float | None,
) -> None:
    """``<label>-<date>.json`` and ``.png`` in ``--output-dir``."""
    now = datetime.now(UTC)
    content = document(
        label=args.label,
        measured_at=now,
        info=info,
        background=background,
        setup=setup_document(args),
        results=results,
    )
    args.output_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{args.label}-{now:%Y-%m-%d}"
    json_path = args.output_dir / f"{stem}.json"
    png_path = args.output_dir / f"{stem}.png"
    write_json(json_path, content)
    write_chart(png_path, results, title=chart_title(args, info["machine"], now))
    say(f"Wrote {shown(json_path)}")
    say(f"Wrote {shown(png_path)}")


# ---------------------------------------------------------------- main


def benchmark(args: argparse.Namespace, workdir: Path, cleanup: Cleanup) -> int:
    check_prerequisites(args)
    env, pg_version = prepare_database(args, cleanup)
    server = start_server(args, env, workdir, cleanup)
    endpoints = choose_endpoints(server.base_url)
    background = background_cpu_share()
    results = measure(args, server, endpoints)

    info = machine_info(pg_version)
    print_table(results)
    print_verdict(results, args.workers, info["machine"])
    write_results(args, results, info, background)
    _, met = target_result(results)
    return 1 if args.check and not met else 0


def clean_up(cleanup: Cleanup) -> None:
    """Runs every clean-up action, newest first, whatever fails."""
    for description, action in reversed(cleanup):
        say(description[0].upper() + description[1:])
        try:
            action()
        except Exception as exc:  # keep cleaning up
            print(f"bench: {description} failed: {exc}", file=sys.stderr)


def _terminate(*_) -> NoReturn:
    print("\nbench: terminated", file=sys.stderr)
    sys.exit(143)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # `kill` gets the same clean-up as Ctrl-C.
    signal.signal(signal.SIGTERM, _terminate)
    cleanup: Cleanup = []
    status = 1
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        try:
            status = benchmark(args, Path(workdir), cleanup)
        except BenchError as exc:
            print(f"\nbench: {exc}", file=sys.stderr)
        except KeyboardInterrupt:
            print("\nbench: interrupted", file=sys.stderr)
            status = 130
        finally:
            # A second Ctrl-C must not leave the server or the database behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            clean_up(cleanup)
    return status


if __name__ == "__main__":
    sys.exit(main())
