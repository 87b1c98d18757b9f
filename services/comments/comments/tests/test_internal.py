"""The routes the owner of posts calls: comment counts for a page of posts,
and the removal of a deleted post's comments."""

import uuid

import pytest

from .factories import make_comment

COUNTS = "/internal/comment-counts/"


def counts(client, *ids):
    return client.post(
        COUNTS, data={"post_ids": [str(i) for i in ids]}, content_type="application/json"
    )


def test_counts_of_a_page_of_posts_with_zeros(client):
    posts = [uuid.uuid4() for _ in range(3)]
    for n, post_id in enumerate(posts):
        for _ in range(n):
            make_comment(post_id=post_id)
    response = counts(client, *posts)
    assert response.status_code == 200
    assert response["X-Served-By"] == "comments"
    assert response.json() == {
        "counts": {str(posts[0]): 0, str(posts[1]): 1, str(posts[2]): 2},
    }


def test_counts_of_nothing(client):
    assert counts(client).json() == {"counts": {}}


def test_counts_of_duplicated_ids_are_given_once(client):
    post_id = uuid.uuid4()
    make_comment(post_id=post_id)
    assert counts(client, post_id, post_id).json() == {"counts": {str(post_id): 1}}


def test_counts_accept_100_ids_and_refuse_101(client):
    ids = [uuid.uuid4() for _ in range(101)]
    assert len(counts(client, *ids[:100]).json()["counts"]) == 100
    response = counts(client, *ids)
    assert response.status_code == 400
    assert set(response.json()) == {"post_ids"}


@pytest.mark.parametrize("bad", ["nope", "1", '{"$gt": ""}', ""])
def test_counts_refuse_malformed_ids(client, bad):
    response = counts(client, uuid.uuid4(), bad)
    assert response.status_code == 400
    assert set(response.json()) == {"post_ids"}


@pytest.mark.parametrize(
    "body", [{}, {"post_ids": "x"}, {"post_ids": [1, 2]}, {"post_ids": [{"$gt": ""}]}]
)
def test_counts_refuse_anything_but_a_list_of_strings(client, body):
    response = client.post(COUNTS, data=body, content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()) == {"post_ids"}


def test_delete_removes_the_posts_comments_and_is_idempotent(client, mongo_collection):
    post_id, other = uuid.uuid4(), uuid.uuid4()
    for _ in range(3):
        make_comment(post_id=post_id)
    make_comment(post_id=other)
    path = f"/internal/posts/{post_id}/comments/"
    response = client.delete(path)
    assert response.status_code == 204
    assert response["X-Served-By"] == "comments"
    assert mongo_collection.count_documents({"post_id": str(post_id)}) == 0
    assert client.delete(path).status_code == 204
    assert mongo_collection.count_documents({"post_id": str(other)}) == 1


@pytest.mark.parametrize("bad", ["nope", "1", "%7B%22$gt%22:%22%22%7D"])
def test_delete_with_a_malformed_id_is_a_json_404_and_removes_nothing(
    client, bad, mongo_collection
):
    make_comment(post_id=uuid.uuid4())
    response = client.delete(f"/internal/posts/{bad}/comments/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert mongo_collection.count_documents({}) == 1


def test_internal_routes_with_mongodb_down_are_503(client, settings, dead_url):
    settings.MONGO_URL = f"mongodb://{dead_url}"
    assert counts(client, uuid.uuid4()).status_code == 503
    assert client.delete(f"/internal/posts/{uuid.uuid4()}/comments/").status_code == 503


def test_only_the_expected_methods(client):
    assert client.get(COUNTS).status_code == 405
    assert client.get(f"/internal/posts/{uuid.uuid4()}/comments/").status_code == 405
