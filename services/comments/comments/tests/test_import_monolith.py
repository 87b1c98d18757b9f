"""The stage-2 data migration (import_monolith_comments) on real servers: a
throwaway monolith database on PostgreSQL (schema by the monolith's own
migrations, data by its seed command) and the session's MongoDB-wire server."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from blogtest.monolith import seeded_monolith_database
from comments import repository
from comments.management.commands.import_monolith_comments import CHECKPOINT
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
