import uuid
from datetime import timedelta

import pytest

from blogweb.timeutil import now_ms
from monolith.comments import api, selectors, services
from monolith.comments.models import Comment
from monolith.comments.tests.factories import CommentFactory
from monolith.posts.tests.factories import PostFactory

pytestmark = pytest.mark.django_db


def test_comment_create_on_a_post():
    post = PostFactory()
    comment = services.comment_create(post_id=post.id, body="Nice post")
    stored = Comment.objects.get(pk=comment.id)
    assert stored.post_id == post.id
    assert stored.body == "Nice post"
    assert stored.created_at.microsecond % 1000 == 0


def test_comment_create_on_an_unknown_post_stores_nothing():
    with pytest.raises(services.PostNotFound):
        services.comment_create(post_id=uuid.uuid4(), body="Lost")
    assert Comment.objects.count() == 0


def test_comment_list_is_oldest_first_with_ties_broken_by_id():
    post = PostFactory()
    now = now_ms()
    newest = CommentFactory(post=post, created_at=now)
    oldest = CommentFactory(post=post, created_at=now - timedelta(seconds=5))
    tied = sorted(
        CommentFactory.create_batch(2, post=post, created_at=now - timedelta(seconds=1)),
        key=lambda c: c.id,
    )
    CommentFactory()  # another post's comment
    listed = [c.id for c in selectors.comment_list(post_id=post.id)]
    assert listed == [oldest.id, tied[0].id, tied[1].id, newest.id]


def test_comment_counts_in_one_query(django_assert_num_queries):
    posts = PostFactory.create_batch(3)
    CommentFactory.create_batch(3, post=posts[1])
    with django_assert_num_queries(1):
        counts = api.comment_counts(post_ids=[p.id for p in posts])
    assert counts == {posts[1].id: 3}


def test_both_ways_of_counting_agree():
    posts = PostFactory.create_batch(4)
    for n, post in enumerate(posts):
        CommentFactory.create_batch(n, post=post)
    ids = [p.id for p in posts]
    expected = {posts[1].id: 1, posts[2].id: 2, posts[3].id: 3}
    assert selectors._comment_counts_postgresql(ids) == expected
    assert selectors._comment_counts_orm(ids) == expected


def test_comment_counts_of_nothing_costs_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert api.comment_counts(post_ids=[]) == {}
