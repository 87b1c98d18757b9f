"""What the rest of the monolith may know about posts: the seam.

Other apps (comments) call these functions and get plain dataclasses, never
Post models: the line along which a later step can cut, keeping these
signatures and replacing what is behind them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from . import selectors


@dataclass(frozen=True, slots=True)
class PostInfo:
    id: uuid.UUID
    title: str
    created_at: datetime


def post_exists(*, post_id: uuid.UUID) -> bool:
    return selectors.post_exists(post_id=post_id)


def post_info(*, post_id: uuid.UUID) -> PostInfo | None:
    post = selectors.post_find(post_id=post_id)
    if post is None:
        return None
    return PostInfo(id=post.id, title=post.title, created_at=post.created_at)


# >>> stage 3: the counters are rebuilt post by post
def post_ids() -> list[uuid.UUID]:
    """Every post's id, oldest first (for tooling that walks all posts)."""
    return selectors.post_ids()
    # <<< stage 3
