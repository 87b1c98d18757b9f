from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from blogbus.envelope import Envelope, format_time


class OutboxEvent(models.Model):
    """One event waiting for (or done with) its publication on the bus."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"

    # The bigserial id is the relay's order: creation order within one database.
    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source = models.CharField(max_length=200)
    type = models.CharField(max_length=100)
    time = models.DateTimeField()
    request_id = models.CharField(max_length=200, blank=True, default="")
    data = models.JSONField()
    routing_key = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    # A failed event waits until then, so a few unroutable ones cannot starve the rest.
    available_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "blogbus_outbox_event"
        indexes = [
            # The relay's claim: pending rows in id order (a small partial index).
            models.Index(
                fields=["id"],
                condition=models.Q(status="pending"),
                name="blogbus_outbox_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id} ({self.status})"

    def envelope(self) -> Envelope:
        return Envelope(
            id=str(self.event_id),
            source=self.source,
            type=self.type,
            time=format_time(self.time),
            data=self.data,
            requestid=self.request_id or None,
        )
