from blogweb.idempotency_model import IdempotencyKeyBase


class IdempotencyKey(IdempotencyKeyBase):
    """The Idempotency-Keys of the monolith's create routes (posts, and
    comments per post), in the monolith's database."""
