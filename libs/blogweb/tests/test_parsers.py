import io

import pytest
from rest_framework.exceptions import ParseError, UnsupportedMediaType

from blogweb.parsers import LimitedJSONParser, RequestTooLarge


def parse(raw: bytes):
    return LimitedJSONParser().parse(io.BytesIO(raw), "application/json", {})


def test_parses_an_object():
    assert parse(b'{"title": "x"}') == {"title": "x"}


def test_a_stream_over_the_limit_is_refused_without_reading_it_all(settings):
    settings.REQUEST_BODY_MAX_BYTES = 10
    stream = io.BytesIO(b'{"title": "' + b"x" * 100 + b'"}')
    with pytest.raises(RequestTooLarge):
        LimitedJSONParser().parse(stream, "application/json", {})
    assert stream.tell() == 11


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"12", b"null", b"true"])
def test_only_objects_are_accepted(raw):
    with pytest.raises(ParseError, match="Expected a JSON object"):
        parse(raw)


@pytest.mark.parametrize(
    "raw",
    [b"{", b"{'a': 1}", b'{"a": NaN}', b'{"a": Infinity}', b"\xff", b'{"a": ' + b"[" * 100_000],
)
def test_invalid_json_is_a_parse_error(raw):
    with pytest.raises(ParseError):
        parse(raw)


@pytest.mark.parametrize("charset", ["hex", "rot13", "base64", "zlib"])
def test_a_charset_that_is_no_text_encoding_is_415(charset):
    """Python knows these codecs, but they turn bytes into bytes: no JSON text."""
    with pytest.raises(UnsupportedMediaType):
        LimitedJSONParser().parse(
            io.BytesIO(b'{"title": "x"}'), "application/json", {"encoding": charset}
        )
