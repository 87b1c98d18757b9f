"""What the rest of the monolith may know about comments: the seam.

Branch by abstraction: callers (the posts app) use these functions and never
learn where comments live. ``COMMENTS_BACKEND=local`` (stages 0-1): this
app's own tables. ``COMMENTS_BACKEND=service`` (stages 2-3): the comments
service over HTTP (monolith/comments/remote.py); with ``COMMENT_COUNTS=async``
(stage 3) the counts come from a counter fed by comment events instead, and
with ``PUBLISH_EVENTS`` a deleted post's comments go on its post.deleted
event rather than on a call.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction

from . import remote, selectors


def served_here() -> bool:
    return settings.COMMENTS_BACKEND == "local"


def comment_counts(*, post_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Number of comments of each post, for a whole page in one query (or one
    call); posts without comments may be absent from the result."""
    if served_here():
        return selectors.comment_counts(post_ids=post_ids)
    if settings.COMMENT_COUNTS == "async":
        return selectors.comment_counts_kept(post_ids=post_ids)
    return remote.comment_counts(post_ids=post_ids)


def post_deleted(*, post_id: uuid.UUID) -> None:
    """The posts app deleted a post. Here, the foreign key's cascade already
    removed its comments in the same transaction; at the comments service,
    they are removed once the delete has committed."""
    if served_here():
        return
    selectors.comment_count_forget(post_id=post_id)
    if not settings.PUBLISH_EVENTS:
        transaction.on_commit(lambda: remote.comments_delete_for_post(post_id=post_id))
