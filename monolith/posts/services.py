"""Writes of posts."""

from __future__ import annotations

import uuid

from django.conf import settings  # [stage 3]
from django.db import transaction

from blogbus.envelope import POST_CREATED, POST_DELETED  # [stage 3]
from blogbus.outbox.services import outbox_append  # [stage 3]
from blogweb.requestid import current_request_id  # [stage 3]
from blogweb.timeutil import format_rfc3339_ms  # [stage 3]
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
    # >>> stage 3: post.created, in the same transaction (the outbox)
    _publish(
        POST_CREATED,
        {"id": str(post.id), "title": post.title, "created_at": format_rfc3339_ms(post.created_at)},
    )
    # <<< stage 3
    post.comment_count = 0
    return post


@transaction.atomic
def post_delete(*, post_id: uuid.UUID) -> None:
    """Deletes the post, and tells comments (through its api): in this
    database the foreign key's cascade takes the comments along."""
    deleted, _ = Post.objects.filter(pk=post_id).delete()
    if not deleted:
        raise PostNotFound(str(post_id))
    _publish(POST_DELETED, {"id": str(post_id)})  # [stage 3]
    comments_api.post_deleted(post_id=post_id)


# >>> stage 3: the transactional outbox
def _publish(event_type: str, data: dict) -> None:
    """With PUBLISH_EVENTS, the event goes into the outbox in the caller's
    transaction, so the change and its event commit together (the relay
    publishes it)."""
    if settings.PUBLISH_EVENTS:
        outbox_append(
            type=event_type, source="/monolith", data=data, request_id=current_request_id.get()
        )
    # <<< stage 3
