"""Helpers for the black-box contract suite.

Speaks only HTTP (``requests``); imports nothing from the project, so the same
suite runs unchanged against the monolith (stage 0) and against the gateway in
front of the services (stages 1-4).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests

TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

POST_KEYS = {"id", "title", "body", "created_at", "comment_count"}
COMMENT_KEYS = {"id", "post_id", "body", "created_at"}
LIST_KEYS = {"count", "next", "previous", "results"}

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
TITLE_MAX = 200
POST_BODY_MAX = 20_000
COMMENT_BODY_MAX = 2_000
# Comfortably above 1 MB whichever way "MB" is counted (10^6 or 2^20 bytes).
OVERSIZED_BYTES = 1_200_000

# The contract's 5 s, times the one factor every suite's deadlines share
# (TEST_TIME_SCALE; read here, not imported: this suite imports no project code).
CONVERGENCE_SECONDS = 5.0 * float(os.environ.get("TEST_TIME_SCALE") or 1)
# Tolerated clock difference between this machine and the server.
CLOCK_SKEW = timedelta(seconds=120)
HTTP_TIMEOUT = 15


def unique(prefix: str = "contract") -> str:
    """A short unique marker used to find (or not find) our own data."""
    return f"{prefix} {uuid.uuid4().hex}"


def now_utc() -> datetime:
    return datetime.now(UTC)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_uuid(value: Any) -> bool:
    return isinstance(value, str) and UUID_RE.match(value) is not None


def _is_link(value: Any) -> bool:
    return value is None or isinstance(value, str)


def parse_timestamp(value: Any) -> datetime:
    ok = isinstance(value, str) and TIMESTAMP_RE.match(value) is not None
    assert ok, f"timestamp {value!r} is not RFC 3339 UTC with exactly 3 fractional digits and Z"
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def assert_recent(value: str, before: datetime, after: datetime) -> None:
    ts = parse_timestamp(value)
    assert before - CLOCK_SKEW <= ts <= after + CLOCK_SKEW, (
        f"created_at {value} is not close to the request time ({before.isoformat()})"
    )


def describe(resp: requests.Response) -> str:
    req = resp.request
    return (
        f"{req.method} {req.url} -> {resp.status_code} "
        f"[{resp.headers.get('Content-Type')}] {resp.text[:600]!r}"
    )


def is_json_media(resp: requests.Response) -> bool:
    media = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def json_body(resp: requests.Response) -> Any:
    assert is_json_media(resp), f"expected a JSON content type: {describe(resp)}"
    try:
        return resp.json()
    except ValueError as exc:  # pragma: no cover - message only
        raise AssertionError(f"body is not valid JSON: {describe(resp)}") from exc


def assert_status(resp: requests.Response, *expected: int) -> None:
    assert resp.status_code in expected, f"expected {expected}: {describe(resp)}"


def assert_error_shape(body: Any, resp: requests.Response | None = None) -> None:
    """``{"detail": "..."}`` or ``{"field": ["...", ...], ...}``."""
    where = describe(resp) if resp is not None else repr(body)
    assert isinstance(body, dict), f"error body must be a JSON object: {where}"
    assert body, f"error body must not be empty: {where}"
    if "detail" in body:
        assert _is_text(body["detail"]), f"bad detail: {where}"
        return
    for field, messages in body.items():
        assert isinstance(messages, list), f"{field!r} must map to a list: {where}"
        assert messages, f"{field!r} has no messages: {where}"
        assert all(_is_text(m) for m in messages), f"bad messages: {where}"


def assert_json_error(resp: requests.Response, status: int) -> Any:
    assert_status(resp, status)
    body = json_body(resp)
    assert_error_shape(body, resp)
    return body


def assert_detail_error(resp: requests.Response, status: int) -> str:
    assert_status(resp, status)
    body = json_body(resp)
    detail = body.get("detail") if isinstance(body, dict) else None
    assert _is_text(detail), f'expected {{"detail": "..."}}: {describe(resp)}'
    return detail


def assert_field_errors(resp: requests.Response, fields: set[str]) -> dict:
    """400 whose JSON object names exactly ``fields``, each with a list of messages."""
    assert_status(resp, 400)
    body = json_body(resp)
    assert isinstance(body, dict), f"expected a JSON object: {describe(resp)}"
    assert set(body) == fields, f"expected errors for {sorted(fields)}: {describe(resp)}"
    assert_error_shape(body, resp)
    return body


def assert_post_shape(post: Any) -> None:
    assert isinstance(post, dict), f"post: {post!r}"
    assert set(post) == POST_KEYS, f"post fields: {post!r}"
    assert _is_uuid(post["id"]), f"post id: {post['id']!r}"
    assert isinstance(post["title"], str), f"title: {post['title']!r}"
    assert 1 <= len(post["title"]) <= TITLE_MAX, f"title length: {post['title']!r}"
    assert isinstance(post["body"], str), f"body: {post['body']!r}"
    assert 1 <= len(post["body"]) <= POST_BODY_MAX, "body length"
    parse_timestamp(post["created_at"])
    assert _is_count(post["comment_count"]), f"comment_count: {post['comment_count']!r}"


def assert_comment_shape(comment: Any) -> None:
    assert isinstance(comment, dict), f"comment: {comment!r}"
    assert set(comment) == COMMENT_KEYS, f"comment fields: {comment!r}"
    assert _is_uuid(comment["id"]), f"comment id: {comment['id']!r}"
    assert _is_uuid(comment["post_id"]), f"comment post_id: {comment['post_id']!r}"
    assert isinstance(comment["body"], str), f"body: {comment['body']!r}"
    assert 1 <= len(comment["body"]) <= COMMENT_BODY_MAX, "body length"
    parse_timestamp(comment["created_at"])


def assert_list_shape(body: Any) -> None:
    assert isinstance(body, dict), f"list envelope: {str(body)[:300]}"
    assert set(body) == LIST_KEYS, f"list envelope: {str(body)[:300]}"
    assert _is_count(body["count"]), f"count: {body['count']!r}"
    assert _is_link(body["next"]), f"next: {body['next']!r}"
    assert _is_link(body["previous"]), f"previous: {body['previous']!r}"
    assert isinstance(body["results"], list), "results must be a list"


def host_port(url: str) -> tuple[str, str | None, int]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme, -1)
    return parts.scheme, parts.hostname, parts.port or default


def assert_same_origin(link: str, base_url: str) -> None:
    assert link.startswith(("http://", "https://")), f"link {link!r} is not absolute"
    assert host_port(link) == host_port(base_url), (
        f"link {link!r} does not keep the scheme/host/port of {base_url!r}"
    )


def poll_until(
    fn: Callable[[], Any],
    until: Callable[[Any], bool] = bool,
    timeout: float = CONVERGENCE_SECONDS,
    interval: float = 0.1,
    what: str = "condition",
) -> Any:
    """Call ``fn`` until ``until(value)`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if until(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout:g}s; last value: {value!r}")
        time.sleep(interval)


class ApiClient:
    """A thin ``requests.Session`` wrapper that never follows redirects."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.created_post_ids: list[str] = []

    # -- raw HTTP -----------------------------------------------------------
    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + path

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(method, self.url(path), **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    # -- domain helpers -----------------------------------------------------
    def create_post(self, title: str | None = None, body: str | None = None, **extra: Any) -> dict:
        payload = {
            "title": title if title is not None else unique("contract post"),
            "body": body if body is not None else "contract body",
            **extra,
        }
        resp = self.post("/api/posts/", json=payload)
        assert_status(resp, 201)
        post = json_body(resp)
        assert_post_shape(post)
        self.created_post_ids.append(post["id"])
        return post

    def create_comment(self, post_id: str, body: str | None = None, **extra: Any) -> dict:
        payload = {"body": body if body is not None else unique("contract comment"), **extra}
        resp = self.post(f"/api/posts/{post_id}/comments/", json=payload)
        assert_status(resp, 201)
        comment = json_body(resp)
        assert_comment_shape(comment)
        return comment

    def get_post(self, post_id: str) -> dict:
        resp = self.get(f"/api/posts/{post_id}/")
        assert_status(resp, 200)
        post = json_body(resp)
        assert_post_shape(post)
        return post

    def list_posts(self, **params: Any) -> dict:
        resp = self.get("/api/posts/", params=params)
        assert_status(resp, 200)
        body = json_body(resp)
        assert_list_shape(body)
        return body

    def list_comments(self, post_id: str, **params: Any) -> dict:
        resp = self.get(f"/api/posts/{post_id}/comments/", params=params)
        assert_status(resp, 200)
        body = json_body(resp)
        assert_list_shape(body)
        return body

    def post_count(self) -> int:
        return self.list_posts(page_size=1)["count"]

    def ensure_post_count(self, minimum: int) -> int:
        """Create filler posts until at least ``minimum`` posts exist."""
        count = self.post_count()
        for _ in range(max(0, minimum - count)):
            self.create_post(title=unique("contract filler"), body="filler")
        return max(count, minimum)

    def list_posts_with_at_least(self, minimum: int, **params: Any) -> dict:
        """A posts page fetched while at least ``minimum`` posts exist.

        Retried because other clients sharing the server may delete posts
        between the filling and the listing.
        """
        for _ in range(3):
            self.ensure_post_count(minimum)
            page = self.list_posts(**params)
            if page["count"] >= minimum:
                return page
        raise AssertionError(f"could not keep {minimum} posts on the server: count={page['count']}")

    def newest_posts(self) -> list[dict]:
        return self.list_posts(page_size=MAX_PAGE_SIZE)["results"]

    def posts_containing(self, marker: str) -> list[dict]:
        """Posts among the newest page whose title or body carries ``marker``."""
        return [
            p
            for p in self.newest_posts()
            if marker in p.get("title", "") or marker in p.get("body", "")
        ]

    def all_comments(self, post_id: str, page_size: int | None = None) -> list[dict]:
        params = {"page_size": page_size} if page_size else {}
        body = self.list_comments(post_id, **params)
        comments = list(body["results"])
        seen = 0
        while body["next"]:
            seen += 1
            assert seen < 1000, "pagination does not terminate"
            resp = self.get(body["next"])
            assert_status(resp, 200)
            body = json_body(resp)
            assert_list_shape(body)
            comments.extend(body["results"])
        return comments

    def cleanup(self) -> None:
        for post_id in self.created_post_ids:
            with contextlib.suppress(requests.RequestException):
                self.delete(f"/api/posts/{post_id}/", timeout=5)
        self.created_post_ids.clear()

    def close(self) -> None:
        self.session.close()


def assert_stores_no_post(
    api: ApiClient, send: Callable[[], requests.Response], marker: str | None, attempts: int = 3
) -> requests.Response:
    """Send a bad request and check that no post appeared.

    Checks the unique marker (exact even when other clients write concurrently)
    and the total count; the count check is retried because other clients may
    share the server.
    """
    resp = None
    for _ in range(attempts):
        before = api.post_count()
        resp = send()
        after = api.post_count()
        if marker is not None:
            stored = api.posts_containing(marker)
            assert not stored, f"a rejected request stored a post: {stored!r} ({describe(resp)})"
        if after == before:
            return resp
    raise AssertionError(
        f"post count changed on each of {attempts} attempts after a rejected request: "
        f"{describe(resp)}"
    )


def assert_stores_no_comment(
    api: ApiClient, post_id: str, send: Callable[[], requests.Response]
) -> requests.Response:
    before = api.list_comments(post_id)["count"]
    resp = send()
    after = api.list_comments(post_id)
    assert after["count"] == before, (
        f"a rejected request stored a comment: {after!r} ({describe(resp)})"
    )
    return resp
