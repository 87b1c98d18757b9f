import uuid

import pytest
from django.core.exceptions import ValidationError

from monolith.comments.tests.factories import CommentFactory
from monolith.posts import services
from monolith.posts.models import Post
from monolith.posts.tests.factories import PostFactory

pytestmark = pytest.mark.django_db


def test_post_create_stores_a_post_with_millisecond_timestamp():
    post = services.post_create(title="A title", body="A body")
    stored = Post.objects.get(pk=post.id)
    assert stored.title == "A title"
    assert stored.body == "A body"
    assert stored.created_at.microsecond % 1000 == 0
    assert post.comment_count == 0


@pytest.mark.parametrize(("title", "body"), [("", "body"), ("t" * 201, "body"), ("title", "")])
def test_post_create_refuses_what_the_model_refuses(title, body):
    with pytest.raises(ValidationError):
        services.post_create(title=title, body=body)
    assert Post.objects.count() == 0


def test_post_delete_removes_the_post_and_its_comments():
    post = PostFactory()
    CommentFactory.create_batch(3, post=post)
    other = CommentFactory()
    services.post_delete(post_id=post.id)
    assert not Post.objects.filter(pk=post.id).exists()
    from monolith.comments.models import Comment

    assert list(Comment.objects.values_list("id", flat=True)) == [other.id]


def test_post_delete_of_an_unknown_post_raises():
    with pytest.raises(services.PostNotFound):
        services.post_delete(post_id=uuid.uuid4())
