"""The store of the monolith's create routes (posts and comments)."""

from blogweb.idempotency import SqlStore

from .models import IdempotencyKey

STORE = SqlStore(IdempotencyKey)
