"""The comments service down, in sync mode (COMMENT_COUNTS=sync, set for
every test here): the routes that need comment counts answer a fast JSON 503;
everything else keeps working. (Async, nothing notices: test_events.py.)"""

import logging
import time

import pytest

from posts.models import Post
from posts.tests import fake_comments
from posts.tests.factories import PostFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sync_counts")]

DEADLINE_S = 1.5


@pytest.fixture(params=["dead", "hung"])
def comments_unreachable(request, settings):
    """dead: connections refused. hung: connections accepted, never answered
    (only the timeout ends the wait)."""
    if request.param == "dead":
        settings.COMMENTS_URL = fake_comments.dead_url()
        yield
        return
    listener = fake_comments.hung_listener()
    settings.COMMENTS_URL = f"http://127.0.0.1:{listener.getsockname()[1]}"
    yield
    listener.close()


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


@pytest.mark.usefixtures("comments_unreachable")
def test_routes_needing_counts_get_a_fast_json_503(client):
    post = PostFactory()
    for path in ("/api/posts/", f"/api/posts/{post.id}/"):
        response, elapsed = timed(lambda path=path: client.get(path))
        assert response.status_code == 503
        assert response.json() == {"detail": "Service unavailable: comments is not reachable."}
        assert response["Retry-After"] == "1"
        assert response["X-Served-By"] == "posts"
        assert elapsed < DEADLINE_S, f"{path} took {elapsed:.2f}s"


@pytest.mark.usefixtures("comments_unreachable")
def test_create_and_the_internal_lookup_keep_working(client, caller):
    response, elapsed = timed(
        lambda: client.post(
            "/api/posts/", data={"title": "t", "body": "b"}, content_type="application/json"
        )
    )
    assert response.status_code == 201
    assert response.json()["comment_count"] == 0
    assert elapsed < DEADLINE_S
    post_id = response.json()["id"]
    lookup = caller.get(f"/internal/posts/{post_id}/")
    assert lookup.status_code == 200
    assert lookup.json()["id"] == post_id


@pytest.mark.django_db(transaction=True)  # the real commit, so the call is timed too
@pytest.mark.usefixtures("comments_unreachable")
def test_delete_still_deletes_and_logs_the_comments_left_behind(client, caller, caplog):
    post = PostFactory()
    with caplog.at_level(logging.WARNING, logger="posts.comments_client"):
        response, elapsed = timed(lambda: client.delete(f"/api/posts/{post.id}/"))
    assert response.status_code == 204
    assert elapsed < DEADLINE_S
    assert not Post.objects.filter(pk=post.id).exists()
    assert any(str(post.id) in record.getMessage() for record in caplog.records)
    assert caller.get(f"/internal/posts/{post.id}/").status_code == 404


def test_bad_page_parameters_are_still_400_not_503(client, settings):
    settings.COMMENTS_URL = fake_comments.dead_url()
    PostFactory()
    assert client.get("/api/posts/?page=0").status_code == 400
    assert client.get("/api/posts/?page=2").status_code == 404
