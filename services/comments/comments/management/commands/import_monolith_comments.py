"""Stage 1 -> 2 data migration: the monolith's comments into MongoDB.

    MONOLITH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/blog_monolith \\
    MONGO_URL=mongodb://127.0.0.1:27017 python manage.py import_monolith_comments

- Reads ``comments_comment`` READ-ONLY, in keyset pages over (created_at, id).
- Writes each page with upserts keyed by ``_id`` (the monolith's id), keeping
  ``post_id``, ``body`` and the millisecond ``created_at``: a second run
  inserts and changes nothing.
- After each page, a checkpoint in the ``migrations`` collection records the
  last (created_at, id) written. A run that is killed resumes from there; what
  it re-does is harmless (upserts). A completed run marks the checkpoint done,
  and the next run starts over from the beginning (and reports 0/0).
- Ends with a verification: total counts, and per post the number of comments
  and a checksum over (id, body, created_at ms) computed on both sides. Any
  difference is a CommandError (exit status 1) naming the posts.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from uuid import UUID

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from blogweb.exceptions import DependencyUnavailable
from comments import repository
from comments.migration_source import MonolithSource, PostChecksums, differences

CHECKPOINT = "import_monolith_comments"
TABLE = "comments_comment"
COLUMNS = ["id", "post_id", "body", "created_at"]


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Copy the monolith's comments into MongoDB (idempotent, resumable), "
        "then verify counts and per-post checksums."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--source",
            default=os.environ.get("MONOLITH_DATABASE_URL", ""),
            help="the monolith's database (default: $MONOLITH_DATABASE_URL)",
        )
        parser.add_argument("--batch-size", type=_positive_int, default=1000)
        parser.add_argument("--verify-only", action="store_true", help="copy nothing, only verify")
        parser.add_argument(
            "--restart", action="store_true", help="ignore a saved checkpoint, start over"
        )
        parser.add_argument(
            "--sleep",
            type=float,
            default=0.0,
            help="seconds to pause between batches (throttle against a live monolith)",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args, **options) -> None:
        url = options["source"]
        if not url:
            raise CommandError("set MONOLITH_DATABASE_URL (or --source) to the monolith's database")
        quiet = options["quiet"] or options["verbosity"] == 0
        try:
            source = MonolithSource(url)
        except Exception as exc:
            raise CommandError(f"cannot open the monolith's database: {exc}") from exc
        with source:
            try:
                if not options["verify_only"]:
                    self._copy(source, options, quiet)
                self._verify(source, options["batch_size"], quiet)
            except DependencyUnavailable as exc:
                raise CommandError(
                    f"MongoDB is not reachable at {settings.MONGO_URL} (run it, or set MONGO_URL); "
                    "what was copied so far is kept, run again to resume"
                ) from exc

    def _copy(self, source: MonolithSource, options: dict, quiet: bool) -> None:
        batch_size = options["batch_size"]
        started = time.monotonic()
        total = source.count(TABLE)
        checkpoint = None if options["restart"] else repository.migration_checkpoint_get(CHECKPOINT)
        if checkpoint and checkpoint.get("status") == "running" and checkpoint.get("after_id"):
            after = (checkpoint["after_created_at"], UUID(checkpoint["after_id"]))
            done = checkpoint.get("copied", 0)
            self.stderr.write(
                f"Resuming after {after[1]} ({after[0].isoformat()}), "
                f"{done:,} comments copied before."
            )
        else:
            after, done = None, 0
        repository.migration_checkpoint_set(
            CHECKPOINT,
            {"status": "running", "started_at": datetime.now(UTC), "copied": done}
            | ({} if after else {"after_created_at": None, "after_id": None}),
        )
        read = inserted = changed = 0
        with tqdm(
            total=total,
            initial=min(done, total),
            unit="comment",
            desc="comments -> MongoDB",
            file=sys.stderr,
            disable=quiet,
            mininterval=0.5 if sys.stderr.isatty() else 5.0,
        ) as bar:
            while True:
                rows = source.page(TABLE, COLUMNS, after=after, limit=batch_size)
                if not rows:
                    break
                records = [
                    repository.CommentRecord(id=i, post_id=p, body=b, created_at=c)
                    for i, p, b, c in rows
                ]
                new, different = repository.comments_bulk_upsert(records)
                read += len(rows)
                inserted += new
                changed += different
                after = (rows[-1][3], rows[-1][0])
                repository.migration_checkpoint_set(
                    CHECKPOINT,
                    {
                        "after_created_at": after[0],
                        "after_id": str(after[1]),
                        "copied": done + read,
                        "updated_at": datetime.now(UTC),
                    },
                )
                bar.update(len(rows))
                if len(rows) < batch_size:
                    break
                if options["sleep"]:
                    time.sleep(options["sleep"])
        seconds = time.monotonic() - started
        repository.migration_checkpoint_set(
            CHECKPOINT,
            {"status": "done", "finished_at": datetime.now(UTC), "copied": done + read},
        )
        rate = read / seconds if seconds else 0.0
        self.stdout.write(
            f"Copied comments: {read:,} read, {inserted:,} inserted, {changed:,} changed, "
            f"{read - inserted - changed:,} unchanged in {seconds:.1f} s ({rate:,.0f} rows/s)."
        )

    def _verify(self, source: MonolithSource, batch_size: int, quiet: bool) -> None:
        started = time.monotonic()
        mine, theirs = PostChecksums(), PostChecksums()
        with tqdm(
            total=source.count(TABLE) * 2,
            unit="comment",
            desc="verifying",
            file=sys.stderr,
            disable=quiet,
            mininterval=0.5 if sys.stderr.isatty() else 5.0,
        ) as bar:
            for comment_id, post_id, body, created_at in source.stream(
                TABLE, COLUMNS, batch_size=max(batch_size, 5000)
            ):
                mine.add(post_id, comment_id, body, created_at)
                bar.update()
            for record in repository.comments_iter_all():
                theirs.add(record.post_id, record.id, record.body, record.created_at)
                bar.update()
        seconds = time.monotonic() - started
        shown, count = differences(mine, theirs)
        if count:
            more = f"\n  ... and {count - len(shown)} more" if count > len(shown) else ""
            raise CommandError(
                f"Verification FAILED: {count} difference(s) between the monolith and MongoDB:\n  "
                + "\n  ".join(shown)
                + more
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Verified: {mine.total:,} comments on {len(mine.posts):,} posts, counts and "
                f"per-post checksums equal ({seconds:.1f} s)."
            )
        )
