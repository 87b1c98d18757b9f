"""Writes of comments. Whether the post exists is asked of post_lookup, the
one seam that knows how to find it out."""

from __future__ import annotations

import uuid

from django.conf import settings  # [stage 3]

from blogbus.envelope import COMMENT_CREATED, Envelope  # [stage 3]
from blogweb.idempotency import Claim
from blogweb.requestid import current_request_id  # [stage 3]
from blogweb.timeutil import (
    format_rfc3339_ms,  # [stage 3]
    now_ms,
)

from . import post_lookup, repository


class PostNotFound(Exception):
    pass


# >>> stage 3: events: comment.created, the comment's pending event
def comment_created_event(
    *, comment_id: uuid.UUID, post_id: uuid.UUID, created_at
) -> repository.PendingEvent:
    """Each new comment carries its ``comment.created`` event in the same
    document (the outbox on a standalone MongoDB, which has no multi-document
    transactions): one single-document insert stores both or neither, and
    ``comments_outbox_relay`` publishes it and removes it after the broker's
    ack."""
    envelope = Envelope.new(
        type=COMMENT_CREATED,
        source=settings.EVENT_SOURCE,
        data={
            "id": str(comment_id),
            "post_id": str(post_id),
            "created_at": format_rfc3339_ms(created_at),
        },
        request_id=current_request_id.get(),
        time=created_at,
    )
    return repository.PendingEvent(id=envelope.id, type=envelope.type, envelope=envelope.to_json())
    # <<< stage 3


def comment_create(
    *, post_id: uuid.UUID, body: str, idempotency: Claim | None = None
) -> repository.CommentRecord:
    """The new comment; with ``idempotency`` (a request's Idempotency-Key),
    the key is stored in the comment's own document (KeyTaken: another
    comment has it)."""
    if not post_lookup.post_exists(post_id):
        raise PostNotFound(str(post_id))
    comment_id, created_at = uuid.uuid4(), now_ms()
    # >>> stage 3: events: the comment and its comment.created in one insert
    event = comment_created_event(comment_id=comment_id, post_id=post_id, created_at=created_at)
    # <<< stage 3
    comment = repository.comment_insert(
        comment_id=comment_id,
        post_id=post_id,
        body=body,
        created_at=created_at,
        idempotency=_idempotency_field(idempotency),
        event=event,  # [stage 3]
    )
    # >>> stage 3: events: a post.deleted that raced the insert
    # A post deleted between the check and the insert: in async mode the
    # post.deleted handler writes the tombstone, then removes the post's
    # comments; checking the tombstone again after the insert closes the race
    # (either this check sees the tombstone, or the handler's delete_many,
    # which comes after it, sees this comment). In sync mode the owner of
    # posts' delete call removes such an orphan, and no route shows it.
    if post_lookup.post_tombstoned(post_id):
        repository.comment_delete(comment_id=comment_id)
        raise PostNotFound(str(post_id))
    # <<< stage 3
    return comment


def _idempotency_field(claim: Claim | None) -> repository.IdempotencyField | None:
    if claim is None:
        return None
    return repository.IdempotencyField(
        id=claim.scoped_key, fingerprint=claim.fingerprint, expires_at=claim.expires_at
    )


def comments_delete_of_post(*, post_id: uuid.UUID) -> int:
    """Removes every comment of a (deleted) post; idempotent."""
    # >>> stage 3: events: the owner's word is the deletion known, before its event
    # The tombstone first, then the comments, in the post.deleted handler's
    # order: an insert racing this call is then seen by comment_create's
    # second look or by the delete_many below.
    post_lookup.post_deleted(post_id)
    # <<< stage 3
    return repository.comments_delete_of_post(post_id=post_id)
