import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import jsonschema
import pytest

from blogbus.envelope import (
    COMMENT_CREATED,
    COMMENT_DELETED,
    EVENT_TYPES,
    POST_CREATED,
    POST_DELETED,
    Envelope,
    EnvelopeError,
    format_time,
)
from blogbus.schemas import load_schema

TIME_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def make_document(**changes):
    document = Envelope.new(
        type=POST_CREATED,
        source="/monolith",
        data={"id": str(uuid.uuid4()), "title": "Hello", "created_at": "2026-11-25T18:30:00.120Z"},
        request_id="req-1",
    ).to_dict()
    document.update(changes)
    return document


def test_event_types_are_the_four_of_the_architecture():
    assert {POST_CREATED, POST_DELETED, COMMENT_CREATED, COMMENT_DELETED} == EVENT_TYPES
    assert POST_CREATED == "post.created"
    assert COMMENT_DELETED == "comment.deleted"


def test_new_envelope_has_every_attribute_and_round_trips_through_json():
    envelope = Envelope.new(
        type=COMMENT_CREATED,
        source="/services/comments",
        data={"id": "a", "post_id": "b", "created_at": "2026-11-25T18:30:00.000Z"},
        request_id="f" * 32,
    )
    document = json.loads(envelope.to_json())
    assert document["specversion"] == "1.0"
    assert uuid.UUID(document["id"])
    assert document["source"] == "/services/comments"
    assert document["type"] == "comment.created"
    assert TIME_FORMAT.match(document["time"])
    assert document["datacontenttype"] == "application/json"
    assert document["requestid"] == "f" * 32
    assert document["data"]["post_id"] == "b"
    assert Envelope.from_json(envelope.to_json()) == envelope
    assert Envelope.from_json(envelope.to_json().encode()) == envelope


def test_without_request_id_the_attribute_is_left_out():
    envelope = Envelope.new(type=POST_DELETED, source="/monolith", data={"id": "x"})
    assert "requestid" not in envelope.to_dict()
    assert Envelope.from_json(envelope.to_json()).requestid is None


def test_unknown_extensions_and_optional_attributes_are_kept():
    document = make_document(subject="posts/1", traceparent="00-abc-def-01")
    envelope = Envelope.from_dict(document)
    assert envelope.extensions == {"subject": "posts/1", "traceparent": "00-abc-def-01"}
    assert json.loads(envelope.to_json()) == document


def test_time_is_utc_with_exactly_milliseconds():
    moment = datetime(2026, 11, 25, 20, 30, 0, 123987, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(moment) == "2026-11-25T18:30:00.123Z"
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000Z"
    with pytest.raises(ValueError, match="naive"):
        format_time(datetime(2026, 1, 2, 3, 4, 5))


@pytest.mark.parametrize("attribute", ["specversion", "id", "source", "type", "time"])
def test_missing_required_attribute_is_rejected(attribute):
    document = make_document()
    del document[attribute]
    with pytest.raises(EnvelopeError, match=attribute):
        Envelope.from_dict(document)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"specversion": "0.3"}, "specversion"),
        ({"specversion": 1.0}, "specversion"),
        ({"id": ""}, "id"),
        ({"source": 12}, "source"),
        ({"type": "   "}, "type"),
        ({"time": "yesterday"}, "time"),
        ({"time": "2026-11-25 18:30:00"}, "time"),
        ({"datacontenttype": "text/xml"}, "datacontenttype"),
        ({"data": ["not", "an", "object"]}, "data"),
        ({"data": "text"}, "data"),
        ({"data": None}, "data"),
        ({"requestid": 42}, "requestid"),
        ({"Bad-Name": 1}, "extension"),
    ],
)
def test_invalid_attribute_is_rejected(changes, message):
    with pytest.raises(EnvelopeError, match=message):
        Envelope.from_dict(make_document(**changes))


def test_missing_data_is_rejected():
    document = make_document()
    del document["data"]
    with pytest.raises(EnvelopeError, match="data"):
        Envelope.from_dict(document)


@pytest.mark.parametrize("raw", ["", "not json", "[1, 2]", '"text"', "null", b"\xff\xfe"])
def test_non_object_json_is_rejected(raw):
    with pytest.raises(EnvelopeError):
        Envelope.from_json(raw)


def test_new_validates_what_it_builds():
    with pytest.raises(EnvelopeError, match="data"):
        Envelope.new(type=POST_CREATED, source="/monolith", data=["x"])
    with pytest.raises(EnvelopeError, match="source"):
        Envelope.new(type=POST_CREATED, source="", data={})


SAMPLE_ID = "3f0c2a8e-9b7d-4e1a-8c55-2d6f0e9b1a47"
OTHER_ID = "7d2f9f5e-4c1b-4d8e-9a51-0d7c3e5b8a11"
SAMPLES = {
    POST_CREATED: {"id": SAMPLE_ID, "title": "Hello", "created_at": "2026-11-25T18:30:00.123Z"},
    POST_DELETED: {"id": SAMPLE_ID},
    COMMENT_CREATED: {
        "id": SAMPLE_ID,
        "post_id": OTHER_ID,
        "created_at": "2026-11-25T18:30:00.123Z",
    },
    COMMENT_DELETED: {"id": SAMPLE_ID, "post_id": OTHER_ID},
}


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_payload_schema_accepts_a_sample_and_added_fields(event_type):
    schema = load_schema(event_type)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate({**SAMPLES[event_type], "added_later": True}, schema)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_payload_schema_requires_every_documented_field(event_type):
    schema = load_schema(event_type)
    assert set(schema["required"]) == set(SAMPLES[event_type])
    for field in SAMPLES[event_type]:
        payload = {key: value for key, value in SAMPLES[event_type].items() if key != field}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(payload, schema)


def test_payload_schema_rejects_bad_values():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**SAMPLES[POST_CREATED], "title": ""}, load_schema(POST_CREATED))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"id": "not-a-uuid"}, load_schema(POST_DELETED))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {**SAMPLES[COMMENT_CREATED], "created_at": "2026-11-25T18:30:00Z"},
            load_schema(COMMENT_CREATED),
        )
