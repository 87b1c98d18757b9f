"""Stage 2: the monolith with COMMENTS_BACKEND=service. Its callers (the
posts app) are unchanged; behind monolith/comments/api.py the comments
service answers, over real HTTP."""

import os
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from blogtest.ports import free_port
from blogweb.internal import authorization, caller_entry, parse_callers
from blogweb.timeutil import format_rfc3339_ms
from monolith.comments.models import Comment
from monolith.posts.tests.factories import PostFactory

from .fake_service import FakeCommentsService

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]
# The monolith's token (for its calls), and the comments service's (its caller).
OWN_TOKEN = secrets.token_urlsafe(32)
CALLER_TOKEN = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def fake_service():
    service = FakeCommentsService()
    yield service
    service.stop()


@pytest.fixture
def service_backend(settings, fake_service):
    settings.COMMENTS_BACKEND = "service"
    settings.COMMENTS_URL = fake_service.url
    settings.INTERNAL_TOKEN = OWN_TOKEN
    fake_service.requests.clear()
    fake_service.authorizations.clear()
    fake_service.counts.clear()
    fake_service.refuse = None
    return fake_service


@pytest.fixture
def caller(client, settings):
    """The test client, calling as the comments service, which the monolith accepts."""
    settings.INTERNAL_CALLERS = parse_callers(caller_entry("comments", CALLER_TOKEN))
    client.defaults["HTTP_AUTHORIZATION"] = authorization("comments", CALLER_TOKEN)
    return client


def test_the_post_list_asks_the_service_once_per_page(client, service_backend):
    posts = PostFactory.create_batch(30)
    service_backend.counts = {str(posts[0].id): 7}
    page = client.get("/api/posts/?page_size=25").json()
    assert len(page["results"]) == 25
    counts_calls = [r for r in service_backend.requests if r[1] == "/internal/comment-counts/"]
    assert len(counts_calls) == 1
    assert counts_calls[0][2] == {"post_ids": [p["id"] for p in page["results"]]}
    assert service_backend.authorizations == [f"Bearer monolith.{OWN_TOKEN}"]
    by_id = {p["id"]: p["comment_count"] for p in page["results"]}
    assert by_id.get(str(posts[0].id), 7) == 7
    assert set(by_id.values()) <= {0, 7}


def test_a_deleted_posts_comments_are_deleted_at_the_service_after_commit(
    client, service_backend, django_capture_on_commit_callbacks
):
    post = PostFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert client.delete(f"/api/posts/{post.id}/").status_code == 204
    assert len(callbacks) == 1
    assert ("DELETE", f"/internal/posts/{post.id}/comments/", None) in service_backend.requests
    assert service_backend.authorizations[-1] == f"Bearer monolith.{OWN_TOKEN}"


def test_the_monoliths_own_comment_routes_say_where_comments_went(client, service_backend):
    post = PostFactory()
    listed = client.get(f"/api/posts/{post.id}/comments/")
    assert listed.status_code == 404
    assert "comments service" in listed.json()["detail"]
    created = client.post(
        f"/api/posts/{post.id}/comments/", data={"body": "x"}, content_type="application/json"
    )
    assert created.status_code == 404
    assert Comment.objects.count() == 0


def test_comments_service_down_lists_fail_fast_writes_go_on(client, settings):
    settings.COMMENTS_BACKEND = "service"
    settings.COMMENTS_URL = f"http://127.0.0.1:{free_port()}"
    PostFactory()
    started = time.monotonic()
    response = client.get("/api/posts/")
    assert time.monotonic() - started < 1.5
    assert response.status_code == 503
    assert "comments" in response.json()["detail"]
    created = client.post(
        "/api/posts/", data={"title": "t", "body": "b"}, content_type="application/json"
    )
    assert created.status_code == 201


def test_the_internal_post_lookup(caller):
    post = PostFactory()
    found = caller.get(f"/internal/posts/{post.id}/")
    assert found.status_code == 200
    assert found.json() == {"id": str(post.id), "created_at": format_rfc3339_ms(post.created_at)}
    assert caller.get(f"/internal/posts/{uuid.uuid4()}/").status_code == 404
    assert caller.get("/internal/posts/not-a-uuid/").json() == {"detail": "Not found."}


def test_the_internal_post_lookup_without_a_credential_is_a_401(
    client, settings, django_assert_num_queries
):
    settings.INTERNAL_CALLERS = parse_callers(caller_entry("comments", CALLER_TOKEN))
    post = PostFactory()
    with django_assert_num_queries(0):
        response = client.get(f"/internal/posts/{post.id}/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert response["X-Served-By"] == "monolith"


@pytest.mark.parametrize(
    "credential",
    [
        authorization("comments", secrets.token_urlsafe(32)),
        authorization("monolith", OWN_TOKEN),  # its own token is no caller's
        authorization("posts", CALLER_TOKEN),
    ],
)
def test_the_internal_post_lookup_with_a_wrong_credential_is_a_403(
    client, settings, credential, django_assert_num_queries
):
    settings.INTERNAL_CALLERS = parse_callers(caller_entry("comments", CALLER_TOKEN))
    post = PostFactory()
    with django_assert_num_queries(0):
        response = client.get(f"/internal/posts/{post.id}/", HTTP_AUTHORIZATION=credential)
    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid credentials for an internal route."}


def test_the_monolith_accepts_no_caller_unless_told(client):
    """Its default: no INTERNAL_CALLERS, every internal call refused."""
    post = PostFactory()
    credential = authorization("comments", CALLER_TOKEN)
    response = client.get(f"/internal/posts/{post.id}/", HTTP_AUTHORIZATION=credential)
    assert response.status_code == 403


@pytest.mark.parametrize("status", [401, 403])
def test_a_comments_service_that_refuses_the_credential_is_a_503(client, service_backend, status):
    PostFactory()
    service_backend.refuse = status
    response = client.get("/api/posts/")
    assert response.status_code == 503
    assert response.json() == {"detail": "Service unavailable: comments is not reachable."}


def test_the_internal_route_is_not_in_the_public_document(client):
    schema = client.get("/api/schema/?format=json")
    assert not any(path.startswith("/internal/") for path in schema.json()["paths"])


def timeout_setting(tmp_path, **env: str) -> subprocess.CompletedProcess:
    """The monolith's COMMENTS_TIMEOUT_S in a fresh process, under ``env``."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COMMENTS_TIMEOUT", "DJANGO_SETTINGS_MODULE"))
    }
    code = "from django.conf import settings; print(settings.COMMENTS_TIMEOUT_S)"
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-v0", "-c", code],
        cwd=ROOT, env={**clean, "DATA_DIR": str(tmp_path), **env},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_timeout_has_its_unit_in_its_name_and_the_old_name_still_works(tmp_path):
    assert timeout_setting(tmp_path).stdout.split() == ["0.5"]
    new = timeout_setting(tmp_path, COMMENTS_TIMEOUT_S="0.2")
    assert (new.stdout.split(), "deprecated" in new.stderr) == (["0.2"], False)
    old = timeout_setting(tmp_path, COMMENTS_TIMEOUT="0.3")
    assert old.stdout.split() == ["0.3"], old.stderr
    assert "COMMENTS_TIMEOUT is deprecated" in old.stderr
    both = timeout_setting(tmp_path, COMMENTS_TIMEOUT_S="0.2", COMMENTS_TIMEOUT="0.3")
    assert both.stdout.split() == ["0.2"]
    assert "COMMENTS_TIMEOUT is ignored" in both.stderr


# >>> stage 3: the counters kept from events start from the service's counts
def test_comment_counts_rebuild_fills_the_stage_3_counters(service_backend):
    from django.core.management import call_command

    from monolith.comments.models import CommentCount

    posts = PostFactory.create_batch(150)  # two calls of 100 and 50
    service_backend.counts = {str(posts[0].id): 3, str(posts[149].id): 1}
    CommentCount.objects.create(post_id=posts[5].id, count=9)  # stale: replaced
    call_command("comment_counts_rebuild", verbosity=0)
    counts_calls = [r for r in service_backend.requests if r[1] == "/internal/comment-counts/"]
    assert [len(r[2]["post_ids"]) for r in counts_calls] == [100, 50]
    assert dict(CommentCount.objects.values_list("post_id", "count")) == {
        posts[0].id: 3,
        posts[149].id: 1,
    }
    # <<< stage 3
