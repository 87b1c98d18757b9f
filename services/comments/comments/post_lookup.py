"""Does a post exist? The one seam through which comments learns it.

POST_LOOKUP=sync asks the posts service over HTTP (posts_client). The async
mode (a local replica of posts fed by post.created / post.deleted events, with
tombstones, and a sync read-through on a miss) plugs in here later; until then
CommentsConfig.ready() refuses to start with it.
"""

from __future__ import annotations

import uuid

from django.conf import settings

from . import posts_client


def post_exists(post_id: uuid.UUID) -> bool:
    if settings.POST_LOOKUP == "sync":
        return posts_client.post_exists(post_id)
    raise NotImplementedError(f"POST_LOOKUP={settings.POST_LOOKUP} is not implemented")
