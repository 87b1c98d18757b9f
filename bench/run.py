"""Benchmark the monolith's read endpoints with wrk (``make bench``).

Builds a throwaway PostgreSQL database, migrates it, seeds the demo data set
(1,000 posts, 10,000 comments), serves it with gunicorn (sync workers, as in
production), measures three read endpoints with wrk and writes the figures
as JSON and a PNG chart under bench/results/. The server and the database
are removed at the end, also on Ctrl-C or failure.

    .venv/bin/python bench/run.py [--duration 10] [--connections 8] ...

See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import psycopg
import requests
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
PYTHON = sys.executable

# The contract's cost goal (docs/architecture.md): the post list, page of 20,
# on the demo data set, with 2 sync gunicorn workers on this machine.
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_ENDPOINT = "post list"
TARGET_REQUESTS_PER_S = 1000.0

WRK_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


class BenchError(Exception):
    """A step failed; the message says what to do about it."""


@dataclass
class WrkResult:
    requests_per_s: float
    requests: int
    duration_s: float
    latency_ms: dict[str, float]  # avg, max, p50, p75, p90, p99
    non_2xx_3xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.non_2xx_3xx + sum(self.socket_errors.values())


@dataclass
class EndpointResult:
    name: str
    path: str
    note: str
    wrk: WrkResult
    # CPU time per request of the gunicorn workers and of the PostgreSQL
    # backends serving them: steadier than req/s when the machine is shared.
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)
    # Every run's req/s when --repeat > 1; the figures above are the median run's.
    runs_requests_per_s: list[float] = field(default_factory=list)


# ---------------------------------------------------------------- output


_started = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _started:5.1f}s] {message}", flush=True)


def fail(message: str) -> NoReturn:
    raise BenchError(message)


# ---------------------------------------------------------------- wrk


def parse_wrk(output: str) -> WrkResult:
    def duration_ms(value: str, unit: str) -> float:
        return float(value) * WRK_UNITS_MS[unit]

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", output, re.MULTILINE)
    if not rps or not total:
        fail(f"could not parse wrk's output:\n{output}")

    latency: dict[str, float] = {}
    stats = re.search(
        r"^\s*Latency\s+([\d.]+)(us|ms|s|m|h)\s+[\d.]+\w+\s+([\d.]+)(us|ms|s|m|h)",
        output,
        re.MULTILINE,
    )
    if stats:
        latency["avg"] = duration_ms(stats[1], stats[2])
        latency["max"] = duration_ms(stats[3], stats[4])
    for percent, value, unit in re.findall(
        r"^\s*(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE
    ):
        latency[f"p{percent}"] = duration_ms(value, unit)
    if "p50" not in latency or "p99" not in latency:
        fail(f"wrk printed no latency distribution (is --latency supported?):\n{output}")

    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests_per_s=float(rps[1]),
        requests=int(total[1]),
        duration_s=duration_ms(total[2], total[3]) / 1000,
        latency_ms={key: round(value, 3) for key, value in latency.items()},
        non_2xx_3xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=(
            dict(
                zip(
                    ("connect", "read", "write", "timeout"), map(int, sockets.groups()), strict=True
                )
            )
            if sockets
            else {}
        ),
    )


def run_wrk(url: str, *, threads: int, connections: int, duration_s: int) -> WrkResult:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--latency", url]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 30, check=False
    )
    if completed.returncode != 0:
        output = completed.stderr + completed.stdout
        fail(f"{' '.join(command)} exited with {completed.returncode}:\n{output}")
    return parse_wrk(completed.stdout)


def wrk_version() -> str:
    completed = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    first_line = (completed.stdout or completed.stderr).splitlines()[:1]
    match = re.match(r"wrk (\S+)", first_line[0]) if first_line else None
    return match[1] if match else "unknown"


# ---------------------------------------------------------------- database


def database_url(server_url: str, name: str) -> str:
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


def create_database(server_url: str, name: str) -> str:
    try:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.OperationalError as exc:
        fail(f"cannot reach PostgreSQL at {server_url} ({exc}); start it or pass --server-url")


def vacuum_analyze(db_url: str) -> None:
    """What autovacuum would do within a minute of the load anyway: fresh
    statistics and a visibility map (index-only scans). Done up front so that
    it does not happen in the middle of a measurement."""
    with psycopg.connect(db_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("VACUUM (ANALYZE)")


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# ---------------------------------------------------------------- Django and gunicorn


def django_env(db_url: str) -> dict[str, str]:
    env = dict(os.environ)
    for inherited in (
        "DJANGO_DEBUG",
        "DJANGO_SECURE_SSL_REDIRECT",
        "WEB_CONCURRENCY",
        "GUNICORN_CMD_ARGS",
    ):
        env.pop(inherited, None)
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    env.update(
        DJANGO_SETTINGS_MODULE="monolith.config.settings.production",
        DATABASE_URL=db_url,
        DJANGO_SECRET_KEY="".join(secrets.choice(alphabet) for _ in range(50)),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        # Plain HTTP on loopback: no redirect to https.
        DJANGO_SECURE_SSL_REDIRECT="0",
        # The monolith's own access log (one JSON line per request) is off, as
        # is gunicorn's: the figures measure serving, not logging.
        ACCESS_LOG="0",
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str, show_output: bool = False) -> None:
    completed = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=False,
        **({} if show_output else {"capture_output": True, "text": True}),
    )
    if completed.returncode != 0:
        details = "" if show_output else f":\n{completed.stdout}{completed.stderr}"
        fail(f"manage.py {' '.join(args)} exited with {completed.returncode}{details}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    def __init__(self, *, env: dict[str, str], port: int, workers: int, workdir: Path) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = workdir / "gunicorn.log"
        # An empty config file, so a gunicorn.conf.py in the checkout (meant
        # for containers) cannot change what is measured.
        config = workdir / "gunicorn.conf.py"
        config.write_text("")
        self.command = [
            PYTHON, "-m", "gunicorn", "monolith.config.wsgi",
            "--config", str(config),
            "--workers", str(workers),
            "--worker-class", "sync",
            "--bind", f"127.0.0.1:{port}",
            "--no-control-socket",
            # No --access-logfile: gunicorn's access log stays off.
            "--error-logfile", "-",
            "--log-level", "warning",
        ]  # fmt: skip
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        # Its own session: Ctrl-C reaches only us, and we stop it in order.
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def wait_healthy(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                fail(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        fail(f"gunicorn did not answer /healthz within {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass
        finally:
            self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


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


# ---------------------------------------------------------------- CPU accounting

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str] | None:
    try:
        # The command name may contain spaces and parentheses: split after it.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = _proc_stat(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICKS


def child_pids(parent: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields and int(fields[1]) == parent:
                children.append(int(entry.name))
    return children


def backend_pids(server_url: str, database: str) -> list[int]:
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = %s AND backend_type = 'client backend'",
            (database,),
        ).fetchall()
    return [pid for (pid,) in rows]


def machine_busy_share(interval_s: float = 1.0) -> float | None:
    """Share of all cores' time spent busy over ``interval_s``: with our server
    idle, that is what others are using."""

    def sample() -> tuple[int, int] | None:
        try:
            values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        except (OSError, ValueError, IndexError):
            return None
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        return sum(values[:8]), idle

    first = sample()
    time.sleep(interval_s)
    second = sample()
    if not first or not second or second[0] == first[0]:
        return None
    return 1 - (second[1] - first[1]) / (second[0] - first[0])


class CpuMeter:
    """CPU seconds used by gunicorn's workers and the database's backends
    between start() and stop(). PostgreSQL backends are only visible when
    the server runs on this machine (and readable to us)."""

    def __init__(self, server: Gunicorn, server_url: str, database: str) -> None:
        self.server, self.server_url, self.database = server, server_url, database

    def _sample(self) -> dict[str, float]:
        backends = backend_pids(self.server_url, self.database)
        sample = {"gunicorn_workers": process_cpu_s(child_pids(self.server.process.pid))}
        if backends and all(_proc_stat(pid) for pid in backends):
            sample["postgresql"] = process_cpu_s(backends)
        return sample

    def start(self) -> None:
        self._before = self._sample()

    def stop(self, requests: int) -> dict[str, float]:
        after = self._sample()
        return {
            key: round((after[key] - self._before[key]) * 1000 / max(requests, 1), 3)
            for key in after
            if key in self._before
        }


# ---------------------------------------------------------------- machine


def machine_info(pg_version: str) -> dict:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    cpu_model = re.search(r"^model name\s*:\s*(.+)$", read("/proc/cpuinfo"), re.MULTILINE)
    mem_total = re.search(r"^MemTotal:\s+(\d+) kB", read("/proc/meminfo"), re.MULTILINE)
    os_name = re.search(r'^PRETTY_NAME="?([^"\n]+)', read("/etc/os-release"), re.MULTILINE)

    import django
    import gunicorn
    import rest_framework

    return {
        "machine": {
            "cpu_model": cpu_model[1].strip() if cpu_model else platform.processor() or "unknown",
            "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else None,
            "ram_gib": round(int(mem_total[1]) / 1024**2, 1) if mem_total else None,
            "os": os_name[1] if os_name else platform.system(),
            "kernel": platform.release(),
        },
        "software": {
            "python": platform.python_version(),
            "django": django.get_version(),
            "djangorestframework": rest_framework.VERSION,
            "gunicorn": gunicorn.__version__,
            "psycopg": psycopg.__version__,
            "postgresql": pg_version,
            "wrk": wrk_version(),
        },
    }


def git_commit() -> str | None:
    completed = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() or None


# ---------------------------------------------------------------- report


def print_table(results: list[EndpointResult]) -> None:
    header = (
        f"{'endpoint':<15} {'path':<56} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        f" {'CPU ms/req: app':>16} {'db':>5}"
    )
    print()
    print(header)
    print("-" * len(header))
    for result in results:
        wrk, cpu = result.wrk, result.cpu_ms_per_request
        app_cpu = f"{cpu['gunicorn_workers']:.2f}" if "gunicorn_workers" in cpu else "-"
        db_cpu = f"{cpu['postgresql']:.2f}" if "postgresql" in cpu else "-"
        print(
            f"{result.name:<15} {result.path:<56} {wrk.requests_per_s:>9,.1f} "
            f"{wrk.latency_ms['p50']:>8.2f} {wrk.latency_ms['p99']:>8.2f} {wrk.errors:>7}"
            f" {app_cpu:>16} {db_cpu:>5}"
        )
    print()


def write_chart(path: Path, results: list[EndpointResult], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [result.name for result in results]
    positions = range(len(results))
    fig, (rps_ax, latency_ax) = plt.subplots(1, 2, figsize=(11, 4.5))

    bars = rps_ax.bar(names, [result.wrk.requests_per_s for result in results], color="#4C72B0")
    rps_ax.bar_label(bars, fmt="%.0f", padding=2)
    rps_ax.axhline(TARGET_REQUESTS_PER_S, color="#C44E52", linestyle="--", linewidth=1)
    rps_ax.annotate(
        f"target for {TARGET_ENDPOINT}: {TARGET_REQUESTS_PER_S:,.0f}",
        xy=(0, TARGET_REQUESTS_PER_S), xytext=(0, 4), textcoords="offset points",
        color="#C44E52", fontsize=8, ha="center",
    )  # fmt: skip
    rps_ax.set_title("Throughput (higher is better)")
    rps_ax.set_ylabel("requests / s")
    rps_ax.set_ylim(0, max(TARGET_REQUESTS_PER_S, *(r.wrk.requests_per_s for r in results)) * 1.18)

    width = 0.38
    p50 = latency_ax.bar(
        [p - width / 2 for p in positions], [r.wrk.latency_ms["p50"] for r in results], width,
        label="p50", color="#55A868",
    )  # fmt: skip
    p99 = latency_ax.bar(
        [p + width / 2 for p in positions], [r.wrk.latency_ms["p99"] for r in results], width,
        label="p99", color="#DD8452",
    )  # fmt: skip
    latency_ax.bar_label(p50, fmt="%.1f", padding=2, fontsize=8)
    latency_ax.bar_label(p99, fmt="%.1f", padding=2, fontsize=8)
    latency_ax.set_xticks(list(positions), names)
    latency_ax.set_title("Latency (lower is better)")
    latency_ax.set_ylabel("ms")
    latency_ax.set_ylim(0, max(r.wrk.latency_ms["p99"] for r in results) * 1.18)
    latency_ax.legend()

    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    tmp = path.with_suffix(".png.tmp")
    fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    os.replace(tmp, path)


def write_json(path: Path, document: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------- main


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


def benchmark(args: argparse.Namespace, workdir: Path, cleanup: list) -> int:
    if shutil.which("wrk") is None:
        fail("wrk is not installed. Install it with `apt-get install -y wrk` and run again.")
    if args.repeat < 1 or args.duration < 1:
        fail("--repeat and --duration must be at least 1")
    if args.threads > args.connections:
        fail("--threads must not exceed --connections (wrk needs a connection per thread)")

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

    server = Gunicorn(env=env, port=args.port or free_port(), workers=args.workers, workdir=workdir)
    say(f"Starting gunicorn: {args.workers} sync workers on {server.base_url}")
    server.start()
    cleanup.append(("stopping gunicorn", server.stop))
    server.wait_healthy()

    post = pick_post(server.base_url)
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
        body = get_json(server.base_url + path)
        if name == "post list" and len(body.get("results", [])) != 20:
            fail(f"expected a page of 20 posts at {path}, got {len(body.get('results', []))}")

    background = machine_busy_share()
    if background is not None:
        say(f"Background CPU use with the server idle: {background:.0%} of all cores")
        if background > 0.10:
            say(
                "  warning: something else is using the CPU; req/s and latency will be low and "
                "noisy (the CPU ms/req columns are less affected)"
            )
    meter = CpuMeter(server, args.server_url, args.database)
    wrk_options = {
        "threads": args.threads,
        "connections": args.connections,
        "duration_s": args.duration,
    }
    wrk_args = f"-t{args.threads} -c{args.connections} -d{args.duration}s"
    results: list[EndpointResult] = []
    for name, path, note in endpoints:
        url = server.base_url + path
        if args.warmup:
            say(f"Warming up {name} ({args.warmup} s)")
            run_wrk(url, **{**wrk_options, "duration_s": args.warmup})
        runs = []
        for run in range(1, args.repeat + 1):
            of = f" (run {run}/{args.repeat})" if args.repeat > 1 else ""
            say(f"Measuring {name}{of}: wrk {wrk_args} {path}")
            meter.start()
            wrk = run_wrk(url, **wrk_options)
            runs.append((wrk, meter.stop(wrk.requests)))
            if wrk.errors:
                say(f"  warning: {wrk.non_2xx_3xx} non-2xx/3xx, socket errors {wrk.socket_errors}")
        wrk, cpu = sorted(runs, key=lambda run: run[0].requests_per_s)[len(runs) // 2]
        results.append(
            EndpointResult(
                name=name,
                path=path,
                note=note,
                wrk=wrk,
                cpu_ms_per_request=cpu,
                runs_requests_per_s=[run[0].requests_per_s for run in runs]
                if len(runs) > 1
                else [],
            )
        )
    if server.process.poll() is not None:
        fail(f"gunicorn died during the run:\n{server.log_tail()}")

    info = machine_info(pg_version)
    print_table(results)

    target = next(result for result in results if result.name == TARGET_ENDPOINT)
    met = target.wrk.requests_per_s >= TARGET_REQUESTS_PER_S and target.wrk.errors == 0
    machine = info["machine"]
    verdict = "MET" if met else "NOT MET"
    print(
        f"Target ({TARGET_ENDPOINT}, page of 20, {args.workers} sync workers): "
        f">= {TARGET_REQUESTS_PER_S:,.0f} req/s -> {verdict} "
        f"({target.wrk.requests_per_s:,.0f} req/s"
        + (f", {target.wrk.errors} errors" if target.wrk.errors else "")
        + ")"
    )
    print(
        f"Machine: {machine['cpu_model']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM; "
        f"wrk and PostgreSQL share it with the server."
    )

    now = datetime.now(UTC)
    document = {
        "label": args.label,
        "measured_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "git_commit": git_commit(),
        **info,
        "background_cpu_share": None if background is None else round(background, 3),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "setup": {
            "settings": "monolith.config.settings.production",
            "server": f"gunicorn, {args.workers} workers, sync, access logs off",
            "data_set": {"posts": args.posts, "comments": args.comments, "seed": args.seed},
            "wrk": {
                "threads": args.threads,
                "connections": args.connections,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "repeat": args.repeat,
            },
        },
        "target": {
            "endpoint": TARGET_ENDPOINT,
            "min_requests_per_s": TARGET_REQUESTS_PER_S,
            "measured_requests_per_s": target.wrk.requests_per_s,
            "met": met,
        },
        "results": [
            {
                "endpoint": r.name,
                "path": r.path,
                "note": r.note,
                **asdict(r.wrk),
                "cpu_ms_per_request": r.cpu_ms_per_request,
                **({"runs_requests_per_s": r.runs_requests_per_s} if r.runs_requests_per_s else {}),
            }
            for r in results
        ],
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{args.label}-{now:%Y-%m-%d}"
    json_path = args.output_dir / f"{stem}.json"
    png_path = args.output_dir / f"{stem}.png"
    write_json(json_path, document)
    write_chart(
        png_path,
        results,
        title=(
            f"{args.label}: {args.workers} sync gunicorn workers, {args.posts:,} posts / "
            f"{args.comments:,} comments, wrk {wrk_args}"
            + (f", median of {args.repeat} runs" if args.repeat > 1 else "")
            + "\n"
            f"{machine['cpu_model']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM, "
            f"{now:%Y-%m-%d}"
        ),
    )
    say(f"Wrote {json_path.relative_to(ROOT) if json_path.is_relative_to(ROOT) else json_path}")
    say(f"Wrote {png_path.relative_to(ROOT) if png_path.is_relative_to(ROOT) else png_path}")
    return 1 if args.check and not met else 0


def _terminate(*_) -> NoReturn:
    print("\nbench: terminated", file=sys.stderr)
    sys.exit(143)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # `kill` gets the same clean-up as Ctrl-C.
    signal.signal(signal.SIGTERM, _terminate)
    cleanup: list[tuple[str, object]] = []
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
            for description, action in reversed(cleanup):
                say(description[0].upper() + description[1:])
                try:
                    action()
                except Exception as exc:  # keep cleaning up
                    print(f"bench: {description} failed: {exc}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
