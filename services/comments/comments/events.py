"""Handlers of the post events this service consumes (``bus_consume --service
comments``), feeding the replica of posts that POST_LOOKUP=async reads.

The service has no SQL database, so the blogbus inbox is not used
(``BLOGBUS_INBOX = False``): each handler is idempotent by construction in
MongoDB, and a redelivery or a duplicate has no second effect.

- post.created: ``$setOnInsert`` upsert keyed by the post id; a tombstone
  always wins, so a late post.created after post.deleted does nothing.
- post.deleted: tombstone (upsert, ``$max`` on deleted_at), then
  ``delete_many`` of the post's comments. Both idempotent; if the handler dies
  between them, the redelivery finishes the job.

A payload that does not parse (no uuid ``id``) raises: the bus retries it on
the service's own queue, then dead-letters it.
"""

from __future__ import annotations

import logging
import uuid

from blogbus.envelope import Envelope, EnvelopeError, parse_time

from . import repository

logger = logging.getLogger("comments.events")


def _post_id(envelope: Envelope) -> uuid.UUID:
    raw = envelope.data.get("id")
    if not isinstance(raw, str):
        raise EnvelopeError(f"{envelope.type}: data.id must be a uuid string")
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise EnvelopeError(f"{envelope.type}: data.id is not a uuid: {raw!r}") from None


def on_post_created(envelope: Envelope) -> None:
    post_id = _post_id(envelope)
    raw_created_at = envelope.data.get("created_at")
    created_at = parse_time(raw_created_at) if isinstance(raw_created_at, str) else None
    state = repository.replica_post_add(post_id=post_id, created_at=created_at)
    if state.deleted:
        logger.info("post.created for tombstoned post %s ignored", post_id)


def on_post_deleted(envelope: Envelope) -> None:
    post_id = _post_id(envelope)
    repository.replica_post_tombstone(post_id=post_id, deleted_at=parse_time(envelope.time))
    removed = repository.comments_delete_of_post(post_id=post_id)
    logger.info("post.deleted %s: tombstone set, %d comment(s) removed", post_id, removed)
