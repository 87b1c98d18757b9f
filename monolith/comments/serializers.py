from rest_framework import serializers

from monolith.core.serializers import MillisecondDateTimeField, StrictCharField

from .models import BODY_MAX_LENGTH


class CommentInputSerializer(serializers.Serializer):
    body = StrictCharField(max_length=BODY_MAX_LENGTH)


class CommentOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    post_id = serializers.UUIDField(read_only=True)
    body = serializers.CharField(read_only=True)
    created_at = MillisecondDateTimeField(read_only=True)
