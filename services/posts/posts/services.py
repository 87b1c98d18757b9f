"""Writes of posts."""

from __future__ import annotations

import uuid

from django.db import transaction

from . import comments_client
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
    # A post just created has no comments: no need to ask the comments service.
    post.comment_count = 0
    return post


def post_delete(*, post_id: uuid.UUID) -> None:
    """Deletes the post, then asks the comments service to delete its
    comments once the delete is committed (in the monolith a CASCADE did
    that). If the comments service cannot be reached the post stays deleted:
    its comments are unreachable anyway, since every comment route looks the
    post up first, and the failure is logged. The post.deleted event will
    make the clean-up reliable."""
    with transaction.atomic():
        deleted, _ = Post.objects.filter(pk=post_id).delete()
        if not deleted:
            raise PostNotFound(str(post_id))
        transaction.on_commit(
            lambda: comments_client.post_comments_delete(post_id=post_id), robust=True
        )
