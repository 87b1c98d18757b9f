"""Stage 3 -> 4 data migration: the monolith's posts into this service's database.

    MONOLITH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/blog_monolith \\
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/blog_posts \\
    python manage.py import_monolith_posts

- Reads ``posts_post`` READ-ONLY (psycopg 3 with a read-only session, or an
  SQLite file opened ``mode=ro``), in keyset pages over (created_at, id).
- Writes each page in one transaction: new ids inserted, rows that differ
  updated, equal rows untouched, so a second run changes nothing. Ids and
  millisecond timestamps are kept. The post total (``posts_posttotal``) is
  kept by the database triggers on the inserts.
- The same transaction saves a checkpoint (the last (created_at, id) written)
  in ``monolith_import_checkpoint``; a killed run resumes from there. A
  completed run marks it done and the next run starts from the beginning.
- Ends with a verification: counts, a checksum per post over (id, title,
  body, created_at ms) on both sides, and the kept total equal to the real
  count. Any difference is a CommandError (exit status 1) naming the posts.

Self-contained on purpose (the services import nothing from each other): the
small source reader here mirrors the comments service's one.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from tqdm import tqdm

from posts.models import Post, PostTotal

NAME = "import_monolith_posts"
TABLE = "posts_post"
COLUMNS = ["id", "title", "body", "created_at"]
CHECKPOINT_TABLE = "monolith_import_checkpoint"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def to_ms(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def post_digest(post_id: uuid.UUID, title: str, body: str, created_at: datetime) -> str:
    ms = (created_at.astimezone(UTC) - EPOCH) // MS
    payload = json.dumps([str(post_id), title, body, ms], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class MonolithSource:
    """Read-only access to the monolith's database: postgresql://... or sqlite:///path."""

    def __init__(self, url: str):
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///")).resolve()
            if not path.is_file():
                raise FileNotFoundError(f"no SQLite database at {path}")
            self.vendor, self._mark = "sqlite", "?"
            self._conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        elif url.startswith(("postgresql://", "postgres://")):
            import psycopg

            self.vendor, self._mark = "postgresql", "%s"
            self._conn = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=5,
                options="-c default_transaction_read_only=on",
            )
        else:
            raise ValueError("MONOLITH_DATABASE_URL must be postgresql://... or sqlite:///...")

    def close(self) -> None:
        self._conn.close()

    def _fetch(self, sql: str, params: tuple = ()) -> list[tuple]:
        cursor = self._conn.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchall()
        finally:
            cursor.close()

    def count(self) -> int:
        return self._fetch(f"SELECT count(*) FROM {TABLE}")[0][0]  # noqa: S608 (constant)

    def page(self, *, after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[tuple]:
        """(id, title, body, created_at) rows in (created_at, id) order after ``after``."""
        where, params = "", ()
        if after is not None:
            created_at, post_id = after
            if self.vendor == "sqlite":  # Django on SQLite: naive UTC text, 32 hex digits
                params = (str(created_at.astimezone(UTC).replace(tzinfo=None)), post_id.hex)
            else:
                params = (created_at, post_id)
            where = f"WHERE (created_at, id) > ({self._mark}, {self._mark})"
        sql = (
            f"SELECT {', '.join(COLUMNS)} FROM {TABLE} {where} "  # noqa: S608 (constants)
            f"ORDER BY created_at, id LIMIT {int(limit)}"
        )
        rows = []
        for post_id, title, body, created_at in self._fetch(sql, params):
            if isinstance(created_at, str):
                created_at = datetime.fromisoformat(created_at)
            if created_at.tzinfo is None:
                created_at = created_at.replace(tzinfo=UTC)
            if not isinstance(post_id, uuid.UUID):
                post_id = uuid.UUID(str(post_id))
            rows.append((post_id, title, body, to_ms(created_at)))
        return rows

    def stream(self, *, batch_size: int) -> Iterator[tuple]:
        after = None
        while True:
            rows = self.page(after=after, limit=batch_size)
            yield from rows
            if len(rows) < batch_size:
                return
            after = (rows[-1][3], rows[-1][0])


# The checkpoint lives in the target database, written in the same
# transaction as each batch. Created on demand (portable SQL: PostgreSQL and
# SQLite), it is the migration's bookkeeping, not part of the service's model.
CREATE_CHECKPOINT = f"""CREATE TABLE IF NOT EXISTS {CHECKPOINT_TABLE} (
    name varchar(100) PRIMARY KEY,
    status varchar(16) NOT NULL,
    after_created_at varchar(40),
    after_id varchar(36),
    copied bigint NOT NULL DEFAULT 0
)"""
SAVE_CHECKPOINT = f"""INSERT INTO {CHECKPOINT_TABLE}
    (name, status, after_created_at, after_id, copied) VALUES (%s, %s, %s, %s, %s)
    ON CONFLICT (name) DO UPDATE SET status = EXCLUDED.status,
    after_created_at = EXCLUDED.after_created_at, after_id = EXCLUDED.after_id,
    copied = EXCLUDED.copied"""  # noqa: S608 (constant)


def load_checkpoint() -> dict | None:
    with connection.cursor() as cursor:
        cursor.execute(CREATE_CHECKPOINT)
        cursor.execute(
            f"SELECT status, after_created_at, after_id, copied FROM {CHECKPOINT_TABLE} "  # noqa: S608
            "WHERE name = %s",
            [NAME],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    status, created_at, post_id, copied = row
    return {
        "status": status,
        "after": (datetime.fromisoformat(created_at), uuid.UUID(post_id)) if post_id else None,
        "copied": copied,
    }


def save_checkpoint(status: str, after: tuple[datetime, uuid.UUID] | None, copied: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            SAVE_CHECKPOINT,
            [
                NAME,
                status,
                after[0].isoformat() if after else None,
                str(after[1]) if after else None,
                copied,
            ],
        )


def write_batch(rows: list[tuple]) -> tuple[int, int]:
    """Inserts the new posts, updates those that differ; (inserted, changed)."""
    existing = Post.objects.in_bulk([row[0] for row in rows])
    new, changed = [], []
    for post_id, title, body, created_at in rows:
        post = existing.get(post_id)
        if post is None:
            new.append(Post(id=post_id, title=title, body=body, created_at=created_at))
        elif (post.title, post.body, post.created_at) != (title, body, created_at):
            post.title, post.body, post.created_at = title, body, created_at
            changed.append(post)
    if new:
        Post.objects.bulk_create(new)
    if changed:
        Post.objects.bulk_update(changed, ["title", "body", "created_at"])
    return len(new), len(changed)


class Command(BaseCommand):
    help = (
        "Copy the monolith's posts into this service's database (idempotent, "
        "resumable), then verify counts, per-post checksums and the kept total."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--source",
            default=os.environ.get("MONOLITH_DATABASE_URL", ""),
            help="the monolith's database (default: $MONOLITH_DATABASE_URL)",
        )
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--verify-only", action="store_true", help="copy nothing, verify")
        parser.add_argument("--restart", action="store_true", help="ignore a saved checkpoint")
        parser.add_argument(
            "--sleep", type=float, default=0.0, help="seconds to pause between batches"
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args, **options) -> None:
        if not options["source"]:
            raise CommandError("set MONOLITH_DATABASE_URL (or --source) to the monolith's database")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be >= 1")
        quiet = options["quiet"] or options["verbosity"] == 0
        try:
            source = MonolithSource(options["source"])
        except Exception as exc:
            raise CommandError(f"cannot open the monolith's database: {exc}") from exc
        try:
            if not options["verify_only"]:
                self._copy(source, options, quiet)
            self._verify(source, options["batch_size"], quiet)
        finally:
            source.close()

    def _bar(self, total: int, desc: str, quiet: bool, initial: int = 0) -> tqdm:
        return tqdm(
            total=total,
            initial=initial,
            unit="post",
            desc=desc,
            file=sys.stderr,
            disable=quiet,
            mininterval=0.5 if sys.stderr.isatty() else 5.0,
        )

    def _copy(self, source: MonolithSource, options: dict, quiet: bool) -> None:
        batch_size = options["batch_size"]
        started = time.monotonic()
        total = source.count()
        checkpoint = load_checkpoint()
        after, done = None, 0
        if checkpoint and checkpoint["status"] == "running" and not options["restart"]:
            after, done = checkpoint["after"], checkpoint["copied"]
            if after:
                self.stderr.write(
                    f"Resuming after {after[1]} ({after[0].isoformat()}), "
                    f"{done:,} posts copied before."
                )
        with transaction.atomic():
            save_checkpoint("running", after, done)
        read = inserted = changed = 0
        with self._bar(total, "posts -> posts database", quiet, min(done, total)) as bar:
            while True:
                rows = source.page(after=after, limit=batch_size)
                if not rows:
                    break
                after = (rows[-1][3], rows[-1][0])
                with transaction.atomic():
                    new, different = write_batch(rows)
                    save_checkpoint("running", after, done + read + len(rows))
                read += len(rows)
                inserted += new
                changed += different
                bar.update(len(rows))
                if len(rows) < batch_size:
                    break
                if options["sleep"]:
                    time.sleep(options["sleep"])
        with transaction.atomic():
            save_checkpoint("done", after, done + read)
        seconds = time.monotonic() - started
        rate = read / seconds if seconds else 0.0
        self.stdout.write(
            f"Copied posts: {read:,} read, {inserted:,} inserted, {changed:,} changed, "
            f"{read - inserted - changed:,} unchanged in {seconds:.1f} s ({rate:,.0f} rows/s)."
        )

    def _verify(self, source: MonolithSource, batch_size: int, quiet: bool) -> None:
        started = time.monotonic()
        mine: dict[str, str] = {}
        theirs: dict[str, str] = {}
        with self._bar(source.count() * 2, "verifying", quiet) as bar:
            for row in source.stream(batch_size=max(batch_size, 5000)):
                mine[str(row[0])] = post_digest(*row)
                bar.update()
            target = Post.objects.values_list(*COLUMNS).iterator(chunk_size=5000)
            for post_id, title, body, created_at in target:
                theirs[str(post_id)] = post_digest(post_id, title, body, created_at)
                bar.update()
        found = []
        if len(mine) != len(theirs):
            found.append(f"total: {len(mine)} posts in the monolith, {len(theirs)} in the target")
        kept = PostTotal.objects.filter(id=PostTotal.SINGLETON_ID).first()
        kept_total = kept.posts if kept else 0
        if kept_total != len(theirs):
            found.append(f"posts_posttotal says {kept_total} posts, the target has {len(theirs)}")
        for post_id in sorted(mine.keys() | theirs.keys()):
            if post_id not in theirs:
                found.append(f"post {post_id}: in the monolith, missing in the target")
            elif post_id not in mine:
                found.append(f"post {post_id}: in the target, not in the monolith")
            elif mine[post_id] != theirs[post_id]:
                found.append(
                    f"post {post_id}: differs (checksum over id, title, body, created_at: "
                    f"monolith {mine[post_id][:16]}, target {theirs[post_id][:16]})"
                )
        seconds = time.monotonic() - started
        if found:
            shown = found[:20]
            more = f"\n  ... and {len(found) - 20} more" if len(found) > 20 else ""
            raise CommandError(
                f"Verification FAILED: {len(found)} difference(s) between the monolith and "
                "the posts database:\n  " + "\n  ".join(shown) + more
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Verified: {len(mine):,} posts, counts, per-post checksums and the kept "
                f"total ({kept_total:,}) equal ({seconds:.1f} s)."
            )
        )
