"""Reads of comments."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from . import repository

MAX_COUNT_POST_IDS = 100


def comment_list(*, post_id: uuid.UUID) -> repository.PostComments:
    """A post's comments, oldest first (ties broken by id, as in every stage),
    read lazily page by page."""
    return repository.comments_of_post(post_id=post_id)


def comment_counts(*, post_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Comments per post for a page of posts, in one aggregation; every asked
    post is in the result, 0 when it has no comment."""
    post_ids = set(post_ids)
    counts = repository.comment_counts(post_ids=post_ids)
    return {post_id: counts.get(post_id, 0) for post_id in post_ids}
