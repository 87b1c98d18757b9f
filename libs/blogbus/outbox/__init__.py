"""Transactional outbox: events are rows written in the producer's own transaction.

Add `"blogbus.outbox"` to INSTALLED_APPS, call
`blogbus.outbox.services.outbox_append()` inside the `transaction.atomic()`
that makes the state change, and run `manage.py outbox_relay`.
"""
