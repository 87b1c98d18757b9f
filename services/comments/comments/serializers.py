from rest_framework import serializers

from blogweb.serializers import MillisecondDateTimeField, StrictCharField
from blogweb.timeutil import format_rfc3339_ms

BODY_MAX_LENGTH = 2_000


class CommentInputSerializer(serializers.Serializer):
    body = StrictCharField(max_length=BODY_MAX_LENGTH)


class CommentOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    post_id = serializers.UUIDField(read_only=True)
    body = serializers.CharField(read_only=True)
    created_at = MillisecondDateTimeField(read_only=True)

    def to_representation(self, comment):
        # Same fields and formats as declared, without DRF's per-field walk.
        return {
            "id": str(comment.id),
            "post_id": str(comment.post_id),
            "body": comment.body,
            "created_at": format_rfc3339_ms(comment.created_at),
        }
