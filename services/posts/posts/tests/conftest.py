"""Fixtures of the posts service's tests: an API client and a fake comments
service the code under test reaches over real HTTP. The service has a token of
its own for those calls, and accepts the comments service on its internal
route (``caller``: the test client with that credential)."""

import secrets

import pytest
from rest_framework.test import APIClient

from blogweb.internal import authorization, caller_entry, parse_callers
from posts.tests import fake_comments

# This service's token (for its calls), and the comments service's (its caller).
OWN_TOKEN = secrets.token_urlsafe(32)
CALLER = "comments"
CALLER_TOKEN = secrets.token_urlsafe(32)


@pytest.fixture
def client_api() -> APIClient:
    return APIClient()


@pytest.fixture(scope="session")
def _comments_server():
    service = fake_comments.FakeCommentsService()
    server = fake_comments.start(service)
    yield service
    server.stop()


@pytest.fixture(autouse=True)
def comments_service(_comments_server, settings) -> fake_comments.FakeCommentsService:
    """Every test talks to a fresh-looking fake comments service."""
    _comments_server.reset()
    settings.COMMENTS_URL = _comments_server.url
    settings.INTERNAL_TOKEN = OWN_TOKEN
    settings.INTERNAL_CALLERS = parse_callers(caller_entry(CALLER, CALLER_TOKEN))
    return _comments_server


@pytest.fixture
def caller(client):
    """The test client, calling as the comments service (a caller the service accepts)."""
    client.defaults["HTTP_AUTHORIZATION"] = authorization(CALLER, CALLER_TOKEN)
    return client


@pytest.fixture
def sync_counts(settings) -> None:
    """COMMENT_COUNTS=sync, said by the tests that need it (the service's
    default is async): comment_count asked of the comments service, one
    batch call per page."""
    settings.COMMENT_COUNTS = "sync"
