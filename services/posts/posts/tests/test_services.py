import uuid

import pytest
from django.core.exceptions import ValidationError

from posts import services
from posts.models import Post
from posts.tests.factories import PostFactory

pytestmark = pytest.mark.django_db


def test_post_create_stores_a_post_with_millisecond_timestamp(comments_service):
    post = services.post_create(title="A title", body="A body")
    stored = Post.objects.get(pk=post.id)
    assert stored.title == "A title"
    assert stored.body == "A body"
    assert stored.created_at.microsecond % 1000 == 0
    assert post.comment_count == 0
    assert comments_service.requests == []  # a new post has no comments to ask about


@pytest.mark.parametrize(("title", "body"), [("", "body"), ("t" * 201, "body"), ("title", "")])
def test_post_create_refuses_what_the_model_refuses(title, body):
    with pytest.raises(ValidationError):
        services.post_create(title=title, body=body)
    assert Post.objects.count() == 0


def test_post_delete_removes_the_post_then_asks_comments_to_follow(
    comments_service, django_capture_on_commit_callbacks
):
    post, other = PostFactory.create_batch(2)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.post_delete(post_id=post.id)
        # Not before the commit: a rolled-back delete must not lose comments.
        assert comments_service.requests == []
    assert len(callbacks) == 1
    assert list(Post.objects.values_list("id", flat=True)) == [other.id]
    [call] = comments_service.requests
    assert (call.method, call.path) == ("DELETE", f"/internal/posts/{post.id}/comments/")


def test_post_delete_of_an_unknown_post_raises_and_asks_nothing(
    comments_service, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(services.PostNotFound):
        services.post_delete(post_id=uuid.uuid4())
    assert comments_service.requests == []
