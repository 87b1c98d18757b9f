"""Reads of posts. comment_count is not a column: it comes from the comments
app, through its api, in one aggregate per page."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.db import connection
from django.db.models import QuerySet

from monolith.comments import api as comments_api

from .models import Post, PostTotal


def post_list() -> QuerySet[Post]:
    """All posts, newest first; ties (same millisecond) broken by id so that
    every stage orders them the same way."""
    return Post.objects.order_by("-created_at", "-id")


def post_total() -> int:
    """How many posts there are, read from the kept total: O(1)."""
    # Plain SQL: every list request runs it, and the ORM would spend longer
    # compiling this one-row lookup than the database spends answering it.
    with connection.cursor() as cursor:
        cursor.execute(_TOTAL_SQL, [PostTotal.SINGLETON_ID])
        row = cursor.fetchone()
    return row[0] if row else 0


_TOTAL_SQL = f"SELECT posts FROM {PostTotal._meta.db_table} WHERE id = %s"  # noqa: S608


def post_find(*, post_id: uuid.UUID) -> Post | None:
    return Post.objects.filter(pk=post_id).first()


def post_exists(*, post_id: uuid.UUID) -> bool:
    return Post.objects.filter(pk=post_id).exists()


def post_attach_comment_counts(*, posts: Sequence[Post]) -> Sequence[Post]:
    """Sets ``comment_count`` on each post with one query for the whole page,
    never one per post."""
    counts = comments_api.comment_counts(post_ids=[post.id for post in posts])
    for post in posts:
        post.comment_count = counts.get(post.id, 0)
    return posts


def post_get_with_comment_count(*, post_id: uuid.UUID) -> Post | None:
    post = post_find(post_id=post_id)
    if post is not None:
        post_attach_comment_counts(posts=[post])
    return post
