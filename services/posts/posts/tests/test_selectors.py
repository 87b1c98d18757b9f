import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command

from blogweb.timeutil import now_ms
from posts import selectors, services
from posts.models import Post
from posts.tests.factories import PostFactory

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


@pytest.mark.usefixtures("sync_counts")
def test_comment_counts_are_attached_with_one_call_for_the_page(
    comments_service, django_assert_num_queries
):
    posts = PostFactory.create_batch(3)
    comments_service.counts = {str(posts[0].id): 2, str(posts[2].id): 1}
    with django_assert_num_queries(0):
        selectors.post_attach_comment_counts(posts=posts)
    assert [p.comment_count for p in posts] == [2, 0, 1]
    [call] = comments_service.count_calls()
    assert call.json["post_ids"] == [str(p.id) for p in posts]


@pytest.mark.usefixtures("sync_counts")
def test_an_empty_page_asks_the_comments_service_nothing(comments_service):
    assert selectors.post_attach_comment_counts(posts=[]) == []
    assert comments_service.requests == []


@pytest.mark.usefixtures("sync_counts")
def test_post_get_with_comment_count(comments_service):
    post = PostFactory()
    comments_service.counts = {str(post.id): 4}
    assert selectors.post_get_with_comment_count(post_id=post.id).comment_count == 4
    assert selectors.post_get_with_comment_count(post_id=uuid.uuid4()) is None
    assert len(comments_service.count_calls()) == 1  # none for the unknown post


def test_post_reference_is_one_query_without_counts(comments_service, django_assert_num_queries):
    post = PostFactory()
    with django_assert_num_queries(1):
        reference = selectors.post_reference(post_id=post.id)
    assert reference == selectors.PostReference(id=post.id, created_at=post.created_at)
    assert selectors.post_reference(post_id=uuid.uuid4()) is None
    assert comments_service.requests == []


def test_the_kept_total_follows_every_writer(django_capture_on_commit_callbacks):
    start = selectors.post_total()
    PostFactory.create_batch(3)  # plain ORM inserts
    Post.objects.bulk_create([Post(title=f"bulk {i}", body="b") for i in range(5)])
    created = services.post_create(title="t", body="b")
    assert selectors.post_total() == start + 9 == Post.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        services.post_delete(post_id=created.id)
    Post.objects.filter(title__startswith="bulk").delete()
    assert selectors.post_total() == start + 3 == Post.objects.count()


def test_the_count_reads_the_kept_total_not_the_table(django_assert_num_queries):
    PostFactory.create_batch(2)
    with django_assert_num_queries(1) as captured:
        assert selectors.post_list().count() == 2
    assert "posts_posttotal" in captured.captured_queries[0]["sql"]


@pytest.mark.django_db(transaction=True)
def test_the_kept_total_survives_a_truncate():
    call_command("flush", "--no-input", verbosity=0)  # TRUNCATE, as test teardown does
    assert selectors.post_total() == 0
    PostFactory.create_batch(2)
    assert selectors.post_total() == 2 == Post.objects.count()
