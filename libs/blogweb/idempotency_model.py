"""The table behind ``blogweb.idempotency.SqlStore``, as an abstract model:
each app that serves a create route on a SQL database declares its own
concrete model from it (the monolith's ``monolith.idempotency``, the posts
service's ``posts``), so each owns its table and migrations, and the columns
stay one definition. (A module of its own: a model class needs the app
registry, which ``blogweb.idempotency`` does not.)"""

from django.db import models
from django.utils import timezone

from .idempotency import MAX_KEY_LENGTH


class IdempotencyKeyBase(models.Model):
    """An Idempotency-Key a create route has answered: the first request's
    fingerprint and response, inserted in the same transaction as what it
    created. Unique per (scope, key): the scope is the route (``posts``, or
    ``comments:<post id>``)."""

    scope = models.CharField(max_length=100)
    key = models.CharField(max_length=MAX_KEY_LENGTH)
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        abstract = True
        db_table = "idempotency_key"
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key_scope_key"),
        ]
        indexes = [
            # The purge of expired keys.
            models.Index(fields=["expires_at"], name="idempotency_key_expires_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"
