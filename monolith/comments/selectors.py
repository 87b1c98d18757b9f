from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db.models import Count, QuerySet

from .models import Comment


def comment_list(*, post_id: uuid.UUID) -> QuerySet[Comment]:
    """A post's comments, oldest first (ties broken by id, as in every stage)."""
    return Comment.objects.filter(post_id=post_id).order_by("created_at", "id")


def comment_counts(*, post_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    post_ids = list(post_ids)
    if not post_ids:
        return {}
    rows = (
        Comment.objects.filter(post_id__in=post_ids)
        .order_by()
        .values_list("post_id")
        .annotate(n=Count("*"))
    )
    return dict(rows)
