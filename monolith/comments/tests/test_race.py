"""A post deleted between the existence check and the insert: the foreign
key refuses the comment and the caller gets PostNotFound, not a 500."""

import pytest

from monolith.comments import services
from monolith.comments.models import Comment
from monolith.posts import api as posts_api
from monolith.posts.models import Post
from monolith.posts.tests.factories import PostFactory


@pytest.mark.django_db(transaction=True)
def test_post_deleted_after_the_check(monkeypatch):
    post = PostFactory()

    def exists_then_vanishes(*, post_id):
        found = Post.objects.filter(pk=post_id).exists()
        Post.objects.filter(pk=post_id).delete()
        return found

    monkeypatch.setattr(posts_api, "post_exists", exists_then_vanishes)
    with pytest.raises(services.PostNotFound):
        services.comment_create(post_id=post.id, body="too late")
    assert Comment.objects.count() == 0
