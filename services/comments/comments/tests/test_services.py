import uuid

import pytest

from comments import selectors, services

from .factories import make_comment


def test_comment_create_on_a_post(fake_posts, mongo_collection):
    post_id = uuid.UUID(fake_posts.add(uuid.uuid4()))
    comment = services.comment_create(post_id=post_id, body="Nice post")
    stored = mongo_collection.find_one({"_id": str(comment.id)})
    assert stored["post_id"] == str(post_id)
    assert stored["body"] == "Nice post"
    assert comment.created_at.microsecond % 1000 == 0


def test_comment_create_on_an_unknown_post_stores_nothing(mongo_collection):
    with pytest.raises(services.PostNotFound):
        services.comment_create(post_id=uuid.uuid4(), body="Lost")
    assert mongo_collection.count_documents({}) == 0


def test_comment_counts_give_every_asked_post(mongo_collection):
    with_comments, without = uuid.uuid4(), uuid.uuid4()
    make_comment(post_id=with_comments)
    make_comment(post_id=with_comments)
    assert selectors.comment_counts(post_ids=[with_comments, without]) == {
        with_comments: 2,
        without: 0,
    }
    assert selectors.comment_counts(post_ids=[]) == {}


def test_comments_delete_of_post_is_idempotent(mongo_collection):
    post_id = uuid.uuid4()
    make_comment(post_id=post_id)
    assert services.comments_delete_of_post(post_id=post_id) == 1
    assert services.comments_delete_of_post(post_id=post_id) == 0
    assert selectors.comment_list(post_id=post_id).count() == 0
