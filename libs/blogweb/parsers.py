"""The JSON parser of the contract.

DRF's JSONParser reads the request stream itself, so Django's
DATA_UPLOAD_MAX_MEMORY_SIZE never applies to it, and it accepts any JSON
value as a body. This one reads at most the limit, whatever the stream
announces, and accepts only a JSON object.
"""

import json

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser

from .middleware import DEFAULT_BODY_MAX_BYTES


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "request_too_large"


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = getattr(settings, "REQUEST_BODY_MAX_BYTES", DEFAULT_BODY_MAX_BYTES)
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(f"Request body exceeds {limit} bytes.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)
        except LookupError:  # a codec that is not a text encoding: charset=hex, rot13...
            raise UnsupportedMediaType(
                media_type or "", f"Unsupported charset {encoding!r}."
            ) from None
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        except RecursionError as exc:  # "[[[[..." nested past Python's stack
            raise ParseError("JSON parse error - nested too deeply.") from exc
        if not isinstance(data, dict):
            raise ParseError(f"Expected a JSON object, got {type(data).__name__}.")
        return data


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")
