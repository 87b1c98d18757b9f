import uuid
from datetime import timedelta

import pytest

from blogweb.timeutil import now_ms
from monolith.comments.tests.factories import CommentFactory
from monolith.posts import api, selectors
from monolith.posts.tests.factories import PostFactory

pytestmark = pytest.mark.django_db


def test_post_list_is_newest_first_with_ties_broken_by_id():
    now = now_ms()
    old = PostFactory(created_at=now - timedelta(days=1))
    tie_a = PostFactory(created_at=now)
    tie_b = PostFactory(created_at=now)
    newest_tie_first = sorted([tie_a, tie_b], key=lambda p: p.id, reverse=True)
    assert selectors.post_list()[0:10] == [*newest_tie_first, old]
    assert selectors.post_list()[1:2] == [newest_tie_first[1]]
    assert selectors.post_list().count() == 3


def test_comment_counts_are_attached_in_one_query(django_assert_num_queries):
    posts = PostFactory.create_batch(3)
    CommentFactory.create_batch(2, post=posts[0])
    CommentFactory(post=posts[2])
    with django_assert_num_queries(1):
        selectors.post_attach_comment_counts(posts=posts)
    assert [p.comment_count for p in posts] == [2, 0, 1]


def test_post_get_with_comment_count():
    post = PostFactory()
    CommentFactory.create_batch(4, post=post)
    assert selectors.post_get_with_comment_count(post_id=post.id).comment_count == 4
    assert selectors.post_get_with_comment_count(post_id=uuid.uuid4()) is None


def test_api_gives_plain_data_not_models():
    post = PostFactory()
    info = api.post_info(post_id=post.id)
    assert info == api.PostInfo(id=post.id, title=post.title, created_at=post.created_at)
    assert api.post_exists(post_id=post.id)
    assert not api.post_exists(post_id=uuid.uuid4())
    assert api.post_info(post_id=uuid.uuid4()) is None


def test_the_kept_total_follows_every_writer():
    from monolith.posts import services
    from monolith.posts.models import Post

    start = selectors.post_total()
    PostFactory.create_batch(3)  # plain ORM inserts
    Post.objects.bulk_create([Post(title=f"bulk {i}", body="b") for i in range(5)])
    created = services.post_create(title="t", body="b")
    assert selectors.post_total() == start + 9 == Post.objects.count()
    services.post_delete(post_id=created.id)
    Post.objects.filter(title__startswith="bulk").delete()
    assert selectors.post_total() == start + 3 == Post.objects.count()


@pytest.mark.django_db(transaction=True)
def test_the_kept_total_survives_a_truncate():
    from django.core.management import call_command

    from monolith.posts.models import Post

    call_command("flush", "--no-input", verbosity=0)  # TRUNCATE, as test teardown does
    assert selectors.post_total() == 0
    PostFactory.create_batch(2)
    assert selectors.post_total() == 2 == Post.objects.count()
