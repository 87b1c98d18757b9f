"""A monolith database of a test's own, seeded with the demo data set: the
source of the data migrations' tests (the services copy from it). The
monolith's own `manage.py` migrates and seeds it, as a real move starts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .postgres import fresh_database

REPO_ROOT = Path(__file__).resolve().parents[2]


def monolith_manage(url: str, *args: str) -> None:
    """``manage.py ARGS`` of the monolith on the database at ``url``."""
    env = os.environ | {
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "monolith.config.settings.local",
    }
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT, env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip


@contextmanager
def seeded_monolith_database(*, posts: int, comments: int) -> Iterator[str]:
    """A migrated monolith database with ``posts`` posts and ``comments``
    comments of demo data; dropped afterwards. Yields its URL."""
    with fresh_database("monolith_import_test") as url:
        monolith_manage(url, "migrate", "--noinput", "-v0")
        monolith_manage(url, "seed", "--posts", str(posts), "--comments", str(comments), "--reset")
        yield url
