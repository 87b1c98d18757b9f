"""The posts service's only door to the comments service (its internal
routes, never its database). Every call is bounded: COMMENTS_TIMEOUT_S per
attempt, one retry, then ``DependencyUnavailable("comments")``, which the
API turns into a JSON 503."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from django.conf import settings

from blogweb.exceptions import DependencyUnavailable
from blogweb.http import call_service

logger = logging.getLogger("posts.comments_client")

SERVICE = "comments"


def comment_counts(*, post_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Comments per post, for a whole page of posts in ONE request:
    ``POST /internal/comment-counts/ {"post_ids": [...]}`` answering
    ``{"counts": {"<uuid>": n}}``. Posts without comments may be absent."""
    if not post_ids:
        return {}
    response = call_service(
        SERVICE,
        "POST",
        f"{settings.COMMENTS_URL}/internal/comment-counts/",
        json={"post_ids": [str(post_id) for post_id in post_ids]},
        timeout=settings.COMMENTS_TIMEOUT_S,
    )
    if response.status_code != 200:
        logger.error("comment counts: unexpected status %s", response.status_code)
        raise DependencyUnavailable(SERVICE)
    try:
        counts = response.json()["counts"]
        return {uuid.UUID(post_id): _count(n) for post_id, n in counts.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        # A reply we cannot read is as useless as no reply: 503, not 500.
        logger.exception("comment counts: unreadable reply")
        raise DependencyUnavailable(SERVICE) from None


def _count(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not a count: {value!r}")
    return value


def comments_delete_of_post(*, post_id: uuid.UUID) -> bool:
    """Asks the comments service to delete a deleted post's comments:
    ``DELETE /internal/posts/{id}/comments/``. Best effort, never raises: the
    post is gone already, and its comments are unreachable anyway because
    every comment route looks the post up first. Returns whether the comments
    service confirmed. (The post.deleted event makes this reliable later.)"""
    try:
        response = call_service(
            SERVICE,
            "DELETE",
            f"{settings.COMMENTS_URL}/internal/posts/{post_id}/comments/",
            timeout=settings.COMMENTS_TIMEOUT_S,
        )
    except DependencyUnavailable:
        logger.warning(
            "comments of deleted post %s not deleted: comments service unavailable",
            post_id,
            extra={"post_id": str(post_id)},
        )
        return False
    # 404: the comments service knows no comment of this post; nothing to do.
    if response.status_code in (200, 202, 204, 404):
        return True
    logger.warning(
        "comments of deleted post %s not deleted: status %s",
        post_id,
        response.status_code,
        extra={"post_id": str(post_id), "status": response.status_code},
    )
    return False
