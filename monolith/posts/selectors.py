"""Reads of posts. comment_count is not a column: it comes from the comments
app, through its api, in one aggregate per page."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.db import connection

from monolith.comments import api as comments_api

from .models import Post, PostTotal


class NewestFirstPosts:
    """All posts, newest first, as the paginator sees them: ``count()`` reads
    the trigger-kept total (O(1), where ``COUNT(*)`` grows with the table) and
    a slice is one page. Ties (the same millisecond) are broken by id, so that
    every stage orders them the same way.

    The post list is the hottest path of the API. Its SQL is written out
    once: the text is the same for every page, so psycopg prepares it once per
    connection, and no ORM query is compiled per request.
    """

    def count(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(_TOTAL_SQL, [PostTotal.SINGLETON_ID])
            row = cursor.fetchone()
        return row[0] if row else 0

    def __getitem__(self, page: slice) -> list[Post]:
        return list(Post.objects.raw(_PAGE_SQL, [page.stop - page.start, page.start]))


def post_list() -> NewestFirstPosts:
    return NewestFirstPosts()


def post_total() -> int:
    """How many posts there are, read from the kept total: O(1)."""
    return NewestFirstPosts().count()


_TOTAL_SQL = f"SELECT posts FROM {PostTotal._meta.db_table} WHERE id = %s"  # noqa: S608
_PAGE_SQL = (
    f"SELECT id, title, body, created_at FROM {Post._meta.db_table} "  # noqa: S608
    "ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s"
)


# >>> stage 3: every post's id, for the counters' rebuild
def post_ids() -> list[uuid.UUID]:
    return list(Post.objects.order_by("created_at", "id").values_list("id", flat=True))
    # <<< stage 3


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
