import uuid

from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual

from blogweb.timeutil import now_ms

BODY_MAX_LENGTH = 2_000


class Comment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Referenced by label, not imported: comments knows posts only through
    # monolith.posts.api. related_name="+" gives Post no reverse accessor, so
    # posts code cannot reach into comments through the ORM either.
    post = models.ForeignKey(
        "posts.Post", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    body = models.TextField()
    created_at = models.DateTimeField(default=now_ms, editable=False)

    class Meta:
        indexes = [
            # A post's comments, oldest first, and the per-post counts.
            models.Index(fields=["post", "created_at", "id"], name="comment_post_oldest_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=~models.Q(body=""), name="comment_body_not_empty"),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("body"), BODY_MAX_LENGTH),
                name="comment_body_max_length",
            ),
        ]

    def __str__(self) -> str:
        return self.body[:50]


# >>> stage 3: a counter kept from comment events
class CommentCount(models.Model):
    """How many comments a post has at the comments service, kept from
    comment.created / comment.deleted events (monolith/comments/events.py),
    so that the post list needs no call per page."""

    post_id = models.UUIDField(primary_key=True)
    count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.post_id}: {self.count}"
        # <<< stage 3
