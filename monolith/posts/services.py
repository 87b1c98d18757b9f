"""Writes of posts."""

from __future__ import annotations

import uuid

from django.db import transaction

from .models import Post


class PostNotFound(Exception):
    pass


@transaction.atomic
def post_create(*, title: str, body: str) -> Post:
    post = Post(title=title, body=body)
    # Field checks only: uniqueness and constraints would each cost a query,
    # and the database enforces them anyway.
    post.full_clean(validate_unique=False, validate_constraints=False)
    post.save(force_insert=True)
    post.comment_count = 0
    return post


@transaction.atomic
def post_delete(*, post_id: uuid.UUID) -> None:
    """Deletes the post; its comments go with it (ForeignKey, CASCADE). In
    stage 2 the comments live elsewhere and this becomes an explicit call."""
    deleted, _ = Post.objects.filter(pk=post_id).delete()
    if not deleted:
        raise PostNotFound(str(post_id))
