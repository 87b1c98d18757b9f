"""Every MongoDB access of the comments service; the only module that
imports pymongo.

Collection ``comments``: ``{_id: <uuid str>, post_id: <uuid str>, body: str,
created_at: <UTC datetime, ms precision>}``. Ids reach a query only as
canonical UUID strings made here from ``uuid.UUID`` values, and bodies only as
``str``, so nothing a client sends (``{"$gt": ""}``, a malformed id) can turn
into a query operator. Every driver error that means "the server cannot be
reached" leaves as ``DependencyUnavailable("mongodb")`` after at most about
MONGO_TIMEOUT_MS.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import pymongo
from django.conf import settings
from pymongo.collection import Collection
from pymongo.errors import ConnectionFailure

from blogweb.exceptions import DependencyUnavailable

COLLECTION = "comments"
DEPENDENCY = "mongodb"

# A post's comments in order (equality on post_id, sort on the rest), the
# per-post counts (prefix post_id) and the cascade delete (prefix post_id).
INDEXES = {"post_created_id": [("post_id", 1), ("created_at", 1), ("_id", 1)]}
_ORDER = [("created_at", pymongo.ASCENDING), ("_id", pymongo.ASCENDING)]


@dataclass(frozen=True)
class CommentRecord:
    id: uuid.UUID
    post_id: uuid.UUID
    body: str
    created_at: datetime


_clients: dict[str, pymongo.MongoClient] = {}
_indexed: set[tuple[str, str]] = set()
_lock = threading.Lock()


def _client() -> pymongo.MongoClient:
    url = settings.MONGO_URL
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url)
            if client is None:
                timeout = settings.MONGO_TIMEOUT_MS
                # Created on first use, not at import: gunicorn forks workers
                # after loading the app, and a MongoClient must not cross a fork.
                client = pymongo.MongoClient(
                    url,
                    serverSelectionTimeoutMS=settings.MONGO_SERVER_SELECTION_TIMEOUT_MS,
                    connectTimeoutMS=timeout,
                    socketTimeoutMS=timeout,
                    tz_aware=True,
                    tzinfo=UTC,
                    appname="comments-service",
                )
                _clients[url] = client
    return client


def _collection() -> Collection:
    db_name = settings.MONGO_DB
    collection = _client()[db_name][COLLECTION]
    key = (settings.MONGO_URL, db_name)
    if key not in _indexed:
        # Idempotent; done once per process on first use (and retried on the
        # next request if the server was down), never at start-up.
        for name, keys in INDEXES.items():
            collection.create_index(keys, name=name)
        _indexed.add(key)
    return collection


@contextmanager
def _mongo() -> Iterator[Collection]:
    try:
        yield _collection()
    except ConnectionFailure as exc:  # incl. ServerSelectionTimeoutError, AutoReconnect
        raise DependencyUnavailable(DEPENDENCY) from exc


def close_clients() -> None:
    """Close every client (tests, or a worker shutting down)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
        _indexed.clear()


def _id(value: uuid.UUID) -> str:
    if not isinstance(value, uuid.UUID):
        raise TypeError(f"expected a uuid.UUID, got {type(value).__name__}")
    return str(value)


def _record(doc: dict) -> CommentRecord:
    return CommentRecord(
        id=uuid.UUID(doc["_id"]),
        post_id=uuid.UUID(doc["post_id"]),
        body=doc["body"],
        created_at=doc["created_at"],
    )


def ping() -> None:
    """Raises DependencyUnavailable unless MongoDB answers."""
    try:
        _client().admin.command("ping")
    except ConnectionFailure as exc:
        raise DependencyUnavailable(DEPENDENCY) from exc


def comment_insert(
    *, comment_id: uuid.UUID, post_id: uuid.UUID, body: str, created_at: datetime
) -> CommentRecord:
    if not isinstance(body, str):
        raise TypeError(f"body must be a str, got {type(body).__name__}")
    if created_at.tzinfo is None or created_at.microsecond % 1000:
        raise ValueError("created_at must be timezone-aware with millisecond precision")
    doc = {"_id": _id(comment_id), "post_id": _id(post_id), "body": body}
    doc["created_at"] = created_at.astimezone(UTC)
    with _mongo() as comments:
        comments.insert_one(doc)
    return _record(doc)


class PostComments:
    """A post's comments, oldest first (ties broken by id), read lazily: what a
    Django Paginator needs (``count()`` and slicing), one query each."""

    def __init__(self, post_id: uuid.UUID):
        self._filter = {"post_id": _id(post_id)}
        self._count: int | None = None

    def count(self) -> int:
        if self._count is None:
            with _mongo() as comments:
                self._count = comments.count_documents(self._filter)
        return self._count

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: slice) -> list[CommentRecord]:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("PostComments supports only contiguous slices")
        start = index.start or 0
        stop = index.stop
        if start < 0 or (stop is not None and stop < 0):
            raise ValueError("negative indexes are not supported")
        if stop is not None and stop <= start:
            return []
        with _mongo() as comments:
            cursor = comments.find(self._filter).sort(_ORDER).skip(start)
            if stop is not None:
                cursor = cursor.limit(stop - start)
            return [_record(doc) for doc in cursor]


def comments_of_post(*, post_id: uuid.UUID) -> PostComments:
    return PostComments(post_id)


def comment_counts(*, post_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Comments per post in one aggregation; posts without comments are absent."""
    ids = sorted({_id(post_id) for post_id in post_ids})
    if not ids:
        return {}
    pipeline = [
        {"$match": {"post_id": {"$in": ids}}},
        {"$group": {"_id": "$post_id", "n": {"$sum": 1}}},
    ]
    with _mongo() as comments:
        return {uuid.UUID(row["_id"]): row["n"] for row in comments.aggregate(pipeline)}


def comments_delete_of_post(*, post_id: uuid.UUID) -> int:
    """Removes every comment of the post; how many there were."""
    with _mongo() as comments:
        return comments.delete_many({"post_id": _id(post_id)}).deleted_count
