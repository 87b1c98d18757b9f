from rest_framework import serializers

from blogweb.serializers import MillisecondDateTimeField, StrictCharField
from blogweb.timeutil import format_rfc3339_ms

from .models import BODY_MAX_LENGTH, TITLE_MAX_LENGTH


class PostInputSerializer(serializers.Serializer):
    title = StrictCharField(max_length=TITLE_MAX_LENGTH)
    body = StrictCharField(max_length=BODY_MAX_LENGTH)


class PostOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    title = serializers.CharField(read_only=True)
    body = serializers.CharField(read_only=True)
    created_at = MillisecondDateTimeField(read_only=True)
    comment_count = serializers.IntegerField(read_only=True)

    def to_representation(self, post):
        # The post list renders this for every row of every page: a plain dict
        # with the declared fields and formats, without DRF's per-field walk.
        return {
            "id": str(post.id),
            "title": post.title,
            "body": post.body,
            "created_at": format_rfc3339_ms(post.created_at),
            "comment_count": post.comment_count,
        }


class PostReferenceSerializer(serializers.Serializer):
    """The internal answer to the comments service: that the post exists."""

    id = serializers.UUIDField(read_only=True)
    created_at = MillisecondDateTimeField(read_only=True)

    def to_representation(self, reference):
        return {"id": str(reference.id), "created_at": format_rfc3339_ms(reference.created_at)}
