"""`make migrate-stage N`: run the data migration that leads into stage N.

    python scripts/migrate_stage.py 2                  # monolith comments -> MongoDB
    python scripts/migrate_stage.py 4                  # monolith posts -> the posts database
    python scripts/migrate_stage.py 2 --verify-only    # extra arguments go to the command

Stage 2 runs the comments service's ``import_monolith_comments``, stage 4 the
posts service's ``import_monolith_posts`` (after the posts service's schema
migrations). Both are idempotent and resumable: run again after a failure or
a kill, and the run ends with the verification (exit status 1 on any
difference). Stages 0, 1 and 3 have no data migration.

Environment (defaults are the embedded profile, everything under DATA_DIR=.data):

    MONOLITH_DATABASE_URL  the source, read only; else DATABASE_URL (the
                           monolith's own setting); else sqlite:///.data/monolith.sqlite3
    MONGO_URL, MONGO_DB    stage 2 target (mongodb://127.0.0.1:27017, comments);
                           MONGO_TIMEOUT_MS (30000 here) bounds each batch's write
    POSTS_DATABASE_URL     stage 4 target, given to the posts service as its
                           DATABASE_URL (sqlite:///.data/posts.sqlite3)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DATA_DIR = Path(os.environ.get("DATA_DIR", ROOT / ".data")).resolve()
NO_MIGRATION = {
    0: "stage 0 is the monolith itself: there is nothing to migrate into it.",
    1: "stage 1 only puts the gateway in front of the monolith: no data moves.",
    3: "stage 3 switches to events on the data of stage 2: no data moves "
    "(run 'migrate-stage 2' first if you skipped it).",
}


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


def into_stage_2(extra: list[str]) -> None:
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "comments_service.settings.local",
        "MONOLITH_DATABASE_URL": source_url(),
        "MONGO_URL": os.environ.get("MONGO_URL", "mongodb://127.0.0.1:27017"),
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
        [PY, "manage.py", "import_monolith_comments", *extra],
        ROOT / "services" / "comments",
        env,
    )


def into_stage_4(extra: list[str]) -> None:
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
        [PY, "manage.py", "import_monolith_posts", *extra],
        posts_dir,
        env,
    )


def main(argv: list[str]) -> None:
    if not argv or not argv[0].isdigit():
        sys.exit(__doc__)
    stage, extra = int(argv[0]), argv[1:]
    if stage in NO_MIGRATION:
        print(f"No data migration leads into stage {stage}: {NO_MIGRATION[stage]}")
    elif stage == 2:
        into_stage_2(extra)
    elif stage == 4:
        into_stage_4(extra)
    else:
        sys.exit(f"unknown stage {stage}: the stages are 0 to 4")


if __name__ == "__main__":
    main(sys.argv[1:])
