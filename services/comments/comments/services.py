"""Writes of comments. Whether the post exists is asked of post_lookup: the
posts service over HTTP now, a local replica fed by events later."""

from __future__ import annotations

import uuid

from blogweb.timeutil import now_ms

from . import post_lookup, repository


class PostNotFound(Exception):
    pass


def comment_create(*, post_id: uuid.UUID, body: str) -> repository.CommentRecord:
    if not post_lookup.post_exists(post_id):
        raise PostNotFound(str(post_id))
    # A post deleted between this check and the insert leaves an orphan that
    # no route shows (the post is 404 from then on); the posts service's
    # delete call, or later post.deleted, removes a post's comments.
    return repository.comment_insert(
        comment_id=uuid.uuid4(), post_id=post_id, body=body, created_at=now_ms()
    )


def comments_delete_of_post(*, post_id: uuid.UUID) -> int:
    """Removes every comment of a (deleted) post; idempotent."""
    return repository.comments_delete_of_post(post_id=post_id)
