"""`make migrate-stage N`: run the data migration that leads into stage N.

    python scripts/migrate_stage.py 2                  # the data migration into stage 2
    python scripts/migrate_stage.py 2 --verify-only    # extra arguments go to the command

Which app's data moves into which stage, and with which command of that
app, is in the stage table (``stages/table.py``, ``Stage.data_migration``).
Each command is idempotent and resumable: run it again after a failure or a
kill; the run ends with the verification (exit status 1 on any difference).

The source is MONOLITH_DATABASE_URL, read only; else DATABASE_URL (the
monolith's own setting); else the embedded profile's
sqlite:///.data/monolith.sqlite3 (DATA_DIR=.data). Each target's variables
are in its function below."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stages import table  # noqa: E402 - the repository's root is on the path now

PY = sys.executable
DATA_DIR = Path(os.environ.get("DATA_DIR", ROOT / ".data")).resolve()


def masked(url: str) -> str:
    """A URL fit to print: the password replaced by ***."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def source_url() -> str:
    return (
        os.environ.get("MONOLITH_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
        or f"sqlite:///{DATA_DIR / 'monolith.sqlite3'}"
    )


def run(step: str, command: list[str], cwd: Path, env: dict[str, str]) -> None:
    print(f"==> {step}\n    (cd {cwd.relative_to(ROOT)} && {' '.join(command)})", flush=True)
    result = subprocess.run(command, cwd=cwd, env=env, check=False)
    if result.returncode:
        print(f"==> FAILED: {step} (exit status {result.returncode})", file=sys.stderr)
        sys.exit(result.returncode)


def into_comments(command: str, extra: list[str]) -> None:
    """Stage 2: the monolith's comments into the comments service's MongoDB,
    MONGO_URL and MONGO_DB (default: `make up`'s MongoDB-wire server,
    mongodb://127.0.0.1:$MONGO_PORT with MONGO_PORT 27017, and comments);
    MONGO_TIMEOUT_MS (30000 here) bounds each batch's write."""
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "comments_service.settings.local",
        "MONOLITH_DATABASE_URL": source_url(),
        "MONGO_URL": os.environ.get("MONGO_URL")
        or f"mongodb://127.0.0.1:{os.environ.get('MONGO_PORT', '27017')}",
        "MONGO_DB": os.environ.get("MONGO_DB", "comments"),
        "MONGO_TIMEOUT_MS": os.environ.get("MONGO_TIMEOUT_MS", "30000"),
        "MONGO_SERVER_SELECTION_TIMEOUT_MS": os.environ.get(
            "MONGO_SERVER_SELECTION_TIMEOUT_MS", "5000"
        ),
    }
    print(
        "Data migration into stage 2: the monolith's comments -> MongoDB\n"
        f"    from {masked(env['MONOLITH_DATABASE_URL'])} (read only)\n"
        f"    into {masked(env['MONGO_URL'])} database {env['MONGO_DB']}, collection comments"
    )
    run(
        "copy and verify the comments",
        [PY, "manage.py", command, *extra],
        ROOT / "services" / "comments",
        env,
    )


# >>> stage 4: the posts move too
def into_posts(command: str, extra: list[str]) -> None:
    """Stage 4: the monolith's posts into the posts service's own database,
    POSTS_DATABASE_URL (sqlite:///.data/posts.sqlite3), given to the posts
    service as its DATABASE_URL."""
    target = os.environ.get("POSTS_DATABASE_URL") or f"sqlite:///{DATA_DIR / 'posts.sqlite3'}"
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "posts_service.settings.local",
        "MONOLITH_DATABASE_URL": source_url(),
        "DATABASE_URL": target,
    }
    print(
        "Data migration into stage 4: the monolith's posts -> the posts service's database\n"
        f"    from {masked(env['MONOLITH_DATABASE_URL'])} (read only)\n"
        f"    into {masked(target)}"
    )
    if target == env["MONOLITH_DATABASE_URL"]:
        sys.exit("POSTS_DATABASE_URL is the monolith's database: the posts need their own")
    posts_dir = ROOT / "services" / "posts"
    if "--verify-only" not in extra:
        run("the posts service's schema", [PY, "manage.py", "migrate", "--noinput"], posts_dir, env)
    run(
        "copy and verify the posts",
        [PY, "manage.py", command, *extra],
        posts_dir,
        env,
    )
    # <<< stage 4


MIGRATIONS = {
    "comments": into_comments,
    "posts": into_posts,  # [stage 4]
}


def main(argv: list[str]) -> None:
    if not argv or not argv[0].isdigit():
        sys.exit(__doc__)
    number, extra = int(argv[0]), argv[1:]
    if number not in table.STAGES:
        sys.exit(f"unknown stage {number}: the stages are {sorted(table.STAGES)}")
    moved = table.STAGES[number].data_migration
    if moved is None:
        print(f"No data migration leads into stage {number}: no data changes owner there.")
        return
    app, command = moved
    MIGRATIONS[app](command, extra)


if __name__ == "__main__":
    main(sys.argv[1:])
