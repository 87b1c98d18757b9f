"""Writes of comments. The post's existence is asked of posts' api, as it
will be asked of the posts service (or a replica of it) after the split."""

from __future__ import annotations

import uuid

from django.db import IntegrityError, connection, transaction

from monolith.posts import api as posts_api

from .models import Comment


class PostNotFound(Exception):
    pass


def comment_create(*, post_id: uuid.UUID, body: str) -> Comment:
    if not posts_api.post_exists(post_id=post_id):
        raise PostNotFound(str(post_id))
    comment = Comment(post_id=post_id, body=body)
    comment.full_clean(exclude=["post"], validate_unique=False, validate_constraints=False)
    # Inside a caller's transaction (an Idempotency-Key recorded with the
    # comment) the commit is not ours: PostgreSQL checks the foreign key,
    # deferred to the commit, before this block ends. (SQLite's transaction
    # holds the write lock from its BEGIN: no delete can come in between.)
    check_now = connection.in_atomic_block and connection.vendor == "postgresql"
    try:
        with transaction.atomic():
            comment.save(force_insert=True)
            if check_now:
                connection.check_constraints()
    except IntegrityError as exc:
        # The post was deleted between the check and the insert: the foreign
        # key refused the row.
        raise PostNotFound(str(post_id)) from exc
    return comment
