"""Does a post exist? The one seam through which comments learns it.

- POST_LOOKUP=sync asks the posts service over HTTP (posts_client) every time.
- POST_LOOKUP=async reads the local replica of posts (collection
  ``posts_replica``, fed by post.created / post.deleted in comments.events):
  a replica hit answers alone (a tombstone: the post does not exist), so a
  known post can be commented on while the posts service is down. A miss
  (the post.created event not applied yet: a comment right after the post's
  201) reads through to the posts service and records the answer in the
  replica unless a tombstone arrived meanwhile; posts down on a miss is the
  same fast 503 as in sync mode.
"""

from __future__ import annotations

import uuid

from django.conf import settings

from . import posts_client, repository


def post_exists(post_id: uuid.UUID) -> bool:
    if settings.POST_LOOKUP == "sync":
        return posts_client.post_exists(post_id)
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
