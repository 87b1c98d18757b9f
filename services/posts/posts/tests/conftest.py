"""Fixtures of the posts service's tests: an API client and a fake comments
service the code under test reaches over real HTTP."""

import pytest
from rest_framework.test import APIClient

from posts.tests import fake_comments


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
    return _comments_server


@pytest.fixture
def sync_counts(settings) -> None:
    """COMMENT_COUNTS=sync, said by the tests that need it (the service's
    default is async): comment_count asked of the comments service, one
    batch call per page."""
    settings.COMMENT_COUNTS = "sync"
