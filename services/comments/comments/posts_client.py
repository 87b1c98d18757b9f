"""The owner of posts (POSTS_URL), asked over HTTP whether a post exists:
``GET /internal/posts/{id}/``, 200 or 404.

A bounded call: POSTS_TIMEOUT_S per attempt and one retry (blogweb.http), so an
owner of posts that is down or hangs costs about a second and becomes a JSON
503, never a hang. The request id travels with the call.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings

from blogweb.exceptions import DependencyUnavailable
from blogweb.http import call_service

logger = logging.getLogger("comments.posts_client")

DEPENDENCY = "posts"


def post_exists(post_id: uuid.UUID) -> bool:
    if not isinstance(post_id, uuid.UUID):
        raise TypeError(f"expected a uuid.UUID, got {type(post_id).__name__}")
    response = call_service(
        DEPENDENCY,
        "GET",
        f"{settings.POSTS_URL}/internal/posts/{post_id}/",
        timeout=settings.POSTS_TIMEOUT_S,
        retries=1,
    )
    if response.status_code == 200:
        return True
    if response.status_code == 404:
        return False
    # Any other answer breaks the internal contract; no guess either way.
    logger.error("posts answered %s for post %s", response.status_code, post_id)
    raise DependencyUnavailable(DEPENDENCY)
