"""Reading the monolith's database for the stage-2 data migration, and the
checksums both sides of its verification compute.

Read-only: PostgreSQL (psycopg 3, a session with
``default_transaction_read_only``) or, on the embedded profile, an SQLite file
opened with ``mode=ro``. Rows come out normalised: ids as ``uuid.UUID``,
timestamps as UTC datetimes truncated to milliseconds (what MongoDB keeps).
No pymongo here: the MongoDB side goes through ``comments.repository``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
CHECKSUM_MODULUS = 2**256
UUID_COLUMNS = {"id", "post_id"}


def to_ms(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def epoch_ms(value: datetime) -> int:
    return (value.astimezone(UTC) - EPOCH) // MS


class MonolithSource:
    """A read-only connection to the monolith's database (``MONOLITH_DATABASE_URL``:
    ``postgresql://...`` / ``postgres://...`` or ``sqlite:///path``)."""

    def __init__(self, url: str, *, connect_timeout_s: int = 5):
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///")).resolve()
            if not path.is_file():
                raise FileNotFoundError(f"no SQLite database at {path}")
            self.vendor = "sqlite"
            self._conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
            self._mark = "?"
        elif url.startswith(("postgresql://", "postgres://")):
            import psycopg

            self.vendor = "postgresql"
            self._conn = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=connect_timeout_s,
                options="-c default_transaction_read_only=on",
            )
            self._mark = "%s"
        else:
            raise ValueError("MONOLITH_DATABASE_URL must be postgresql://... or sqlite:///...")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> MonolithSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _fetch(self, sql: str, params: tuple = ()) -> list[tuple]:
        cursor = self._conn.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchall()
        finally:
            cursor.close()

    def count(self, table: str) -> int:
        return self._fetch(f"SELECT count(*) FROM {table}")[0][0]  # noqa: S608 (constant)

    def _param(self, column: str, value):
        """A normalised value as this database stores it (for the keyset)."""
        if self.vendor == "postgresql":
            return value
        if column == "created_at":
            # Django on SQLite: naive UTC text, str(datetime) ("... 12:00:00.123000").
            return str(value.astimezone(UTC).replace(tzinfo=None))
        return value.hex  # Django on SQLite: UUIDs as 32 hex digits

    def _normalise(self, column: str, value):
        if column in UUID_COLUMNS:
            return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
        if column == "created_at":
            if isinstance(value, str):
                value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return to_ms(value)
        return value

    def page(
        self,
        table: str,
        columns: list[str],
        *,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[tuple]:
        """Up to ``limit`` rows in (created_at, id) order, strictly after the
        keyset ``after``. ``columns`` must include created_at and id."""
        mark = self._mark
        where, params = "", ()
        if after is not None:
            created_at, row_id = after
            where = f"WHERE (created_at, id) > ({mark}, {mark})"
            params = (self._param("created_at", created_at), self._param("id", row_id))
        sql = (
            f"SELECT {', '.join(columns)} FROM {table} {where} "  # noqa: S608 (constants)
            f"ORDER BY created_at, id LIMIT {int(limit)}"
        )
        return [
            tuple(self._normalise(c, v) for c, v in zip(columns, row, strict=True))
            for row in self._fetch(sql, params)
        ]

    def stream(self, table: str, columns: list[str], *, batch_size: int) -> Iterator[tuple]:
        """Every row, in keyset pages (bounded memory, short queries)."""
        after = None
        key = (columns.index("created_at"), columns.index("id"))
        while True:
            rows = self.page(table, columns, after=after, limit=batch_size)
            yield from rows
            if len(rows) < batch_size:
                return
            after = (rows[-1][key[0]], rows[-1][key[1]])


def comment_digest(comment_id: uuid.UUID, body: str, created_at: datetime) -> int:
    payload = json.dumps([str(comment_id), body, epoch_ms(created_at)], ensure_ascii=False)
    return int.from_bytes(hashlib.sha256(payload.encode()).digest(), "big")


class PostChecksums:
    """Per post: the number of comments and a multiset hash of them (the sum
    of each comment's sha256 over (id, body, created_at ms), mod 2**256).
    Order-independent, so neither side has to sort, and memory grows with
    the number of posts only."""

    def __init__(self) -> None:
        self.posts: dict[str, list[int]] = {}
        self.total = 0

    def add(self, post_id: uuid.UUID, comment_id: uuid.UUID, body: str, created_at) -> None:
        entry = self.posts.setdefault(str(post_id), [0, 0])
        entry[0] += 1
        entry[1] = (entry[1] + comment_digest(comment_id, body, created_at)) % CHECKSUM_MODULUS
        self.total += 1


def differences(
    source: PostChecksums, target: PostChecksums, *, limit: int = 20
) -> tuple[list[str], int]:
    """Human-readable differences (at most ``limit``), and how many there are."""
    found = []
    if source.total != target.total:
        found.append(f"total: {source.total} comments in the monolith, {target.total} in MongoDB")
    for post_id in sorted(source.posts.keys() | target.posts.keys()):
        mine = source.posts.get(post_id, [0, 0])
        theirs = target.posts.get(post_id, [0, 0])
        if mine[0] != theirs[0]:
            found.append(
                f"post {post_id}: {mine[0]} comments in the monolith, {theirs[0]} in MongoDB"
            )
        elif mine[1] != theirs[1]:
            found.append(
                f"post {post_id}: {mine[0]} comments on both sides but their checksums differ "
                f"(monolith {_short(mine[1])}, MongoDB {_short(theirs[1])})"
            )
    return found[:limit], len(found)


def _short(checksum: int) -> str:
    return f"{checksum:064x}"[:16]
