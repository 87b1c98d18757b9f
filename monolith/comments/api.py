"""What the rest of the monolith may know about comments: the seam.

Callers (the posts app) use these functions and never learn where comments
live or how they are counted. That is what lets a later step move comments
out of this process without touching a caller (branch by abstraction).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.conf import settings  # [stage 2]
from django.db import transaction  # [stage 2]

from . import (
    remote,  # [stage 2]
    selectors,
)


# >>> stage 2: branch by abstraction: where comments live is a setting
def served_here() -> bool:
    """COMMENTS_BACKEND=local: this app's tables; "service": the comments
    service over HTTP (monolith/comments/remote.py)."""
    return settings.COMMENTS_BACKEND == "local"
    # <<< stage 2


def comment_counts(*, post_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Number of comments of each post, for a whole page in one query (or one
    call); posts without comments may be absent from the result."""
    # >>> stage 3: counts kept from comment events, one query per page
    if not served_here() and settings.COMMENT_COUNTS == "async":
        return selectors.comment_counts_kept(post_ids=post_ids)
    # <<< stage 3
    # >>> stage 2: the comments service counts them, one call per page
    if not served_here():
        return remote.comment_counts(post_ids=post_ids)
    # <<< stage 2
    return selectors.comment_counts(post_ids=post_ids)


def post_deleted(*, post_id: uuid.UUID) -> None:
    """The posts app deleted a post. Here, the foreign key's cascade already
    removed its comments in the same transaction."""
    # >>> stage 2: at the comments service they are removed once the delete has committed
    if served_here():
        return
    # >>> stage 3: the kept count goes; with events the post.deleted event carries the removal
    selectors.comment_count_forget(post_id=post_id)
    if settings.PUBLISH_EVENTS:
        return
    # <<< stage 3
    transaction.on_commit(lambda: remote.comments_delete_of_post(post_id=post_id))
    # <<< stage 2
