"""Every MongoDB access of the comments service; the only module that
imports pymongo.

Collection ``comments``: ``{_id: <uuid str>, post_id: <uuid str>, body: str,
created_at: <UTC datetime, ms precision>}`` (more fields and collections are
described with the sections that use them, below). Ids reach a query only as
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
from contextlib import (
    contextmanager,
    suppress,  # [stage 3]
)
from dataclasses import dataclass
from datetime import (
    UTC,
    datetime,
    timedelta,  # [stage 3]
)

import pymongo
from django.conf import settings
from pymongo.collection import Collection
from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,  # [stage 3]
    PyMongoError,  # [stage 3]
)

from blogweb.exceptions import DependencyUnavailable
from blogweb.idempotency import KeyTaken

COLLECTION = "comments"
DEPENDENCY = "mongodb"

# A post's comments in order (equality on post_id, sort on the rest), the
# per-post counts (prefix post_id) and the cascade delete (prefix post_id).
INDEXES = {"post_created_id": [("post_id", 1), ("created_at", 1), ("_id", 1)]}
# The Idempotency-Key a comment was created with (only those comments are in
# these indexes: sparse): one comment per key, and the release of expired keys.
KEY_INDEXES = {
    "idempotency_key": ([("idempotency.id", 1)], {"unique": True, "sparse": True}),
    "idempotency_expires": ([("idempotency.expires_at", 1)], {"sparse": True}),
}
# >>> stage 3: events: the outbox relay's index
# The relay's sweep: only comments with a pending event are in it (sparse).
SPARSE_INDEXES = {"outbox_pending": [("outbox.id", 1)]}
# <<< stage 3
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
                    # Acknowledged means durable: a write is answered once it
                    # is in the journal (j) of a majority (a standalone: the
                    # one server). The default, w:1 without j, can lose about
                    # 100 ms of acknowledged writes in a crash.
                    w="majority",
                    journal=True,
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
        for name, (keys, options) in KEY_INDEXES.items():
            collection.create_index(keys, name=name, **options)
        # >>> stage 3: events: the outbox relay's index
        for name, keys in SPARSE_INDEXES.items():
            collection.create_index(keys, name=name, sparse=True)
        # <<< stage 3
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


@dataclass(frozen=True)
class IdempotencyField:
    """The Idempotency-Key a comment is created with, kept in its document:
    ``idempotency: {id: "<scope> <key>", fingerprint, expires_at}``."""

    id: str
    fingerprint: str
    expires_at: datetime


def comment_insert(
    *,
    comment_id: uuid.UUID,
    post_id: uuid.UUID,
    body: str,
    created_at: datetime,
    idempotency: IdempotencyField | None = None,
    event: PendingEvent | None = None,  # [stage 3]
) -> CommentRecord:
    """One single-document insert; the comment as stored (UTC, milliseconds).
    With ``idempotency``, the key goes into the same document, so the comment
    and its key are stored together or not at all; KeyTaken when another
    comment holds the key already (the unique index refused this one)."""
    if not isinstance(body, str):
        raise TypeError(f"body must be a str, got {type(body).__name__}")
    if created_at.tzinfo is None or created_at.microsecond % 1000:
        raise ValueError("created_at must be timezone-aware with millisecond precision")
    doc = {"_id": _id(comment_id), "post_id": _id(post_id), "body": body}
    doc["created_at"] = created_at.astimezone(UTC)
    if idempotency is not None:
        doc["idempotency"] = _idempotency_field(idempotency)
    # >>> stage 3: events: its pending event in the same document, stored atomically with it
    if event is not None:
        doc["outbox"] = _outbox_field(event, available_at=doc["created_at"])
    # <<< stage 3
    with _mongo() as comments:
        try:
            comments.insert_one(doc)
        except DuplicateKeyError as exc:
            if idempotency is None:
                raise
            raise KeyTaken(idempotency.id) from exc
    return _record(doc)


def _idempotency_field(field: IdempotencyField) -> dict:
    for name in ("id", "fingerprint"):
        if not isinstance(getattr(field, name), str):
            raise TypeError(f"idempotency.{name} must be a str")
    if field.expires_at.tzinfo is None:
        raise ValueError("idempotency.expires_at must be timezone-aware")
    return {
        "id": field.id,
        "fingerprint": field.fingerprint,
        "expires_at": field.expires_at.astimezone(UTC),
    }


def comment_find_by_idempotency_key(
    *, scoped_key: str, now: datetime
) -> tuple[CommentRecord, str] | None:
    """The comment created with ``scoped_key`` and that request's
    fingerprint; None when there is none. An expired key is released (the
    field removed from its comment) and reported as None."""
    if not isinstance(scoped_key, str):
        raise TypeError("scoped_key must be a str")
    with _mongo() as comments:
        doc = comments.find_one({"idempotency.id": scoped_key})
        if doc is None:
            return None
        if doc["idempotency"]["expires_at"] <= now:
            comments.update_one(
                {"_id": doc["_id"], "idempotency.id": scoped_key}, {"$unset": {"idempotency": ""}}
            )
            return None
    return _record(doc), doc["idempotency"]["fingerprint"]


def idempotency_keys_release_expired(*, now: datetime) -> int:
    """Removes every expired key from its comment; how many."""
    with _mongo() as comments:
        result = comments.update_many(
            {"idempotency.expires_at": {"$lte": now}}, {"$unset": {"idempotency": ""}}
        )
    return result.modified_count


# >>> stage 3: events: undoing an insert that raced a post.deleted
def comment_delete(*, comment_id: uuid.UUID) -> bool:
    with _mongo() as comments:
        return comments.delete_one({"_id": _id(comment_id)}).deleted_count == 1
    # <<< stage 3


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


# >>> stage 3: events: the outbox, and the replica of posts
# --- Outbox: the pending event inside each comment (comments_outbox_relay) ---
# A comment document may carry ``outbox: {id, type, envelope, available_at,
# attempts, last_error?}``: the comment's pending event (the transactional
# outbox on a standalone MongoDB, which has no multi-document transactions:
# written by the comment's own single-document insert, ``$unset`` by the relay
# after the broker's ack).


@dataclass(frozen=True)
class PendingEvent:
    """An event to publish, stored inside the document whose change it records."""

    id: str
    type: str
    envelope: str  # the CloudEvents envelope, as JSON


def _outbox_field(event: PendingEvent, *, available_at: datetime) -> dict:
    for name in ("id", "type", "envelope"):
        if not isinstance(getattr(event, name), str):
            raise TypeError(f"event.{name} must be a str")
    return {
        "id": event.id,
        "type": event.type,
        "envelope": event.envelope,
        "available_at": available_at,
        "attempts": 0,
    }


@dataclass(frozen=True)
class OutboxEntry:
    document_id: str
    event: PendingEvent
    attempts: int


def outbox_due(*, limit: int, now: datetime | None = None) -> list[OutboxEntry]:
    """Up to ``limit`` pending events whose time has come, oldest first."""
    now = now or datetime.now(UTC)
    with _mongo() as comments:
        cursor = (
            comments.find(
                {"outbox.id": {"$gt": ""}, "outbox.available_at": {"$lte": now}},
                {"outbox": 1},
            )
            .sort([("outbox.available_at", 1)])
            .limit(int(limit))
        )
        return [
            OutboxEntry(
                document_id=doc["_id"],
                event=PendingEvent(
                    id=doc["outbox"]["id"],
                    type=doc["outbox"]["type"],
                    envelope=doc["outbox"]["envelope"],
                ),
                attempts=int(doc["outbox"].get("attempts", 0)),
            )
            for doc in cursor
        ]


def outbox_mark_sent_many(sent: Iterable[tuple[str, str]]) -> int:
    """Removes these pending events (after the broker's acks), each keyed by
    its document and its event id, so only that event: one unordered bulk
    write, one journal commit for a relay's whole batch instead of one per
    event. How many it removed."""
    updates = [
        pymongo.UpdateOne(
            {"_id": str(document_id), "outbox.id": str(event_id)}, {"$unset": {"outbox": ""}}
        )
        for document_id, event_id in sent
    ]
    if not updates:
        return 0
    with _mongo() as comments:
        return comments.bulk_write(updates, ordered=False).modified_count


def outbox_postpone(*, document_id: str, event_id: str, error: str, delay_s: float) -> None:
    """Keeps the event pending, tried again after ``delay_s`` (unroutable, nacked)."""
    with _mongo() as comments:
        comments.update_one(
            {"_id": str(document_id), "outbox.id": str(event_id)},
            {
                "$inc": {"outbox.attempts": 1},
                "$set": {
                    "outbox.last_error": str(error)[:500],
                    "outbox.available_at": datetime.now(UTC) + timedelta(seconds=delay_s),
                },
            },
        )


def outbox_pending_count() -> int:
    with _mongo() as comments:
        return comments.count_documents({"outbox.id": {"$gt": ""}})


class OutboxWatch:
    """New pending events as they are written: a change stream on the comments
    that lets through only the inserts that carry one (a comment's own
    event), not the relay's ``$unset`` nor a postponement."""

    PIPELINE = [
        {"$match": {"operationType": "insert", "fullDocument.outbox.id": {"$exists": True}}}
    ]

    def __init__(self, *, max_await_ms: int) -> None:
        """Opens the stream now: what is inserted from here on is seen. Raises
        ``DependencyUnavailable``, or ``ChangeStreamsUnsupported`` when the
        server refuses the command (a standalone; a user without the
        ``changeStream`` action, which ``readWrite`` has)."""
        try:
            with _mongo() as comments:
                self._stream = comments.watch(self.PIPELINE, max_await_time_ms=max_await_ms)
        except OperationFailure as exc:
            raise ChangeStreamsUnsupported(f"{exc.code}: {exc}") from exc

    def wait(self) -> bool:
        """True when an insert with a pending event arrived since the last call
        (one per call); False after ``max_await_ms`` without. A stream the
        server lost raises ``DependencyUnavailable``: open a new one."""
        try:
            return self._stream.try_next() is not None
        except PyMongoError as exc:  # the driver resumed once already, where it could
            raise DependencyUnavailable(DEPENDENCY) from exc

    def close(self) -> None:
        with suppress(PyMongoError):
            self._stream.close()


class ChangeStreamsUnsupported(Exception):
    """The server refused a change stream: a standalone mongod answers 40573,
    "The $changeStream stage is only supported on replica sets"."""


# --- Replica of posts (POST_LOOKUP=async), fed by post.created / post.deleted ---
# Collection ``posts_replica``: ``{_id: <post uuid str>, deleted: bool,
# created_at?, deleted_at?}``; a tombstone (``deleted: true``) always wins.

REPLICA_COLLECTION = "posts_replica"


@dataclass(frozen=True)
class ReplicaPost:
    id: uuid.UUID
    deleted: bool


@contextmanager
def _replica() -> Iterator[Collection]:
    try:
        yield _client()[settings.MONGO_DB][REPLICA_COLLECTION]
    except ConnectionFailure as exc:
        raise DependencyUnavailable(DEPENDENCY) from exc


def replica_post_get(*, post_id: uuid.UUID) -> ReplicaPost | None:
    with _replica() as replica:
        doc = replica.find_one({"_id": _id(post_id)}, {"deleted": 1})
    if doc is None:
        return None
    return ReplicaPost(id=post_id, deleted=bool(doc.get("deleted")))


def replica_post_add(*, post_id: uuid.UUID, created_at: datetime | None = None) -> ReplicaPost:
    """Records a live post unless the replica knows it already: ``$setOnInsert``
    only, so a tombstone always wins (a late or duplicate post.created, or a
    read-through racing a post.deleted, changes nothing). Returns what the
    replica holds afterwards."""
    fields: dict = {"deleted": False}
    if created_at is not None:
        fields["created_at"] = created_at.astimezone(UTC)
    key = _id(post_id)
    with _replica() as replica:
        # DuplicateKeyError: a concurrent upsert inserted it first; it exists,
        # which is all this wants.
        with suppress(DuplicateKeyError):
            replica.update_one({"_id": key}, {"$setOnInsert": fields}, upsert=True)
        doc = replica.find_one({"_id": key}, {"deleted": 1})
    return ReplicaPost(id=post_id, deleted=bool(doc and doc.get("deleted")))


def replica_post_tombstone(*, post_id: uuid.UUID, deleted_at: datetime) -> None:
    """Marks the post deleted, forever (upsert: a post.deleted before its
    post.created leaves a tombstone that the later post.created cannot undo).
    ``deleted_at`` only moves forward (``$max``), so a replay is a no-op."""
    if deleted_at.tzinfo is None:
        raise ValueError("deleted_at must be timezone-aware")
    key = _id(post_id)
    update = {"$set": {"deleted": True}, "$max": {"deleted_at": deleted_at.astimezone(UTC)}}
    with _replica() as replica:
        try:
            replica.update_one({"_id": key}, update, upsert=True)
        except DuplicateKeyError:
            replica.update_one({"_id": key}, update)
    # <<< stage 3


# --- Data migration from the monolith (import_monolith_comments) -------------

MIGRATIONS_COLLECTION = "migrations"
DUPLICATE_KEY_CODES = {11000, 11001}


def _migrations() -> Collection:
    return _client()[settings.MONGO_DB][MIGRATIONS_COLLECTION]


def comments_bulk_upsert(records: Iterable[CommentRecord]) -> tuple[int, int]:
    """Writes each record under its own id: inserted when absent, replaced
    field by field when different, untouched when equal. Returns (inserted,
    changed); running it twice on the same records gives (0, 0) the second
    time. Timestamps are stored at millisecond precision (what MongoDB keeps).

    One unordered insert_many first (the common case of a first run: about
    twice as fast as upserts on the embedded server), then upserts for the
    ids that already existed (duplicate key errors), which change only what
    differs."""
    docs = []
    for record in records:
        if not isinstance(record.body, str):
            raise TypeError(f"body must be a str, got {type(record.body).__name__}")
        created_at = record.created_at
        if created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")
        created_at = created_at.astimezone(UTC)
        created_at = created_at.replace(microsecond=created_at.microsecond // 1000 * 1000)
        docs.append(
            {
                "_id": _id(record.id),
                "post_id": _id(record.post_id),
                "body": record.body,
                "created_at": created_at,
            }
        )
    if not docs:
        return 0, 0
    with _mongo() as comments:
        try:
            comments.insert_many(docs, ordered=False)
            return len(docs), 0
        except pymongo.errors.BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if exc.details.get("writeConcernErrors") or any(
                error.get("code") not in DUPLICATE_KEY_CODES for error in errors
            ):
                raise
            inserted = exc.details.get("nInserted", 0)
            existing = [docs[error["index"]] for error in errors]
        operations = [
            pymongo.UpdateOne(
                {"_id": doc["_id"]},
                {"$set": {key: value for key, value in doc.items() if key != "_id"}},
                upsert=True,
            )
            for doc in existing
        ]
        result = comments.bulk_write(operations, ordered=False)
    return inserted + result.upserted_count, result.modified_count


def comments_total() -> int:
    with _mongo() as comments:
        return comments.count_documents({})


def comments_iter_all(*, batch_size: int = 2000) -> Iterator[CommentRecord]:
    """Every comment, in no particular order, streamed in batches (for the
    migration's verification: memory stays bounded whatever the size)."""
    with _mongo() as comments:
        for doc in comments.find({}, batch_size=batch_size):
            yield _record(doc)


def migration_checkpoint_get(name: str) -> dict | None:
    """The saved progress of a data migration (without its _id), or None."""
    if not isinstance(name, str):
        raise TypeError("name must be a str")
    with _mongo():
        doc = _migrations().find_one({"_id": name})
    if doc is not None:
        doc.pop("_id", None)
    return doc


def migration_checkpoint_set(name: str, fields: dict) -> None:
    if not isinstance(name, str):
        raise TypeError("name must be a str")
    with _mongo():
        _migrations().update_one({"_id": name}, {"$set": dict(fields)}, upsert=True)


def migration_checkpoint_delete(name: str) -> None:
    if not isinstance(name, str):
        raise TypeError("name must be a str")
    with _mongo():
        _migrations().delete_one({"_id": name})
