import uuid

from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual

from blogweb.idempotency_model import IdempotencyKeyBase
from blogweb.timeutil import now_ms

TITLE_MAX_LENGTH = 200
BODY_MAX_LENGTH = 20_000


class Post(models.Model):
    """A post. Its comments live in the comments service; ``comment_count`` is
    attached per page by the selectors, it is not a column."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    body = models.TextField()
    created_at = models.DateTimeField(default=now_ms, editable=False)

    class Meta:
        indexes = [
            # The post list, newest first, reads a page straight off this index.
            models.Index(fields=["-created_at", "-id"], name="post_newest_first_idx"),
        ]
        constraints = [
            # The API validates first; these keep any other writer honest.
            models.CheckConstraint(condition=~models.Q(title=""), name="post_title_not_empty"),
            models.CheckConstraint(condition=~models.Q(body=""), name="post_body_not_empty"),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("body"), BODY_MAX_LENGTH),
                name="post_body_max_length",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class PostTotal(models.Model):
    """The number of posts, in one row that database triggers keep in step
    with every insert and delete on posts_post (migration 0002), whoever
    writes: the services, the data migration from the monolith, a factory in
    a test, the shell. The list's ``count`` then costs the same whatever the
    table size, where a ``COUNT(*)`` grows with it. The price: writers of
    posts queue on this row's lock until they commit."""

    SINGLETON_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID)
    posts = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="post_total_single_row"),
        ]

    def __str__(self) -> str:
        return f"{self.posts} posts"


class CommentCount(models.Model):
    """How many comments a post has, kept from the comments service's events
    (``comment.created`` +1, ``comment.deleted`` -1, never below 0) by
    ``posts.events`` through the inbox, so each event counts once. Read in
    ``COMMENT_COUNTS=async`` mode, one query per page. A post without a row
    has no comments; the row goes with its post (``services.post_delete``)."""

    post_id = models.UUIDField(primary_key=True)
    count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.post_id}: {self.count} comments"


class IdempotencyKey(IdempotencyKeyBase):
    """The Idempotency-Keys ``POST /api/posts/`` has answered, in the
    service's own database (the monolith has the same table in its own)."""
