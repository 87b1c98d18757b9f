"""What the rest of the monolith may know about comments: the seam.

The posts app asks here for comment counts. In stage 2 these functions become
one batch HTTP call to the comments service; in stage 3 a local counter fed
by comment events.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from . import selectors


def comment_counts(*, post_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Number of comments of each post, in one query; posts without comments
    are absent from the result."""
    return selectors.comment_counts(post_ids=post_ids)
