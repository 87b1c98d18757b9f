"""Where does an endpoint's time go? (``make bench-profile``)

Builds the same throwaway database as bench/run.py (production settings, demo
data set), then calls the Django WSGI application in-process, the way a
gunicorn worker does, without HTTP or load generator in the way:

1. wall time per request, and how much of it is spent in SQL (and how many
   queries);
2. the SQL statements of one request with their server-side time
   (EXPLAIN ANALYZE);
3. a cProfile of many requests, top functions by own and cumulative time.

    .venv/bin/python bench/profile_endpoints.py [--path /api/posts/] [--requests 2000]

A path may contain {post_id}: it is replaced by a post with ~10 comments.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Next to this file: what bench/run.py builds its database and server with.
from common import ROOT, BenchError, say
from server import (
    DEFAULT_SERVER_URL,
    create_database,
    database_url,
    django_env,
    drop_database,
    manage,
    vacuum_analyze,
)

DEFAULT_PATHS = [
    "/api/posts/",
    "/api/posts/{post_id}/",
    "/api/posts/{post_id}/comments/",
    "/healthz",
]


def wsgi_environ(path: str, query: str) -> dict:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1:8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def make_caller(application, url: str):
    path, _, query = url.partition("?")

    def call() -> tuple[str, bytes]:
        status = []
        chunks = application(wsgi_environ(path, query), lambda s, h, e=None: status.append(s))
        try:
            return status[0], b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()

    return call


def measure(call, requests: int) -> tuple[float, float, float]:
    """ms per request, SQL ms per request, queries per request."""
    from django.db import connection

    sql = [0.0, 0]

    def timed(execute, statement, params, many, context):
        started = time.perf_counter()
        try:
            return execute(statement, params, many, context)
        finally:
            sql[0] += time.perf_counter() - started
            sql[1] += 1

    with connection.execute_wrapper(timed):
        started = time.perf_counter()
        for _ in range(requests):
            call()
        elapsed = time.perf_counter() - started
    return elapsed / requests * 1000, sql[0] / requests * 1000, sql[1] / requests


def explain(call) -> list[tuple[str, float]]:
    """(sql, server ms: planning + execution) for each query of one request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        call()
    rows = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            statement = query["sql"]
            server_ms = float("nan")
            if statement.lstrip().upper().startswith("SELECT"):
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement)
                plan = cursor.fetchone()[0]
                plan = plan[0] if isinstance(plan, list) else plan
                server_ms = plan["Planning Time"] + plan["Execution Time"]
            rows.append((statement, server_ms))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--path", action="append", help=f"path to profile (repeatable; default {DEFAULT_PATHS})"
    )
    parser.add_argument(
        "--requests", type=int, default=2000, help="requests per path (default 2000)"
    )
    parser.add_argument("--top", type=int, default=25, help="functions to list (default 25)")
    parser.add_argument("--no-cprofile", action="store_true", help="timings and SQL only")
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--comments", type=int, default=10000)
    parser.add_argument(
        "--server-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_SERVER_URL)
    )
    parser.add_argument("--database", default="blog_bench_profile")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)

    cleanup = []
    try:
        say(f"Creating database {args.database}, migrating, seeding")
        create_database(args.server_url, args.database)
        if not args.keep_db:
            cleanup.append(lambda: drop_database(args.server_url, args.database))
        env = django_env(database_url(args.server_url, args.database))
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "seed", "--posts", str(args.posts), "--comments", str(args.comments), "--quiet")
        vacuum_analyze(env["DATABASE_URL"])

        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        os.chdir(ROOT)
        warnings.simplefilter("ignore")  # WhiteNoise: no STATIC_ROOT in a checkout
        from django.core.wsgi import get_wsgi_application
        from django.db import connection

        application = get_wsgi_application()
        import json

        posts = json.loads(make_caller(application, "/api/posts/?page_size=100")()[1])["results"]
        busy = [post for post in posts if post["comment_count"] >= 10] or posts
        post_id = min(busy, key=lambda post: (post["comment_count"], post["id"]))["id"]

        for template in args.path or DEFAULT_PATHS:
            url = template.format(post_id=post_id)
            call = make_caller(application, url)
            status, body = call()
            print(f"\n=== GET {url}  ->  {status}, {len(body):,} bytes")
            for _ in range(min(200, args.requests)):
                call()
            total_ms, sql_ms, queries = measure(call, args.requests)
            print(
                f"{total_ms:.3f} ms/request in-process; SQL (client side) {sql_ms:.3f} ms in "
                f"{queries:.1f} queries; Python outside SQL {total_ms - sql_ms:.3f} ms"
            )
            for statement, server_ms in explain(call):
                short = statement if len(statement) < 150 else statement[:147] + "..."
                print(f"  {server_ms:6.3f} ms in PostgreSQL (plan + execute)  {short}")
            if queries and connection.settings_dict.get("CONN_HEALTH_CHECKS"):
                print(
                    "  + one 'SELECT 1' round trip per request (CONN_HEALTH_CHECKS), "
                    "counted above as Python, not SQL"
                )
            if args.no_cprofile:
                continue
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.requests):
                call()
            profiler.disable()
            for order in ("tottime", "cumulative"):
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order)
                stats.print_stats(args.top)
                text = out.getvalue()
                print(f"--- top {args.top} by {order}, {args.requests} requests, under cProfile")
                print(text[text.index("   ncalls") :].rstrip())
        connection.close()
    except BenchError as exc:
        print(f"profile: {exc}", file=sys.stderr)
        return 1
    finally:
        for action in cleanup:
            action()
    return 0


if __name__ == "__main__":
    sys.exit(main())
