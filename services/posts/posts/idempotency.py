"""The store of ``POST /api/posts/``'s Idempotency-Key (rules: blogweb.idempotency)."""

from blogweb.idempotency import SqlStore

from .models import IdempotencyKey

STORE = SqlStore(IdempotencyKey)
