"""What a client can try from the public entry point, at every stage, mode,
profile and gateway (`make parity` runs this with the rest of the suite):

- the services' internal routes cannot be reached however the path is
  spelt, and trying changes nothing;
- a create retried with the same ``Idempotency-Key`` creates once and
  answers the first response again; the same key with another body is a 422;
  a malformed key is a 400; none of the refusals stores anything.
"""

from __future__ import annotations

import http.client
import json
import uuid
from urllib.parse import urlsplit

import pytest
from contract_support import (
    HTTP_TIMEOUT,
    ApiClient,
    assert_json_error,
    assert_status,
    assert_stores_no_post,
    json_body,
    unique,
)

pytestmark = pytest.mark.contract

REPLAYED = "Idempotent-Replayed"

# The internal delete of a post's comments, spelt as path tricks spell it.
# Sent as raw bytes: an HTTP library would tidy some of these up first.
INTERNAL_SPELLINGS = (
    "/internal/posts/{post}/comments/",
    "//internal/posts/{post}/comments/",
    "/./internal/posts/{post}/comments/",
    "/api/../internal/posts/{post}/comments/",
    "/%69nternal/posts/{post}/comments/",
    "/internal%2fposts/{post}/comments/",
    "/INTERNAL/posts/{post}/comments/",
    "/internal/posts/{post}/comments",
)


def raw_request(base_url: str, method: str, target: str) -> tuple[int, dict, bytes]:
    """One request with ``target`` sent exactly as written."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=HTTP_TIMEOUT)
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", parts.netloc)
        connection.putheader("Content-Length", "0")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def comment_ids(api: ApiClient, post_id: str) -> set[str]:
    resp = api.get(f"/api/posts/{post_id}/comments/")
    assert_status(resp, 200)
    return {c["id"] for c in json_body(resp)["results"]}


@pytest.mark.parametrize("spelling", INTERNAL_SPELLINGS)
def test_the_internal_routes_are_out_of_reach_and_trying_changes_nothing(
    api: ApiClient, base_url: str, poll_until, spelling: str
) -> None:
    post = api.create_post(title=unique("internal"))
    comment = api.create_comment(post["id"])
    status, headers, body = raw_request(base_url, "DELETE", spelling.format(post=post["id"]))
    assert 400 <= status < 500, f"{spelling}: {status} {body[:200]!r}"
    assert headers.get("Content-Type", "").startswith("application/json"), (spelling, headers)
    assert "detail" in json.loads(body), body[:200]
    # Nothing was deleted: the post and its comment are still there.
    assert comment_ids(api, post["id"]) == {comment["id"]}
    # Its count, eventually consistent in async mode, reaches 1 and stays there.
    poll_until(lambda: api.get_post(post["id"])["comment_count"], until=lambda n: n == 1)


def test_the_internal_post_lookup_is_out_of_reach(api: ApiClient, base_url: str) -> None:
    post = api.create_post(title=unique("internal"))
    for spelling in ("/internal/posts/{post}/", "//internal/posts/{post}/"):
        status, _, body = raw_request(base_url, "GET", spelling.format(post=post["id"]))
        # 404 from a gateway or a component without the route; 401 from a
        # component that has it, without the caller's credential.
        assert status in (401, 403, 404), f"{spelling}: {status} {body[:200]!r}"
        assert "detail" in json.loads(body), body[:200]


# -- Idempotency-Key ------------------------------------------------------------


def test_a_post_retried_with_its_key_is_created_once(api: ApiClient) -> None:
    key = str(uuid.uuid4())
    marker = unique("idempotent post")
    payload = {"title": marker, "body": "b"}
    first = api.post("/api/posts/", json=payload, headers={"Idempotency-Key": key})
    assert_status(first, 201)
    again = api.post("/api/posts/", json=payload, headers={"Idempotency-Key": key})
    assert_status(again, 201)
    assert json_body(again) == json_body(first)
    assert again.headers.get(REPLAYED) == "true"
    assert REPLAYED not in first.headers
    # One post holds the marker (exact even with other clients writing).
    assert [p["id"] for p in api.posts_containing(marker)] == [json_body(first)["id"]]


def test_a_comment_retried_with_its_key_is_created_once(api: ApiClient) -> None:
    post = api.create_post(title=unique("idempotent comments"))
    key = str(uuid.uuid4())
    path = f"/api/posts/{post['id']}/comments/"
    first = api.post(path, json={"body": "once"}, headers={"Idempotency-Key": key})
    assert_status(first, 201)
    again = api.post(path, json={"body": "once"}, headers={"Idempotency-Key": key})
    assert_status(again, 201)
    assert json_body(again)["id"] == json_body(first)["id"]
    assert again.headers.get(REPLAYED) == "true"
    assert comment_ids(api, post["id"]) == {json_body(first)["id"]}


def test_a_key_reused_with_another_body_is_a_422_and_stores_nothing(api: ApiClient) -> None:
    post = api.create_post(title=unique("idempotent reuse"))
    key = str(uuid.uuid4())
    path = f"/api/posts/{post['id']}/comments/"
    first = api.post(path, json={"body": "first"}, headers={"Idempotency-Key": key})
    assert_status(first, 201)
    other = api.post(path, json={"body": "second"}, headers={"Idempotency-Key": key})
    assert_json_error(other, 422)
    assert comment_ids(api, post["id"]) == {json_body(first)["id"]}


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9".encode().decode("latin-1")])
def test_a_malformed_key_is_a_400_and_stores_nothing(api: ApiClient, key: str) -> None:
    marker = unique("bad key")

    def send():
        return api.post(
            "/api/posts/",
            json={"title": marker, "body": "b"},
            headers={"Idempotency-Key": key},
        )

    assert_json_error(assert_stores_no_post(api, send, marker), 400)
