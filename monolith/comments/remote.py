"""The comments service, seen from the monolith (stage 2 on): the other side
of the branch by abstraction behind monolith/comments/api.py. Every call is
bounded and retried once (blogweb.http); a service that cannot answer is a
fast JSON 503 for the monolith's client."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from django.conf import settings

from blogweb.exceptions import DependencyUnavailable
from blogweb.http import call_service

logger = logging.getLogger("monolith.comments.remote")

SERVICE = "comments"


def comment_counts(*, post_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """One call for a whole page: POST /internal/comment-counts/."""
    post_ids = list(post_ids)
    if not post_ids:
        return {}
    response = call_service(
        SERVICE,
        "POST",
        f"{settings.COMMENTS_URL}/internal/comment-counts/",
        json={"post_ids": [str(post_id) for post_id in post_ids]},
        timeout=settings.COMMENTS_TIMEOUT_S,
    )
    try:
        if response.status_code != 200:
            raise ValueError(f"status {response.status_code}")
        counts = response.json()["counts"]
        return {uuid.UUID(key): int(value) for key, value in counts.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        logger.exception("comment counts: unusable reply from the comments service")
        raise DependencyUnavailable(SERVICE) from None


def comments_delete_of_post(*, post_id: uuid.UUID) -> bool:
    """DELETE /internal/posts/{id}/comments/. Best effort: the post is gone
    already, and its comments are unreachable (the comments service looks
    the post up on every comment route). Returns whether it was confirmed."""
    try:
        response = call_service(
            SERVICE,
            "DELETE",
            f"{settings.COMMENTS_URL}/internal/posts/{post_id}/comments/",
            timeout=settings.COMMENTS_TIMEOUT_S,
        )
    except DependencyUnavailable:
        logger.warning("comments of deleted post %s not deleted: service unavailable", post_id)
        return False
    return response.status_code in (200, 202, 204, 404)
