"""Writes of posts."""

from __future__ import annotations

import uuid

from django.db import transaction

from monolith.comments import api as comments_api

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
    """Deletes the post, and tells comments (through its api): in this
    database the foreign key's cascade takes the comments along; from stage 2
    on, the comments service is asked to, after the commit."""
    deleted, _ = Post.objects.filter(pk=post_id).delete()
    if not deleted:
        raise PostNotFound(str(post_id))
    comments_api.post_deleted(post_id=post_id)
