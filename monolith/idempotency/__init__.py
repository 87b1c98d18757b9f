"""The monolith's Idempotency-Key store: one table for both create routes,
written in the transaction of the creation (rules: blogweb.idempotency)."""
