"""Inbox: a consumer records each event it applied, in the same transaction as its effects.

Add `"blogbus.inbox"` to INSTALLED_APPS and wrap every handler with
`blogbus.inbox.services.consume_once()`.
"""
