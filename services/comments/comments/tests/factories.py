"""Comments written straight through the repository, with chosen timestamps."""

from __future__ import annotations

import uuid
from datetime import datetime

from blogweb.timeutil import now_ms
from comments import repository


def make_comment(
    *, post_id: uuid.UUID, body: str = "a comment", created_at: datetime | None = None
) -> repository.CommentRecord:
    return repository.comment_insert(
        comment_id=uuid.uuid4(),
        post_id=post_id,
        body=body,
        created_at=created_at or now_ms(),
    )
