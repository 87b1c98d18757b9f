"""The store of ``POST /api/posts/{id}/comments/``'s Idempotency-Key (rules:
blogweb.idempotency). A standalone MongoDB has no multi-document
transactions, so the key is not a document of its own: it is a field of the
comment it created, written by the comment's single-document insert, with a
unique index on it (repository.KEY_INDEXES). Two requests with one key: both
insert, the index refuses the second (KeyTaken), which then answers with the
first one's comment."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rest_framework import status
from rest_framework.response import Response

from blogweb.idempotency import Claim, Recorded, scoped_key

from . import repository
from .serializers import CommentOutputSerializer


class CommentKeyStore:
    def find(self, scope: str, key: str, *, now: datetime) -> Recorded | None:
        found = repository.comment_find_by_idempotency_key(
            scoped_key=scoped_key(scope, key), now=now
        )
        if found is None:
            return None
        comment, fingerprint = found
        # The comment as created: its fields never change afterwards.
        body = CommentOutputSerializer(comment).data
        return Recorded(fingerprint=fingerprint, status=status.HTTP_201_CREATED, body=body)

    def create(self, claim: Claim, create: Callable[[Claim], Response]) -> Response:
        # The route's own insert stores the key (services.comment_create).
        return create(claim)

    def purge(self, *, now: datetime) -> int:
        return repository.idempotency_keys_release_expired(now=now)


STORE = CommentKeyStore()
