"""Measure the stage-2 data migration (import_monolith_comments) on 100,000 comments.

    .venv/bin/python bench/migration.py                    # 5,000 posts, 100,000 comments
    .venv/bin/python bench/migration.py --posts 500 --comments 10000

Creates a throwaway monolith database on PostgreSQL (BENCH_POSTGRES_URL, the
server only; default postgresql://postgres@127.0.0.1:5432), applies the
monolith's migrations and seeds it, starts a fresh SecantusDB (the embedded
MongoDB-wire server) in a temporary folder, runs the import, then runs it a
second time (the idempotent no-op), and prints duration, rows/s and the
verification time. Everything it created is removed at the end, also on
failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from blogtest.mongo import mongo_wire_server

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SERVER_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
RUN_TIMEOUT_S = 3600


def cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def timed(command: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    seconds = time.monotonic() - started
    if result.returncode:
        sys.stderr.write(result.stdout + result.stderr)
        raise RuntimeError(f"{' '.join(command[1:3])} failed with {result.returncode}")
    return seconds, result.stdout


def figures(output: str) -> tuple[float, float, float]:
    """(copy seconds, rows/s, verification seconds) from the command's summary lines."""
    copy = re.search(r"in ([\d.]+) s \(([\d,]+) rows/s\)", output)
    verify = re.search(r"Verified: .*\(([\d.]+) s\)", output)
    if not copy or not verify:
        raise RuntimeError(f"unexpected output:\n{output}")
    return float(copy[1]), float(copy[2].replace(",", "")), float(verify[1])


def seed_monolith(source: str, posts: int, comments: int) -> None:
    """The monolith's schema and the demo data set in the database at ``source``."""
    env = os.environ | {
        "DATABASE_URL": source,
        "DJANGO_SETTINGS_MODULE": "monolith.config.settings.local",
    }
    timed([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env)
    seed_s, _ = timed(
        [
            *(PY, "manage.py", "seed", "--reset", "--quiet"),
            *("--posts", str(posts), "--comments", str(comments)),
        ],
        cwd=ROOT,
        env=env,
    )
    print(f"  seeded in {seed_s:.1f} s", flush=True)


def import_twice(
    source: str, mongo_url: str, batch_size: int
) -> tuple[tuple[float, str], tuple[float, str]]:
    """(wall seconds, output) of the import into an empty store, then of the
    second run, which must change nothing."""
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "comments_service.settings.local",
        "MONOLITH_DATABASE_URL": source,
        "MONGO_URL": mongo_url,
        "MONGO_DB": "comments",
        "MONGO_TIMEOUT_MS": "60000",
        "MONGO_SERVER_SELECTION_TIMEOUT_MS": "10000",
    }
    command = [PY, "manage.py", "import_monolith_comments", "--quiet"]
    command += ["--batch-size", str(batch_size)]
    service = ROOT / "services" / "comments"

    print("Importing into a fresh SecantusDB ...", flush=True)
    first = timed(command, cwd=service, env=env)
    print("Second run (must change nothing) ...", flush=True)
    second = timed(command, cwd=service, env=env)
    if "0 inserted, 0 changed" not in second[1]:
        raise RuntimeError(f"the second run changed something:\n{second[1]}")
    return first, second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--comments", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()

    name = f"bench_migration_{uuid.uuid4().hex[:8]}"
    source = f"{SERVER_URL}/{name}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-migration-"))
    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        print(f"Machine: {cpu()}; Python {platform.python_version()}", flush=True)
        print(f"Seeding {args.posts:,} posts and {args.comments:,} comments into {name} ...")
        seed_monolith(source, args.posts, args.comments)
        # A fresh MongoDB-wire server on a free port, stopped on the way out.
        with mongo_wire_server(workdir) as mongo_url:
            (wall, output), (wall2, output2) = import_twice(source, mongo_url, args.batch_size)
        copy_s, rate, verify_s = figures(output)
        copy2_s, rate2, verify2_s = figures(output2)

        print()
        print(f"import_monolith_comments, {args.comments:,} comments on {args.posts:,} posts,")
        print(f"PostgreSQL -> SecantusDB, batches of {args.batch_size:,}:")
        print(f"  first run : copy {copy_s:.1f} s ({rate:,.0f} rows/s), ", end="")
        print(f"verification {verify_s:.1f} s, whole command {wall:.1f} s")
        print(f"  second run: copy {copy2_s:.1f} s ({rate2:,.0f} rows/s, no change), ", end="")
        print(f"verification {verify2_s:.1f} s, whole command {wall2:.1f} s")
    finally:
        with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
