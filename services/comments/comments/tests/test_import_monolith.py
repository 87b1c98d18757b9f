"""The stage-2 data migration (import_monolith_comments) on real servers: a
throwaway monolith database on PostgreSQL (schema by the monolith's own
migrations, data by its seed command) and the session's MongoDB-wire server."""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from blogtest.monolith import seeded_monolith_database
from comments import repository
from comments.management.commands.import_monolith_comments import CHECKPOINT
from comments.migration_source import PostChecksums, differences
from comments.tests.conftest import TEST_DB

SERVICE_DIR = Path(__file__).resolve().parents[2]
COMMENTS = 500
KILL_DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def monolith_url():
    """A monolith database of its own: 50 posts, 500 comments; dropped afterwards."""
    with seeded_monolith_database(posts=50, comments=COMMENTS) as url:
        yield url


@pytest.fixture
def checkpoints(mongo_collection):
    collection = mongo_collection.database[repository.MIGRATIONS_COLLECTION]
    collection.delete_many({})
    yield collection
    collection.delete_many({})


def run_import(monolith_url: str, *args: str) -> str:
    out = io.StringIO()
    call_command(
        "import_monolith_comments", "--quiet", f"--source={monolith_url}", *args, stdout=out
    )
    return out.getvalue()


def source_rows(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, post_id, body, created_at FROM comments_comment")
        return {str(i): (str(p), b, c) for i, p, b, c in rows}


def test_copies_every_comment_with_its_id_post_and_timestamp(
    monolith_url, mongo_collection, checkpoints
):
    output = run_import(monolith_url)

    expected = source_rows(monolith_url)
    assert len(expected) == COMMENTS
    stored = {
        doc["_id"]: (doc["post_id"], doc["body"], doc["created_at"])
        for doc in mongo_collection.find({})
    }
    assert stored == expected  # ids, post ids, bodies and ms timestamps, exactly
    assert f"{COMMENTS} read, {COMMENTS} inserted, 0 changed" in output
    assert "Verified: 500 comments" in output
    assert checkpoints.find_one({"_id": CHECKPOINT})["status"] == "done"


def test_a_second_run_changes_nothing(monolith_url, mongo_collection, checkpoints):
    run_import(monolith_url)
    before = sorted(mongo_collection.find({}), key=lambda doc: doc["_id"])

    output = run_import(monolith_url)

    assert f"{COMMENTS} read, 0 inserted, 0 changed, {COMMENTS} unchanged" in output
    assert sorted(mongo_collection.find({}), key=lambda doc: doc["_id"]) == before


def test_a_run_killed_half_way_resumes_and_ends_verified(
    monolith_url, mongo_url, mongo_collection, checkpoints
):
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "comments_service.settings.local",
        "MONGO_URL": mongo_url,
        "MONGO_DB": TEST_DB,
        "MONOLITH_DATABASE_URL": monolith_url,
    }
    command = [sys.executable, "manage.py", "import_monolith_comments", "--quiet"]
    process = subprocess.Popen(
        [*command, "--batch-size", "25", "--sleep", "0.2"],
        cwd=SERVICE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + KILL_DEADLINE_S
        while True:
            checkpoint = checkpoints.find_one({"_id": CHECKPOINT}) or {}
            if checkpoint.get("copied", 0) >= 100:
                break
            assert process.poll() is None, "the import ended before it could be killed"
            assert time.monotonic() < deadline, "no progress in the checkpoint"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=10)

    checkpoint = checkpoints.find_one({"_id": CHECKPOINT})
    assert checkpoint["status"] == "running"
    copied_before = mongo_collection.count_documents({})
    assert 100 <= copied_before < COMMENTS

    output = run_import(monolith_url)

    assert "Verified: 500 comments" in output
    assert mongo_collection.count_documents({}) == COMMENTS
    # It went on from the checkpoint: only what was missing got inserted.
    assert f"{COMMENTS - copied_before} inserted, 0 changed" in output
    assert checkpoints.find_one({"_id": CHECKPOINT})["status"] == "done"


def test_a_changed_body_fails_the_verification_naming_the_post(
    monolith_url, mongo_collection, checkpoints
):
    run_import(monolith_url)
    victim = mongo_collection.find_one({})
    mongo_collection.update_one({"_id": victim["_id"]}, {"$set": {"body": "tampered"}})

    with pytest.raises(CommandError, match=f"post {victim['post_id']}: .*checksums differ"):
        run_import(monolith_url, "--verify-only")

    # A normal run repairs it (the upsert changes exactly that document).
    assert "1 changed" in run_import(monolith_url)


def test_a_missing_comment_fails_with_a_non_zero_exit_naming_the_post(
    monolith_url, mongo_url, mongo_collection, checkpoints
):
    run_import(monolith_url)
    victim = mongo_collection.find_one({})
    mongo_collection.delete_one({"_id": victim["_id"]})
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "comments_service.settings.local",
        "MONGO_URL": mongo_url,
        "MONGO_DB": TEST_DB,
        "MONOLITH_DATABASE_URL": monolith_url,
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "import_monolith_comments", "--quiet", "--verify-only"],
        cwd=SERVICE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "Verification FAILED" in result.stderr
    assert "total: 500 comments in the monolith, 499 in MongoDB" in result.stderr
    assert f"post {victim['post_id']}: " in result.stderr


def test_bulk_upsert_inserts_the_new_changes_the_different_and_leaves_the_equal(
    mongo_collection,
):
    now = datetime(2026, 1, 2, 3, 4, 5, 678_999, tzinfo=UTC)
    records = [
        repository.CommentRecord(
            id=uuid.uuid4(), post_id=uuid.uuid4(), body=f"b{n}", created_at=now
        )
        for n in range(4)
    ]
    assert repository.comments_bulk_upsert(records[:2]) == (2, 0)
    records[1] = replace(records[1], body="edited")

    assert repository.comments_bulk_upsert(records) == (2, 1)
    assert repository.comments_bulk_upsert(records) == (0, 0)
    stored = mongo_collection.find_one({"_id": str(records[1].id)})
    assert stored["body"] == "edited"
    assert stored["created_at"] == now.replace(microsecond=678_000)  # milliseconds kept


# The verification's two halves on their own: what the command compares once
# both sides are read (no database needed).

T0 = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)


def checksums(comments) -> PostChecksums:
    """PostChecksums of (post_id, comment_id, body, created_at) rows, as either side adds them."""
    checks = PostChecksums()
    for post_id, comment_id, body, created_at in comments:
        checks.add(post_id, comment_id, body, created_at)
    return checks


def test_checksums_count_comments_per_post_and_in_total():
    a, b = uuid.uuid4(), uuid.uuid4()

    checks = checksums(
        [(a, uuid.uuid4(), "x", T0), (a, uuid.uuid4(), "y", T0), (b, uuid.uuid4(), "z", T0)]
    )

    assert checks.total == 3
    assert {post: entry[0] for post, entry in checks.posts.items()} == {str(a): 2, str(b): 1}


def test_checksums_do_not_depend_on_the_order_of_the_comments():
    """The monolith is read in (created_at, id) order, MongoDB in no particular order."""
    posts = [uuid.uuid4(), uuid.uuid4()]
    comments = [
        (posts[n % 2], uuid.uuid4(), f"comment {n}", T0 + timedelta(seconds=n)) for n in range(8)
    ]
    forward = checksums(comments)

    for other in (reversed(comments), random.Random(7).sample(comments, len(comments))):
        again = checksums(other)
        assert again.posts == forward.posts
        assert differences(forward, again) == ([], 0)


def test_the_same_count_with_other_content_is_a_checksum_difference():
    post = uuid.uuid4()
    first = (post, uuid.uuid4(), "first", T0)
    second = (post, uuid.uuid4(), "second", T0 + timedelta(seconds=1))
    source = checksums([first, second])

    for changed in (
        (post, first[1], "First", T0),  # the body
        (post, first[1], "first", T0 + timedelta(milliseconds=1)),  # the timestamp
        (post, uuid.uuid4(), "first", T0),  # the id
    ):
        shown, count = differences(source, checksums([changed, second]))

        assert count == 1, changed
        assert shown[0].startswith(
            f"post {post}: 2 comments on both sides but their checksums differ"
        ), shown


def test_what_mongodb_cannot_keep_of_a_timestamp_is_no_difference():
    """MongoDB keeps milliseconds, and an instant is the same in every time zone."""
    post, comment = uuid.uuid4(), uuid.uuid4()
    source = checksums([(post, comment, "body", T0 + timedelta(microseconds=456))])
    target = checksums([(post, comment, "body", T0.astimezone(timezone(timedelta(hours=2))))])

    assert differences(source, target) == ([], 0)


def test_a_comment_on_another_post_is_a_difference_on_both_posts():
    a, b = uuid.uuid4(), uuid.uuid4()
    kept, moved = (uuid.uuid4(), "kept", T0), (uuid.uuid4(), "moved", T0)

    shown, count = differences(
        checksums([(a, *kept), (a, *moved)]), checksums([(a, *kept), (b, *moved)])
    )

    assert count == 2  # the totals agree: no line for them
    assert sorted(shown) == sorted(
        [
            f"post {a}: 2 comments in the monolith, 1 in MongoDB",
            f"post {b}: 0 comments in the monolith, 1 in MongoDB",
        ]
    )


def test_differences_are_capped_but_all_counted():
    source = checksums([(uuid.uuid4(), uuid.uuid4(), "x", T0) for _ in range(25)])
    target = PostChecksums()

    shown, count = differences(source, target)

    assert count == 26  # the total, and each of the 25 posts
    assert len(shown) == 20
    assert shown[0] == "total: 25 comments in the monolith, 0 in MongoDB"
    assert differences(source, target, limit=3) == (shown[:3], 26)
