"""Does a post exist? The one seam through which comments learns it, so that
how it is learnt can change without touching a caller (views, services).

The sync path asks the owner of posts (POSTS_URL) over HTTP every time
(posts_client): always current, and a 503 when the owner cannot answer.
"""

from __future__ import annotations

import uuid

from django.conf import settings  # [stage 3]

from blogweb.timeutil import now_ms  # [stage 3]

from . import (
    posts_client,
    repository,  # [stage 3]
)


def post_exists(post_id: uuid.UUID) -> bool:
    # >>> stage 3: events: POST_LOOKUP=async reads a replica of posts first
    if settings.POST_LOOKUP == "async":
        return _replica_post_exists(post_id)
    # <<< stage 3
    return posts_client.post_exists(post_id)


# >>> stage 3: events: the replica of posts, kept from post events
def _replica_post_exists(post_id: uuid.UUID) -> bool:
    """POST_LOOKUP=async reads the local replica of posts (collection
    ``posts_replica``, fed by post.created / post.deleted in comments.events):
    a replica hit answers alone (a tombstone: the post does not exist), so a
    known post can be commented on while the owner of posts is down. A miss
    (the post.created event not applied yet: a comment right after the post's
    201) reads through to the owner of posts and records the answer in the
    replica unless a tombstone arrived meanwhile; the owner down on a miss is
    the same fast 503 as in sync mode."""
    if not isinstance(post_id, uuid.UUID):
        raise TypeError(f"expected a uuid.UUID, got {type(post_id).__name__}")
    known = repository.replica_post_get(post_id=post_id)
    if known is not None:
        return not known.deleted
    if not posts_client.post_exists(post_id):
        # Not recorded: a post created later under this id is a mistake
        # nobody makes (uuid4), but a 404 is no proof it will never exist.
        return False
    return not repository.replica_post_add(post_id=post_id).deleted


def post_tombstoned(post_id: uuid.UUID) -> bool:
    """True when the replica holds a tombstone for the post (async mode only;
    always False in sync mode, which keeps no replica)."""
    if settings.POST_LOOKUP == "sync":
        return False
    known = repository.replica_post_get(post_id=post_id)
    return known is not None and known.deleted


def post_deleted(post_id: uuid.UUID) -> None:
    """The owner of posts says the post is deleted (its ``DELETE
    /internal/posts/{id}/comments/``, called once the delete is committed and
    before its client gets the 204). In async mode the replica takes the
    tombstone at once: without it, a replica that still holds the post live
    would accept comments until the ``post.deleted`` event arrives (the event
    lag: the relay's wake-up, the broker, the worker), and they would then be
    removed silently. Sync mode keeps no replica and asks the owner anyway."""
    if settings.POST_LOOKUP == "async":
        repository.replica_post_tombstone(post_id=post_id, deleted_at=now_ms())
    # <<< stage 3
