"""Stage 4 (sync mode) as real processes behind real nginx: what a client sees
when one service dies. Each fault kills one process of its own stack."""

import os
import signal
import time
import uuid

import pytest
import requests

from blogtest.timing import scaled
from tests.support.harness import stage_stack


@pytest.fixture
def stage4(tmp_path):
    with stage_stack(4, gateway="nginx", log_dir=tmp_path, mode="sync") as stack:
        yield stack


def kill(stack, name):
    """SIGKILL the whole process group: gunicorn's workers would go on
    serving after their master alone died."""
    process = stack.processes[name]
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def timed(method, url, **kwargs):
    started = time.monotonic()
    response = requests.request(method, url, timeout=10, **kwargs)
    return response, time.monotonic() - started


def test_posts_down_comment_creation_is_a_fast_503(stage4):
    post = requests.post(f"{stage4.url}/api/posts/", json={"title": "t", "body": "b"}, timeout=5)
    assert post.status_code == 201
    kill(stage4, "posts")
    response, seconds = timed(
        "POST", f"{stage4.url}/api/posts/{post.json()['id']}/comments/", json={"body": "hi"}
    )
    assert response.status_code == 503
    assert seconds < scaled(1.5)
    assert response.headers["Content-Type"].startswith("application/json")
    assert "posts" in response.json()["detail"]


def test_comments_down_posts_are_still_written_and_lists_fail_fast(stage4):
    kill(stage4, "comments")
    created, _ = timed("POST", f"{stage4.url}/api/posts/", json={"title": "t", "body": "b"})
    assert created.status_code == 201
    assert created.headers["X-Served-By"] == "posts"
    post_id = created.json()["id"]
    # comment_count needs the comments service in sync mode: a fast JSON 503.
    listed, seconds = timed("GET", f"{stage4.url}/api/posts/")
    assert listed.status_code == 503
    assert seconds < scaled(1.5)
    assert "comments" in listed.json()["detail"]
    # Its own routes: the comment routes, through the gateway, are a JSON 503.
    comments, seconds = timed("GET", f"{stage4.url}/api/posts/{post_id}/comments/")
    assert comments.status_code == 503
    assert seconds < scaled(3)
    assert comments.headers["X-Served-By"] == "gateway"
    deleted, _ = timed("DELETE", f"{stage4.url}/api/posts/{post_id}/")
    assert deleted.status_code == 204
    gone, _ = timed("GET", f"{stage4.url}/api/posts/{uuid.uuid4()}/")
    assert gone.status_code in (404, 503)


@pytest.fixture
def stage4_async(tmp_path):
    with stage_stack(4, gateway="nginx", log_dir=tmp_path, mode="async") as stack:
        yield stack


def test_async_posts_down_a_known_post_still_takes_comments(stage4_async):
    api = f"{stage4_async.url}/api/posts"
    post = requests.post(f"{api}/", json={"title": "t", "body": "b"}, timeout=5).json()
    comments_url = f"{api}/{post['id']}/comments/"
    # Known to the comments service once post.created has reached its replica
    # (or after one read-through): a first comment makes sure of it.
    assert requests.post(comments_url, json={"body": "first"}, timeout=5).status_code == 201
    kill(stage4_async, "posts")
    response, _ = timed("POST", comments_url, json={"body": "posts is down"})
    assert response.status_code == 201
    assert response.headers["X-Served-By"] == "comments"
    listed = requests.get(comments_url, timeout=5).json()
    assert [c["body"] for c in listed["results"]] == ["first", "posts is down"]


def test_async_comments_down_post_routes_keep_serving(stage4_async):
    api = f"{stage4_async.url}/api/posts"
    kill(stage4_async, "comments")
    created, _ = timed("POST", f"{api}/", json={"title": "t", "body": "b"})
    assert created.status_code == 201
    listed, _ = timed("GET", f"{api}/")
    assert listed.status_code == 200
    assert created.json()["id"] in [p["id"] for p in listed.json()["results"]]
    detail, _ = timed("GET", f"{api}/{created.json()['id']}/")
    assert detail.status_code == 200
    assert detail.json()["comment_count"] == 0
