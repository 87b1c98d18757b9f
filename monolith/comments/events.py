"""Stage 3: the comment events the monolith consumes (blogbus.bus runs these
through the inbox: each one's effect and its inbox row commit together, so a
redelivered event changes nothing). Each reads only the fields it needs."""

from __future__ import annotations

import uuid

from django.db import connection

from blogbus.envelope import Envelope

from .models import CommentCount

_TABLE = CommentCount._meta.db_table

# One statement each, the same on PostgreSQL and SQLite: no read-then-write
# race between two workers.
_INCREMENT = (
    f"INSERT INTO {_TABLE} (post_id, count) VALUES (%s, 1) "  # noqa: S608 - a constant
    f"ON CONFLICT (post_id) DO UPDATE SET count = {_TABLE}.count + 1"
)
_DECREMENT = (
    f"UPDATE {_TABLE} SET count = CASE WHEN count > 0 THEN count - 1 ELSE 0 END "  # noqa: S608
    "WHERE post_id = %s"
)


def _post_id(envelope: Envelope):
    """The post id as the database stores it (uuid on PostgreSQL, hex text on
    SQLite)."""
    post_id = uuid.UUID(envelope.data["post_id"])
    return CommentCount._meta.pk.get_db_prep_value(post_id, connection)


def comment_created(envelope: Envelope) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_INCREMENT, [_post_id(envelope)])


def comment_deleted(envelope: Envelope) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_DECREMENT, [_post_id(envelope)])
