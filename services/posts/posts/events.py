"""Handlers of the comment events this service consumes (``COMMENT_COUNTS=async``).

Run by ``manage.py bus_consume --service posts`` (settings.BLOGBUS_CONSUMERS),
each inside ``blogbus.inbox.consume_once``: the counter's change and the inbox
row commit together, so a redelivered event changes nothing. A payload that
cannot be used raises: the bus retries it on this service's own queue, then
dead-letters it (``manage.py bus_replay_dead --service posts``).

Limits, by design of a counter: a ``comment.deleted`` that overtakes its own
``comment.created`` (a retried event, at-least-once and unordered) is clamped
at 0 and the later +1 stays. The public contract has no comment delete, so
the case needs a comment deleted within moments of its creation.
"""

from __future__ import annotations

import uuid

from django.db.models import F

from blogbus.envelope import Envelope

from .models import CommentCount, Post


def _post_id(envelope: Envelope) -> uuid.UUID:
    try:
        return uuid.UUID(str(envelope.data["post_id"]))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{envelope.type} {envelope.id}: no usable data.post_id") from exc


def on_comment_created(envelope: Envelope) -> None:
    """+1 on the post's counter; nothing for a post that is not (or no longer) here.

    The post row is locked first (FOR NO KEY UPDATE), which serialises the
    handlers of one post and waits for a concurrent delete of that post, so
    a counter row is never created for a deleted post.
    """
    post_id = _post_id(envelope)
    post = Post.objects.select_for_update(no_key=True).filter(pk=post_id).values_list("pk")
    if not list(post):
        return
    if not CommentCount.objects.filter(post_id=post_id).update(count=F("count") + 1):
        CommentCount.objects.create(post_id=post_id, count=1)


def on_comment_deleted(envelope: Envelope) -> None:
    """-1 on the post's counter, never below 0; no row (post gone, or no comment
    counted yet) means nothing to do."""
    post_id = _post_id(envelope)
    CommentCount.objects.filter(post_id=post_id, count__gt=0).update(count=F("count") - 1)
