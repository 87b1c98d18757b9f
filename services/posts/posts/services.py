"""Writes of posts.

Each write appends its event (``post.created`` / ``post.deleted``) to the
outbox in the same transaction, in every mode: events are facts, and the
consumers decide what to do with them. ``manage.py outbox_relay`` publishes
them to ``blog.events`` after the commit.
"""

from __future__ import annotations

import uuid

from django.db import transaction

from blogbus.envelope import POST_CREATED, POST_DELETED, format_time
from blogbus.outbox.services import outbox_append
from blogweb.requestid import current_request_id

from . import comments_client
from .models import CommentCount, Post

EVENT_SOURCE = "/services/posts"


class PostNotFound(Exception):
    pass


@transaction.atomic
def post_create(*, title: str, body: str) -> Post:
    post = Post(title=title, body=body)
    # Field checks only: uniqueness and constraints would each cost a query,
    # and the database enforces them anyway.
    post.full_clean(validate_unique=False, validate_constraints=False)
    post.save(force_insert=True)
    outbox_append(
        type=POST_CREATED,
        source=EVENT_SOURCE,
        data={"id": str(post.id), "title": post.title, "created_at": format_time(post.created_at)},
        request_id=current_request_id.get(),
    )
    # A post just created has no comments: no need to ask the comments service.
    post.comment_count = 0
    return post


def post_delete(*, post_id: uuid.UUID) -> None:
    """Deletes the post, its comment counter and appends ``post.deleted``, in
    one transaction; then asks the comments service to delete its comments
    once the delete is committed (in the monolith a CASCADE did that). If the
    comments service cannot be reached the post stays deleted: its comments
    are unreachable anyway, since every comment route looks the post up
    first, and the failure is logged. A comments service that consumes
    ``post.deleted`` removes them from the event too (reliable, from the
    outbox); the call and the event are both idempotent."""
    with transaction.atomic():
        deleted, _ = Post.objects.filter(pk=post_id).delete()
        if not deleted:
            raise PostNotFound(str(post_id))
        # After the post's delete: a comment event handled concurrently locks
        # the post row first (posts.events), so it cannot recreate the counter.
        CommentCount.objects.filter(post_id=post_id).delete()
        outbox_append(
            type=POST_DELETED,
            source=EVENT_SOURCE,
            data={"id": str(post_id)},
            request_id=current_request_id.get(),
        )
        transaction.on_commit(
            lambda: comments_client.comments_delete_of_post(post_id=post_id), robust=True
        )
