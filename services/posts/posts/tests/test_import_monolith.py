"""The stage-4 data migration (import_monolith_posts) on real PostgreSQL: a
throwaway monolith database (schema by the monolith's own migrations, data by
its seed command) copied into this service's test database."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from blogtest.monolith import seeded_monolith_database
from posts.management.commands.import_monolith_posts import CHECKPOINT_TABLE
from posts.models import Post, PostTotal

pytestmark = pytest.mark.django_db(transaction=True)

SERVICE_DIR = Path(__file__).resolve().parents[2]
POSTS = 50
KILL_DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def monolith_url():
    """A monolith database of its own: 50 posts, 500 comments; dropped afterwards."""
    with seeded_monolith_database(posts=POSTS, comments=500) as url:
        yield url


@pytest.fixture(autouse=True)
def _no_checkpoint():
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {CHECKPOINT_TABLE}")
    yield
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {CHECKPOINT_TABLE}")


def target_url() -> str:
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgresql://{user}{password}@{host}:{port}/{db['NAME']}"


def run_import(monolith_url: str, *args: str) -> str:
    out = io.StringIO()
    call_command("import_monolith_posts", "--quiet", f"--source={monolith_url}", *args, stdout=out)
    return out.getvalue()


def source_rows(url: str) -> dict[uuid.UUID, tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, title, body, created_at FROM posts_post")
        return {i: (t, b, c) for i, t, b, c in rows}


def kept_total() -> int:
    return PostTotal.objects.get(id=PostTotal.SINGLETON_ID).posts


def test_copies_every_post_with_its_id_and_timestamp_and_keeps_the_total(monolith_url):
    output = run_import(monolith_url)

    expected = source_rows(monolith_url)
    assert len(expected) == POSTS
    stored = {p.id: (p.title, p.body, p.created_at) for p in Post.objects.all()}
    assert stored == expected
    assert kept_total() == POSTS
    assert f"{POSTS} read, {POSTS} inserted, 0 changed" in output
    assert f"Verified: {POSTS} posts" in output


def test_a_second_run_changes_nothing(monolith_url):
    run_import(monolith_url)
    before = list(Post.objects.order_by("id").values_list("id", "title", "body", "created_at"))

    output = run_import(monolith_url)

    assert f"{POSTS} read, 0 inserted, 0 changed, {POSTS} unchanged" in output
    after = list(Post.objects.order_by("id").values_list("id", "title", "body", "created_at"))
    assert after == before
    assert kept_total() == POSTS


def test_a_run_killed_half_way_resumes_and_ends_verified(monolith_url):
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "posts_service.settings.local",
        "DATABASE_URL": target_url(),
        "MONOLITH_DATABASE_URL": monolith_url,
    }
    process = subprocess.Popen(
        [
            *(sys.executable, "manage.py", "import_monolith_posts", "--quiet"),
            *("--batch-size", "5", "--sleep", "0.2"),
        ],
        cwd=SERVICE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + KILL_DEADLINE_S
        while Post.objects.count() < 15:
            assert process.poll() is None, "the import ended before it could be killed"
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=10)

    copied_before = Post.objects.count()
    assert 15 <= copied_before < POSTS
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT status, copied FROM {CHECKPOINT_TABLE}")  # noqa: S608
        status, copied = cursor.fetchone()
    # The checkpoint is committed with each batch: it matches what is there.
    assert (status, copied) == ("running", copied_before)

    output = run_import(monolith_url)

    assert f"{POSTS - copied_before} read, {POSTS - copied_before} inserted" in output
    assert f"Verified: {POSTS} posts" in output
    assert Post.objects.count() == kept_total() == POSTS


def test_a_changed_title_fails_the_verification_naming_the_post(monolith_url):
    run_import(monolith_url)
    victim = Post.objects.order_by("id").first()
    Post.objects.filter(id=victim.id).update(title="tampered")

    with pytest.raises(CommandError, match=f"post {victim.id}: differs"):
        run_import(monolith_url, "--verify-only")

    assert "1 changed" in run_import(monolith_url)


def test_a_missing_post_fails_the_verification_naming_it(monolith_url):
    run_import(monolith_url)
    victim = Post.objects.order_by("id").first().id
    Post.objects.filter(id=victim).delete()
    assert kept_total() == POSTS - 1

    with pytest.raises(CommandError, match=f"post {victim}: in the monolith, missing"):
        run_import(monolith_url, "--verify-only")
