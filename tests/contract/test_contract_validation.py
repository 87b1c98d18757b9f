"""Bad input: per-field 400s, no coercion, invalid JSON, wrong content type, oversized bodies.

Every rejected request is checked to have stored nothing.
"""

from __future__ import annotations

import json

import pytest
from contract_support import (
    COMMENT_BODY_MAX,
    OVERSIZED_BYTES,
    POST_BODY_MAX,
    TITLE_MAX,
    ApiClient,
    assert_detail_error,
    assert_error_shape,
    assert_field_errors,
    assert_status,
    assert_stores_no_comment,
    assert_stores_no_post,
    describe,
    json_body,
    unique,
)

pytestmark = pytest.mark.contract

WRONG_TYPES = [
    pytest.param(12345, id="int"),
    pytest.param(0, id="zero"),
    pytest.param(1.5, id="float"),
    pytest.param(True, id="true"),
    pytest.param(False, id="false"),
    pytest.param(["a"], id="list"),
    pytest.param([], id="empty-list"),
    pytest.param({"$gt": ""}, id="mongo-gt"),
    pytest.param({"$ne": None}, id="mongo-ne"),
]


def pad(marker: str, length: int, fill: str = "x") -> str:
    """``marker`` followed by ``fill`` up to exactly ``length`` characters."""
    assert len(marker) <= length
    return marker + fill * (length - len(marker))


# -- posts: per-field errors ----------------------------------------------------


POST_BAD_PAYLOADS = [
    pytest.param(lambda m: {"body": m}, {"title"}, id="missing-title"),
    pytest.param(lambda m: {"title": m}, {"body"}, id="missing-body"),
    pytest.param(lambda m: {}, {"title", "body"}, id="empty-object"),
    pytest.param(lambda m: {"title": "", "body": m}, {"title"}, id="empty-title"),
    pytest.param(lambda m: {"title": " \t\n  ", "body": m}, {"title"}, id="blank-title"),
    pytest.param(lambda m: {"title": m, "body": ""}, {"body"}, id="empty-body"),
    pytest.param(lambda m: {"title": m, "body": " \n\t "}, {"body"}, id="blank-body"),
    pytest.param(lambda m: {"title": None, "body": m}, {"title"}, id="null-title"),
    pytest.param(lambda m: {"title": m, "body": None}, {"body"}, id="null-body"),
    pytest.param(lambda m: {"title": pad(m, TITLE_MAX + 1), "body": m}, {"title"}, id="title-201"),
    pytest.param(
        lambda m: {"title": pad(m, TITLE_MAX + 1, "é"), "body": m},
        {"title"},
        id="title-201-unicode",
    ),
    pytest.param(
        lambda m: {"title": m, "body": pad(m, POST_BODY_MAX + 1)}, {"body"}, id="body-20001"
    ),
    pytest.param(lambda m: {"title": "", "body": ""}, {"title", "body"}, id="both-empty"),
]


@pytest.mark.parametrize(("build", "fields"), POST_BAD_PAYLOADS)
def test_post_validation_errors_are_per_field(api: ApiClient, build, fields: set) -> None:
    marker = unique("invalid")
    payload = build(marker)
    resp = assert_stores_no_post(api, lambda: api.post("/api/posts/", json=payload), marker)
    assert_field_errors(resp, fields)


@pytest.mark.parametrize("value", WRONG_TYPES)
@pytest.mark.parametrize("field", ["title", "body"])
def test_post_wrong_types_are_rejected_not_coerced(api: ApiClient, field: str, value) -> None:
    marker = unique("wrongtype")
    payload = {"title": marker, "body": marker, field: value}
    resp = assert_stores_no_post(api, lambda: api.post("/api/posts/", json=payload), marker)
    assert_field_errors(resp, {field})


@pytest.mark.parametrize(
    ("title", "body"),
    [
        pytest.param(TITLE_MAX, 1, id="title-200"),
        pytest.param(1, POST_BODY_MAX, id="body-20000"),
    ],
)
def test_post_length_limits_are_inclusive(api: ApiClient, title: int, body: int) -> None:
    marker = unique("limit")
    t = pad(marker, title) if title >= len(marker) else "t"
    b = pad(marker, body) if body >= len(marker) else "b"
    post = api.create_post(title=t, body=b)
    assert (len(post["title"]), len(post["body"])) == (title, body)


def test_post_title_limit_counts_characters_not_bytes(api: ApiClient) -> None:
    marker = unique("chars")
    post = api.create_post(title=pad(marker, TITLE_MAX, "é"))
    assert len(post["title"]) == TITLE_MAX


# -- posts: request-level errors ------------------------------------------------


INVALID_JSON = [
    pytest.param(lambda m: b'{"title": "' + m + b'", "body": "b"', id="truncated"),
    pytest.param(lambda m: b"{'title': '" + m + b"', 'body': 'b'}", id="single-quotes"),
    pytest.param(lambda m: b'{"title": "' + m + b'", "body": "b",}', id="trailing-comma"),
    pytest.param(lambda m: b"title=" + m, id="not-json"),
    pytest.param(lambda m: b'{"title": "' + m + b'\xff\xfe", "body": "b"}', id="invalid-utf8"),
    pytest.param(
        lambda m: b'{"title": "' + m + b'", "body": ' + b"[" * 100_000, id="deeply-nested"
    ),
]


@pytest.mark.parametrize("build", INVALID_JSON)
def test_post_invalid_json_is_400_detail(api: ApiClient, build) -> None:
    marker = unique("badjson")
    data = build(marker.encode())
    resp = assert_stores_no_post(
        api,
        lambda: api.post("/api/posts/", data=data, headers={"Content-Type": "application/json"}),
        marker,
    )
    assert_detail_error(resp, 400)


def test_post_empty_json_body_is_400(api: ApiClient) -> None:
    resp = assert_stores_no_post(
        api,
        lambda: api.post("/api/posts/", data=b"", headers={"Content-Type": "application/json"}),
        None,
    )
    assert_status(resp, 400)
    assert_error_shape(json_body(resp), resp)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda m: [{"title": m, "body": m}], id="array"),
        pytest.param(lambda m: m, id="string"),
        pytest.param(lambda m: 42, id="number"),
        pytest.param(lambda m: None, id="null"),
        pytest.param(lambda m: True, id="true"),
    ],
)
def test_post_non_object_json_is_400_with_object_body(api: ApiClient, build) -> None:
    marker = unique("notobject")
    data = json.dumps(build(marker)).encode()
    resp = assert_stores_no_post(
        api,
        lambda: api.post("/api/posts/", data=data, headers={"Content-Type": "application/json"}),
        marker,
    )
    assert_status(resp, 400)
    assert_error_shape(json_body(resp), resp)


WRONG_CONTENT_TYPES = [
    pytest.param(
        lambda p: {"data": json.dumps(p).encode(), "headers": {"Content-Type": "text/plain"}},
        id="text-plain",
    ),
    pytest.param(lambda p: {"data": p}, id="form-urlencoded"),
    pytest.param(lambda p: {"files": {"f": ("x.txt", b"x")}, "data": p}, id="multipart"),
    pytest.param(
        lambda p: {
            "data": b"<post><title>x</title></post>",
            "headers": {"Content-Type": "application/xml"},
        },
        id="xml",
    ),
]


@pytest.mark.parametrize("kwargs", WRONG_CONTENT_TYPES)
def test_post_wrong_content_type_is_415(api: ApiClient, kwargs) -> None:
    marker = unique("mediatype")
    request_kwargs = kwargs({"title": marker, "body": marker})
    resp = assert_stores_no_post(api, lambda: api.post("/api/posts/", **request_kwargs), marker)
    assert_detail_error(resp, 415)


@pytest.mark.parametrize("charset", ["hex", "rot13", "base64", "no-such-codec"])
def test_post_with_an_odd_charset_is_a_4xx_and_stores_nothing(api: ApiClient, charset) -> None:
    """A charset that names no text encoding (Python has bytes-to-bytes codecs
    such as hex) is refused, never a 500; an unknown one may be read as UTF-8."""
    marker = unique("charset")
    data = json.dumps({"title": marker, "body": marker}).encode()
    headers = {"Content-Type": f"application/json; charset={charset}"}
    send = lambda: api.post("/api/posts/", data=data, headers=headers)  # noqa: E731
    if charset == "no-such-codec":
        resp = send()
        assert_status(resp, 201, 400, 415)
        if resp.status_code == 201:
            api.created_post_ids.append(json_body(resp)["id"])
        return
    resp = assert_stores_no_post(api, send, marker)
    assert_status(resp, 400, 415)
    assert_error_shape(json_body(resp), resp)


def test_post_without_content_type_is_rejected(api: ApiClient) -> None:
    marker = unique("nomedia")
    data = json.dumps({"title": marker, "body": marker}).encode()
    # requests sends no Content-Type for raw bytes.
    resp = assert_stores_no_post(api, lambda: api.post("/api/posts/", data=data), marker)
    assert resp.request.headers.get("Content-Type") is None
    assert_status(resp, 400, 415)
    assert_error_shape(json_body(resp), resp)


def oversized_post_payload(marker: str) -> bytes:
    data = json.dumps({"title": marker, "body": "x" * OVERSIZED_BYTES}).encode()
    assert len(data) > OVERSIZED_BYTES
    return data


def test_post_body_over_1mb_is_413_detail(api: ApiClient) -> None:
    marker = unique("huge")
    data = oversized_post_payload(marker)
    resp = assert_stores_no_post(
        api,
        lambda: api.post("/api/posts/", data=data, headers={"Content-Type": "application/json"}),
        marker,
    )
    assert_detail_error(resp, 413)


def test_post_body_over_1mb_chunked_is_rejected(api: ApiClient) -> None:
    # No Content-Length: the server can only find out by reading. Whatever it
    # answers must be a JSON 4xx and nothing may be stored.
    marker = unique("hugechunked")
    data = oversized_post_payload(marker)

    def send():
        chunks = (data[i : i + 65536] for i in range(0, len(data), 65536))
        return api.post("/api/posts/", data=chunks, headers={"Content-Type": "application/json"})

    resp = assert_stores_no_post(api, send, marker)
    assert 400 <= resp.status_code < 500, describe(resp)
    assert_error_shape(json_body(resp), resp)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"title": "nul \x00 char", "body": "b"}, id="nul-in-title"),
        pytest.param({"title": "t", "body": "nul \x00 char"}, id="nul-in-body"),
        pytest.param({"title": "lone \udc80 surrogate", "body": "b"}, id="lone-surrogate"),
    ],
)
def test_post_odd_strings_never_5xx(api: ApiClient, payload: dict) -> None:
    # The contract does not say whether these are valid; it does say no 5xx.
    data = json.dumps(payload).encode()  # ensure_ascii keeps the escapes as JSON text
    resp = api.post("/api/posts/", data=data, headers={"Content-Type": "application/json"})
    assert_status(resp, 201, 400)
    body = json_body(resp)
    if resp.status_code == 201:
        api.created_post_ids.append(body["id"])
    else:
        assert_error_shape(body, resp)


# -- comments -------------------------------------------------------------------


COMMENT_BAD_PAYLOADS = [
    pytest.param({}, id="missing-body"),
    pytest.param({"body": ""}, id="empty-body"),
    pytest.param({"body": "  \n\t "}, id="blank-body"),
    pytest.param({"body": None}, id="null-body"),
    pytest.param({"body": "c" * (COMMENT_BODY_MAX + 1)}, id="body-2001"),
    pytest.param({"body": "é" * (COMMENT_BODY_MAX + 1)}, id="body-2001-unicode"),
]


@pytest.mark.parametrize("payload", COMMENT_BAD_PAYLOADS)
def test_comment_validation_errors_are_per_field(api: ApiClient, post: dict, payload: dict) -> None:
    url = f"/api/posts/{post['id']}/comments/"
    resp = assert_stores_no_comment(api, post["id"], lambda: api.post(url, json=payload))
    assert_field_errors(resp, {"body"})


@pytest.mark.parametrize("value", WRONG_TYPES)
def test_comment_wrong_types_are_rejected_not_coerced(api: ApiClient, post: dict, value) -> None:
    url = f"/api/posts/{post['id']}/comments/"
    resp = assert_stores_no_comment(api, post["id"], lambda: api.post(url, json={"body": value}))
    assert_field_errors(resp, {"body"})


def test_comment_body_limit_is_inclusive(api: ApiClient, post: dict) -> None:
    comment = api.create_comment(post["id"], body="c" * COMMENT_BODY_MAX)
    assert len(comment["body"]) == COMMENT_BODY_MAX


@pytest.mark.parametrize("build", INVALID_JSON)
def test_comment_invalid_json_is_400_detail(api: ApiClient, post: dict, build) -> None:
    url = f"/api/posts/{post['id']}/comments/"
    data = build(b"x").replace(b'"title"', b'"body"')
    resp = assert_stores_no_comment(
        api,
        post["id"],
        lambda: api.post(url, data=data, headers={"Content-Type": "application/json"}),
    )
    assert_detail_error(resp, 400)


@pytest.mark.parametrize(
    "value", [[{"body": "x"}], "x", 42, None], ids=["array", "string", "number", "null"]
)
def test_comment_non_object_json_is_400_with_object_body(api: ApiClient, post: dict, value) -> None:
    url = f"/api/posts/{post['id']}/comments/"
    data = json.dumps(value).encode()
    resp = assert_stores_no_comment(
        api,
        post["id"],
        lambda: api.post(url, data=data, headers={"Content-Type": "application/json"}),
    )
    assert_status(resp, 400)
    assert_error_shape(json_body(resp), resp)


@pytest.mark.parametrize("kwargs", WRONG_CONTENT_TYPES)
def test_comment_wrong_content_type_is_415(api: ApiClient, post: dict, kwargs) -> None:
    url = f"/api/posts/{post['id']}/comments/"
    request_kwargs = kwargs({"body": "x"})
    resp = assert_stores_no_comment(api, post["id"], lambda: api.post(url, **request_kwargs))
    assert_detail_error(resp, 415)


def test_comment_body_over_1mb_is_413_detail(api: ApiClient, post: dict) -> None:
    url = f"/api/posts/{post['id']}/comments/"
    data = json.dumps({"body": "x" * OVERSIZED_BYTES}).encode()
    resp = assert_stores_no_comment(
        api,
        post["id"],
        lambda: api.post(url, data=data, headers={"Content-Type": "application/json"}),
    )
    assert_detail_error(resp, 413)


def test_rejected_comments_leave_comment_count_alone(api: ApiClient, post: dict) -> None:
    url = f"/api/posts/{post['id']}/comments/"
    for payload in ({"body": 12345}, {"body": ""}, {"body": {"$gt": ""}}):
        assert_status(api.post(url, json=payload), 400)
    assert api.get_post(post["id"])["comment_count"] == 0
    assert api.list_comments(post["id"])["count"] == 0
