"""The client of the comments service's internal routes, against a fake
comments server over real HTTP."""

import logging
import uuid

import pytest

from blogweb.exceptions import DependencyUnavailable
from blogweb.requestid import current_request_id
from posts import comments_client

from .conftest import OWN_TOKEN


def test_counts_for_a_page_are_one_call_with_every_id(comments_service):
    ids = [uuid.uuid4() for _ in range(100)]
    comments_service.counts = {str(ids[0]): 3, str(ids[99]): 7}
    assert comments_client.comment_counts(post_ids=ids) == {ids[0]: 3, ids[99]: 7}
    [call] = comments_service.requests
    assert call.path == "/internal/comment-counts/"
    assert call.json == {"post_ids": [str(i) for i in ids]}
    assert call.headers["authorization"] == f"Bearer posts.{OWN_TOKEN}"


def test_a_full_page_goes_in_the_body_not_the_request_line(comments_service):
    # 100 ids in a query string would pass gunicorn's request-line limit
    # (4094 bytes); in a JSON body they are one short request line.
    ids = [uuid.uuid4() for _ in range(100)]
    comments_client.comment_counts(post_ids=ids)
    [call] = comments_service.requests
    assert call.request_line == "POST /internal/comment-counts/ HTTP/1.1"
    assert call.json == {"post_ids": [str(i) for i in ids]}


def test_no_ids_no_call(comments_service):
    assert comments_client.comment_counts(post_ids=[]) == {}
    assert comments_service.requests == []


def test_the_request_id_goes_along(comments_service):
    token = current_request_id.set("req-7")
    try:
        comments_client.comment_counts(post_ids=[uuid.uuid4()])
    finally:
        current_request_id.reset(token)
    assert comments_service.requests[0].headers["x-request-id"] == "req-7"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b"not json"),
        (200, b'{"nope": {}}'),
        (200, b'{"counts": []}'),
        (200, b'{"counts": {"not-a-uuid": 1}}'),
        (200, b'{"counts": {"6f1c5a52-0a57-4a4f-9a57-5f8ea4c7a0e1": "3"}}'),
        (200, b'{"counts": {"6f1c5a52-0a57-4a4f-9a57-5f8ea4c7a0e1": -1}}'),
        (400, b'{"detail": "bad"}'),
        (404, b'{"detail": "Not found."}'),
        (500, b'{"detail": "boom"}'),
        (503, b'{"detail": "down"}'),
    ],
)
def test_a_reply_that_cannot_be_used_is_dependency_unavailable(comments_service, status, body):
    comments_service.status, comments_service.raw_body = status, body
    with pytest.raises(DependencyUnavailable) as raised:
        comments_client.comment_counts(post_ids=[uuid.uuid4()])
    assert raised.value.dependency == "comments"


def test_a_5xx_is_retried_once(comments_service):
    comments_service.status, comments_service.raw_body = 502, b"{}"
    with pytest.raises(DependencyUnavailable):
        comments_client.comment_counts(post_ids=[uuid.uuid4()])
    assert len(comments_service.count_calls()) == 2


def test_delete_of_a_posts_comments(comments_service):
    post_id = uuid.uuid4()
    assert comments_client.comments_delete_of_post(post_id=post_id) is True
    [call] = comments_service.requests
    assert (call.method, call.path) == ("DELETE", f"/internal/posts/{post_id}/comments/")
    assert call.headers["authorization"] == f"Bearer posts.{OWN_TOKEN}"


@pytest.mark.parametrize(
    ("status", "confirmed"), [(404, True), (401, False), (403, False), (409, False), (500, False)]
)
def test_delete_never_raises_and_logs_what_it_could_not_do(
    comments_service, caplog, status, confirmed
):
    comments_service.status, comments_service.raw_body = status, b"{}"
    with caplog.at_level(logging.WARNING, logger="posts.comments_client"):
        assert comments_client.comments_delete_of_post(post_id=uuid.uuid4()) is confirmed
    assert bool(caplog.records) is not confirmed


@pytest.mark.parametrize("status", [401, 403])
def test_counts_refused_by_the_comments_service_are_unavailable(comments_service, status):
    comments_service.status, comments_service.raw_body = status, b'{"detail": "refused"}'
    with pytest.raises(DependencyUnavailable):
        comments_client.comment_counts(post_ids=[uuid.uuid4()])
    assert len(comments_service.count_calls()) == 1  # an answer: not retried
