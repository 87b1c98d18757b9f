"""Serializer fields that hold the contract where DRF's defaults do not."""

from rest_framework import serializers

from .timeutil import format_rfc3339_ms


class StrictCharField(serializers.CharField):
    """A CharField that rejects numbers and booleans instead of turning them
    into strings ("title": 12345 is a 400, not the title "12345")."""

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class MillisecondDateTimeField(serializers.DateTimeField):
    """RFC 3339 UTC with exactly three fractional digits and a Z."""

    def to_representation(self, value):
        return format_rfc3339_ms(value)


class ErrorSerializer(serializers.Serializer):
    """The body of every non-field error: 404, 405, 411, 413, 415, 503..."""

    detail = serializers.CharField()
