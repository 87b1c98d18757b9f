from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, F

from monolith.comments.models import Comment
from monolith.posts.models import Post

pytestmark = pytest.mark.django_db


def seed(**options) -> str:
    out = StringIO()
    call_command("seed", quiet=True, stdout=out, **options)
    return out.getvalue()


def snapshot() -> tuple[list, list]:
    """Rows with timestamps made relative, so runs in different minutes compare equal."""
    posts = list(Post.objects.order_by("id").values_list("id", "title", "body", "created_at"))
    comments = list(
        Comment.objects.order_by("id").values_list("id", "post_id", "body", "created_at")
    )
    origin = min(row[-1] for row in posts)
    return (
        [(*row[:-1], row[-1] - origin) for row in posts],
        [(*row[:-1], row[-1] - origin) for row in comments],
    )


def test_defaults_load_200_posts_and_2000_comments():
    output = seed()

    assert Post.objects.count() == 200
    assert Comment.objects.count() == 2000
    assert "Seeded 200 posts and 2,000 comments (seed 42)" in output


def test_counts_follow_the_options():
    seed(posts=30, comments=450, batch_size=100)

    assert Post.objects.count() == 30
    assert Comment.objects.count() == 450


def test_comments_are_spread_unevenly_over_posts():
    seed(posts=100, comments=1000)

    per_post = dict(Comment.objects.values_list("post_id").annotate(n=Count("id")))
    counts = sorted(
        per_post.get(post_id, 0) for post_id in Post.objects.values_list("id", flat=True)
    )
    assert counts[0] == 0, "some posts should have no comments"
    assert counts[-1] >= 3 * 10, "some posts should be popular (3x the mean)"


def test_every_comment_is_created_after_its_post():
    seed(posts=100, comments=1000)

    assert not Comment.objects.filter(created_at__lt=F("post__created_at")).exists()


def test_timestamps_are_truncated_to_milliseconds():
    seed(posts=100, comments=1000)

    timestamps = [
        *Post.objects.values_list("created_at", flat=True),
        *Comment.objects.values_list("created_at", flat=True),
    ]
    assert timestamps
    assert all(ts.microsecond % 1000 == 0 for ts in timestamps)


def test_no_timestamp_is_in_the_future_and_history_spans_about_a_year():
    seed(posts=200, comments=1000)
    now = datetime.now(UTC)

    post_times = list(Post.objects.values_list("created_at", flat=True))
    comment_times = list(Comment.objects.values_list("created_at", flat=True))
    assert max(post_times + comment_times) <= now
    assert (now - min(post_times)).days >= 300
    assert (now - min(post_times)).days <= 366


def test_text_looks_like_a_blog():
    seed(posts=100, comments=500)

    for title, body in Post.objects.values_list("title", "body"):
        assert 1 <= len(title) <= 200
        assert 250 <= len(body) <= 2000
    assert Post.objects.filter(body__contains="\n\n").count() >= 50, "bodies have paragraphs"
    assert all(1 <= len(body) <= 2000 for body in Comment.objects.values_list("body", flat=True))


def test_reset_gives_the_same_data_for_the_same_seed():
    seed(posts=40, comments=300, seed=7)
    first = snapshot()

    output = seed(posts=40, comments=300, seed=7, reset=True)

    assert snapshot() == first
    assert "after deleting 40 posts and 300 comments" in output


def test_reset_replaces_rows_from_another_seed():
    seed(posts=40, comments=300, seed=7)
    seven = snapshot()

    seed(posts=20, comments=100, seed=8, reset=True)

    assert Post.objects.count() == 20
    assert Comment.objects.count() == 100
    assert not {row[0] for row in seven[0]} & set(Post.objects.values_list("id", flat=True))


def test_ids_are_version_4_uuids():
    seed(posts=10, comments=20)

    ids = [
        *Post.objects.values_list("id", flat=True),
        *Comment.objects.values_list("id", flat=True),
    ]
    assert all(i.version == 4 for i in ids)


def test_seeding_the_same_seed_twice_without_reset_fails_clearly():
    seed(posts=5, comments=10)

    with pytest.raises(CommandError, match="--reset"):
        seed(posts=5, comments=10)
    assert Post.objects.count() == 5


def test_comments_without_posts_are_refused():
    with pytest.raises(CommandError, match="at least one post"):
        seed(posts=0, comments=10)
