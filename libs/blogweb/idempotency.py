"""``Idempotency-Key`` on the create routes: a client that did not get an
answer (a timeout, a dropped connection) sends the same request again with
the same key and gets the first answer instead of a second resource.

The rules (after Stripe's API and the IETF draft "The Idempotency-Key HTTP
Header Field"), the same for every app that serves a create route:

* no header: the route works as it always did;
* a malformed key (empty, over 255 characters, anything but printable ASCII;
  the draft's quoted form ``"..."`` is accepted too): a JSON 400, nothing done;
* a new key: the request runs, and when it creates something (a 2xx) the
  key is recorded with the request's fingerprint and the response, in the
  same transaction (or document) as the creation, so a crash stores both or
  neither. An error creates nothing and records nothing: it can be retried
  with the same key;
* a known key with the same body: the recorded response again (same status,
  same body) with ``Idempotent-Replayed: true``; nothing new is created;
* a known key with another body: a JSON 422, nothing done;
* keys are scoped per route (and per post for comments) and kept for
  ``KEY_TTL``; after that the key is free again.

Two requests with the same key at once: both may run, but the store's unique
constraint lets only one record the key, and the loser's creation is undone
with it (``KeyTaken``); the loser then answers with the winner's response.

This module holds the rules (``respond``); each app brings a store: its own
table through ``SqlStore``, or anything with the ``Store`` methods (the
comments service keeps the key inside the comment's MongoDB document).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.db import IntegrityError, models, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response

logger = logging.getLogger("blog.idempotency")

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
KEY_TTL = timedelta(hours=24)
# Expired keys are removed by the first keyed request after this long (per process).
PURGE_INTERVAL_S = 600.0


class InvalidKey(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = (
        f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters (e.g. a UUID)."
    )
    default_code = "invalid_idempotency_key"


class KeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = f"This {HEADER} was already used with a different request body."
    default_code = "idempotency_key_reused"


class KeyInFlight(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = f"A request with this {HEADER} is being processed; retry shortly."
    default_code = "idempotency_key_in_flight"


class KeyTaken(Exception):
    """Raised by a store: another request recorded the same key first (the
    unique constraint refused this one), and this request's creation was
    undone with it."""


@dataclass(frozen=True)
class Claim:
    """What a store records with the resource a keyed request creates."""

    scope: str
    key: str
    fingerprint: str
    expires_at: datetime

    @property
    def scoped_key(self) -> str:
        return scoped_key(self.scope, self.key)


@dataclass(frozen=True)
class Recorded:
    """What a store found for a key: the first request's fingerprint and response."""

    fingerprint: str
    status: int
    body: Any


class Store(Protocol):
    def find(self, scope: str, key: str, *, now: datetime) -> Recorded | None:
        """The live record of ``key`` in ``scope``; an expired one is freed
        (removed) and reported as None."""

    def create(self, claim: Claim, create: Callable[[Claim], Response]) -> Response:
        """Runs ``create`` and, when it created something, records ``claim``
        with its response atomically; raises KeyTaken if the key was taken."""

    def purge(self, *, now: datetime) -> int:
        """Frees every expired key; how many."""


def scoped_key(scope: str, key: str) -> str:
    """One string for (scope, key); scopes hold no space."""
    if not scope or " " in scope:
        raise ValueError(f"a scope is one word, not {scope!r}")
    return f"{scope} {key}"


def parse_key(raw: str | None) -> str | None:
    """The key of an ``Idempotency-Key`` header value, None when absent;
    InvalidKey when malformed. The IETF draft sends a quoted string
    (``"abc"``), Stripe a bare token: both are the key ``abc``."""
    if raw is None:
        return None
    value = raw
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
        if '"' in value or "\\" in value:  # no escapes: a key is a plain token
            raise InvalidKey()
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in value):
        raise InvalidKey()
    if not value.strip():
        raise InvalidKey()
    return value


def fingerprint(data: Any) -> str:
    """SHA-256 of the request body as canonical JSON: the same JSON whatever
    its key order and whitespace gives the same fingerprint."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def replay(found: Recorded, digest: str) -> Response:
    """The recorded response again, or KeyReused for another body."""
    if found.fingerprint != digest:
        raise KeyReused()
    return Response(found.body, status=found.status, headers={REPLAYED_HEADER: "true"})


def respond(
    request, *, scope: str, store: Store, create: Callable[[Claim | None], Response]
) -> Response:
    """The create route's answer under the rules above. ``create(claim)``
    creates the resource and returns the 2xx response (or raises the API's
    errors); ``claim`` is None for a request without a key, else what the
    store records with the resource."""
    key = parse_key(request.headers.get(HEADER))
    if key is None:
        return create(None)
    digest = fingerprint(request.data)  # a body that does not parse fails here, as without a key
    now = timezone.now()
    _purge_now_and_then(store, now)
    found = store.find(scope, key, now=now)
    if found is not None:
        return replay(found, digest)
    claim = Claim(scope=scope, key=key, fingerprint=digest, expires_at=now + KEY_TTL)
    try:
        return store.create(claim, create)
    except KeyTaken:
        # A concurrent request with the same key won the race and committed.
        found = store.find(scope, key, now=timezone.now())
        if found is None:
            raise KeyInFlight() from None
        return replay(found, digest)


_last_purge: dict[int, float] = {}
_purge_lock = threading.Lock()


def _purge_now_and_then(store: Store, now: datetime) -> None:
    """At most once per PURGE_INTERVAL_S per store and process: a failure is
    logged and never fails the request (the next interval tries again)."""
    with _purge_lock:
        last = _last_purge.get(id(store))
        if last is not None and time.monotonic() - last < PURGE_INTERVAL_S:
            return
        _last_purge[id(store)] = time.monotonic()
    try:
        purged = store.purge(now=now)
    except Exception:  # the purge is housekeeping: the request goes on
        logger.warning("idempotency: expired keys not purged", exc_info=True)
        return
    if purged:
        logger.info("idempotency: %d expired key(s) purged", purged)


class SqlStore:
    """A store on a table of the app's own database (a model with the fields
    ``scope``, ``key``, ``fingerprint``, ``status``, ``body`` (JSON),
    ``created_at``, ``expires_at``, unique on ``(scope, key)``): the row is
    inserted in the transaction of the creation, so both commit or neither.

    The race of two requests with one key: both may create, but the second
    insert of the key waits on the unique index for the first transaction
    (PostgreSQL) or on the write lock (SQLite, BEGIN IMMEDIATE), then fails;
    its whole transaction, the resource included, is rolled back."""

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model

    def find(self, scope: str, key: str, *, now: datetime) -> Recorded | None:
        row = (
            self.model.objects.filter(scope=scope, key=key)
            .values("pk", "fingerprint", "status", "body", "expires_at")
            .first()
        )
        if row is None:
            return None
        if row["expires_at"] <= now:
            # Its time is up: the key is free again (the unique constraint would keep it).
            self.model.objects.filter(pk=row["pk"], expires_at__lte=now).delete()
            return None
        return Recorded(fingerprint=row["fingerprint"], status=row["status"], body=row["body"])

    def create(self, claim: Claim, create: Callable[[Claim], Response]) -> Response:
        with transaction.atomic():
            response = create(claim)
            if not status.is_success(response.status_code):
                return response
            try:
                self.model.objects.create(
                    scope=claim.scope,
                    key=claim.key,
                    fingerprint=claim.fingerprint,
                    status=response.status_code,
                    body=response.data,
                    expires_at=claim.expires_at,
                )
            except IntegrityError as exc:
                # Leaving the block with an exception rolls the creation back too.
                raise KeyTaken(claim.scoped_key) from exc
        return response

    def purge(self, *, now: datetime) -> int:
        deleted, _ = self.model.objects.filter(expires_at__lte=now).delete()
        return deleted
