"""Where ``comment_count`` comes from: the seam between the two modes.

- ``COMMENT_COUNTS=sync``: one batch call to the comments service per page
  of posts (never one per post).
- ``COMMENT_COUNTS=async`` (the default): the counter in this database kept from
  comment.created / comment.deleted events (``posts.events``), read with one
  query per page; the comments service is never called, so the post routes
  keep serving while it is down.

The setting is read at each call (tests switch it with ``settings``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction

from . import comments_client
from .models import CommentCount, Post


def counts_for(post_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Comments per post; posts without comments may be absent (count 0).
    Raises ``DependencyUnavailable`` when the source cannot answer."""
    if settings.COMMENT_COUNTS == "async":
        return dict(
            CommentCount.objects.filter(post_id__in=post_ids).values_list("post_id", "count")
        )
    return comments_client.comment_counts(post_ids=post_ids)


def rebuild(post_ids: Sequence[uuid.UUID]) -> int:
    """Sets the async counter of these posts to what the comments service
    counts now (one batch call), in one transaction: a row per post with
    comments, none for the others. Returns the comments counted.

    Absolute values, so running it again changes nothing; but it is only right
    while no comment event is in flight: run it with comment writes paused and
    ``posts.blog-events`` drained (``manage.py comment_counts_rebuild``).
    Raises ``DependencyUnavailable`` when the comments service cannot answer."""
    counts = comments_client.comment_counts(post_ids=post_ids)
    with transaction.atomic():
        # Locked like the event handlers do: a post deleted meanwhile gets no row.
        alive = set(
            Post.objects.select_for_update(no_key=True)
            .filter(pk__in=post_ids)
            .values_list("pk", flat=True)
        )
        counted = {post_id: n for post_id, n in counts.items() if n > 0 and post_id in alive}
        CommentCount.objects.filter(post_id__in=post_ids).exclude(post_id__in=counted).delete()
        CommentCount.objects.bulk_create(
            [CommentCount(post_id=post_id, count=n) for post_id, n in counted.items()],
            update_conflicts=True,
            unique_fields=["post_id"],
            update_fields=["count"],
        )
    return sum(counts.values())
