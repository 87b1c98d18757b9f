"""Where ``comment_count`` comes from: the seam between the two modes.

- ``COMMENT_COUNTS=sync`` (now): one batch call to the comments service per
  page of posts (never one per post).
- ``COMMENT_COUNTS=async`` (with the event bus): a counter in the posts
  database kept from comment.created / comment.deleted events; ``counts_for``
  will read it with one query and the callers will not change.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from . import comments_client


def counts_for(post_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Comments per post; posts without comments may be absent (count 0).
    Raises ``DependencyUnavailable`` when the source cannot answer."""
    return comments_client.comment_counts(post_ids=post_ids)
