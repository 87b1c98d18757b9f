"""CloudEvents 1.0 structured-mode JSON envelope of every event on `blog.events`.

The envelope is deliberately small and strict on the way in: a consumer that
gets something that is not a CloudEvents 1.0 JSON object with an object
payload rejects it (dead letter) instead of guessing.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SPECVERSION = "1.0"
DATACONTENTTYPE = "application/json"
# Content type of a message whose body is a whole envelope (structured content mode);
# the CloudEvents AMQP/RabbitMQ bindings tell structured from binary mode by it.
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"

POST_CREATED = "post.created"
POST_DELETED = "post.deleted"
COMMENT_CREATED = "comment.created"
COMMENT_DELETED = "comment.deleted"
EVENT_TYPES = frozenset({POST_CREATED, POST_DELETED, COMMENT_CREATED, COMMENT_DELETED})

REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type", "time")
# Attributes the dataclass models; any other one (optional core attributes such
# as `subject`, or extensions) is kept in `extensions` and written back out.
MODELLED_ATTRIBUTES = frozenset({*REQUIRED_ATTRIBUTES, "datacontenttype", "data"})
# The request id travels as a CloudEvents extension attribute.
REQUEST_ID_ATTRIBUTE = "requestid"
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE
)


class EnvelopeError(ValueError):
    """The message is not a valid event envelope."""


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with exactly 3 fractional digits and a `Z`, as the HTTP contract."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: an event time must be timezone-aware")
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(value: str) -> datetime:
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise EnvelopeError(f"time is not an RFC 3339 timestamp: {value!r}")
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError as exc:
        raise EnvelopeError(f"time is not an RFC 3339 timestamp: {value!r}") from exc


@dataclass(frozen=True, slots=True)
class Envelope:
    id: str
    source: str
    type: str
    time: str
    data: dict[str, Any]
    requestid: str | None = None
    datacontenttype: str = DATACONTENTTYPE
    specversion: str = SPECVERSION
    extensions: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        *,
        type: str,
        source: str,
        data: dict[str, Any],
        request_id: str | None = None,
        id: str | None = None,
        time: datetime | None = None,
    ) -> Envelope:
        envelope = cls(
            id=id or str(uuid.uuid4()),
            source=source,
            type=type,
            time=format_time(time or datetime.now(UTC)),
            data=data,
            requestid=request_id or None,
        )
        return cls.from_dict(envelope.to_dict())  # one validation path for both directions

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time,
            "datacontenttype": self.datacontenttype,
        }
        if self.requestid:
            document[REQUEST_ID_ATTRIBUTE] = self.requestid
        document.update(self.extensions)
        document["data"] = self.data
        return document

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Envelope:
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EnvelopeError(f"not JSON: {exc}") from exc
        return cls.from_dict(document)

    @classmethod
    def from_dict(cls, document: Any) -> Envelope:
        if not isinstance(document, dict):
            raise EnvelopeError("an envelope is a JSON object")
        missing = [name for name in REQUIRED_ATTRIBUTES if name not in document]
        if missing:
            raise EnvelopeError(f"missing required attributes: {', '.join(missing)}")
        if document["specversion"] != SPECVERSION:
            raise EnvelopeError(f"unsupported specversion {document['specversion']!r}")
        for name in ("id", "source", "type"):
            value = document[name]
            if not isinstance(value, str) or not value.strip():
                raise EnvelopeError(f"{name} must be a non-empty string")
        parse_time(document["time"])
        datacontenttype = document.get("datacontenttype", DATACONTENTTYPE)
        if datacontenttype != DATACONTENTTYPE:
            raise EnvelopeError(f"unsupported datacontenttype {datacontenttype!r}")
        if "data" not in document or not isinstance(document["data"], dict):
            raise EnvelopeError("data must be a JSON object")
        requestid = document.get(REQUEST_ID_ATTRIBUTE)
        if requestid is not None and not isinstance(requestid, str):
            raise EnvelopeError("requestid must be a string")
        extensions = {}
        for name, value in document.items():
            if name in MODELLED_ATTRIBUTES or name == REQUEST_ID_ATTRIBUTE:
                continue
            if not _EXTENSION_NAME.match(name):
                raise EnvelopeError(f"invalid extension attribute name {name!r}")
            extensions[name] = value
        return cls(
            id=document["id"],
            source=document["source"],
            type=document["type"],
            time=document["time"],
            data=document["data"],
            requestid=requestid or None,
            datacontenttype=datacontenttype,
            extensions=extensions,
        )
