from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db import connection
from django.db.models import Count, QuerySet

from .models import (
    Comment,
    CommentCount,  # [stage 3]
)


def comment_list(*, post_id: uuid.UUID) -> QuerySet[Comment]:
    """A post's comments, oldest first (ties broken by id, as in every stage)."""
    return Comment.objects.filter(post_id=post_id).order_by("created_at", "id")


def comment_counts(*, post_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Comments per post for a page of posts, in one aggregate query."""
    post_ids = list(post_ids)
    if not post_ids:
        return {}
    if connection.vendor == "postgresql":
        return _comment_counts_postgresql(post_ids)
    return _comment_counts_orm(post_ids)


def _comment_counts_postgresql(post_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    # The post list runs this on every request. One array parameter keeps the
    # SQL text the same for every page size, so psycopg prepares it once per
    # connection, and there is no IN list for the ORM to compile each time.
    with connection.cursor() as cursor:
        cursor.execute(_COUNTS_SQL, [post_ids])
        return dict(cursor.fetchall())


def _comment_counts_orm(post_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = (
        Comment.objects.filter(post_id__in=post_ids)
        .order_by()
        .values_list("post_id")
        .annotate(n=Count("*"))
    )
    return dict(rows)


_COUNTS_SQL = (
    f"SELECT post_id, COUNT(*) FROM {Comment._meta.db_table} "  # noqa: S608 - a constant
    "WHERE post_id = ANY(%s) GROUP BY post_id"
)


# >>> stage 3: counts kept from comment events
def comment_counts_kept(*, post_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """The counts kept from comment events, for a page in one query."""
    post_ids = list(post_ids)
    if not post_ids:
        return {}
    return dict(CommentCount.objects.filter(post_id__in=post_ids).values_list("post_id", "count"))


def comment_count_forget(*, post_id: uuid.UUID) -> None:
    CommentCount.objects.filter(post_id=post_id).delete()
    # <<< stage 3
