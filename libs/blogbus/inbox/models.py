from django.db import models
from django.utils import timezone


class InboxEvent(models.Model):
    """An event this consumer has applied; its (source, event_id) is never applied again."""

    source = models.CharField(max_length=200)
    event_id = models.CharField(max_length=200)
    type = models.CharField(max_length=100)
    applied_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "blogbus_inbox_event"
        constraints = [
            models.UniqueConstraint(
                fields=["source", "event_id"], name="blogbus_inbox_source_event_id_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.source} {self.event_id}"
