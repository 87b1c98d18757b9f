"""The routes the owner of posts calls: comment counts for a page of posts,
and the removal of a deleted post's comments. Only the owner of posts, with
its credential (``caller``), gets through; ``client`` has none."""

import secrets
import uuid

import pytest
from django.test import Client

from blogweb.internal import authorization

from .conftest import CALLER, CALLER_TOKEN
from .factories import make_comment

COUNTS = "/internal/comment-counts/"


def counts(caller, *ids):
    return caller.post(
        COUNTS, data={"post_ids": [str(i) for i in ids]}, content_type="application/json"
    )


def test_counts_of_a_page_of_posts_with_zeros(caller):
    posts = [uuid.uuid4() for _ in range(3)]
    for n, post_id in enumerate(posts):
        for _ in range(n):
            make_comment(post_id=post_id)
    response = counts(caller, *posts)
    assert response.status_code == 200
    assert response["X-Served-By"] == "comments"
    assert response.json() == {
        "counts": {str(posts[0]): 0, str(posts[1]): 1, str(posts[2]): 2},
    }


def test_counts_of_nothing(caller):
    assert counts(caller).json() == {"counts": {}}


def test_counts_of_duplicated_ids_are_given_once(caller):
    post_id = uuid.uuid4()
    make_comment(post_id=post_id)
    assert counts(caller, post_id, post_id).json() == {"counts": {str(post_id): 1}}


def test_counts_accept_100_ids_and_refuse_101(caller):
    ids = [uuid.uuid4() for _ in range(101)]
    assert len(counts(caller, *ids[:100]).json()["counts"]) == 100
    response = counts(caller, *ids)
    assert response.status_code == 400
    assert set(response.json()) == {"post_ids"}


@pytest.mark.parametrize("bad", ["nope", "1", '{"$gt": ""}', ""])
def test_counts_refuse_malformed_ids(caller, bad):
    response = counts(caller, uuid.uuid4(), bad)
    assert response.status_code == 400
    assert set(response.json()) == {"post_ids"}


@pytest.mark.parametrize(
    "body", [{}, {"post_ids": "x"}, {"post_ids": [1, 2]}, {"post_ids": [{"$gt": ""}]}]
)
def test_counts_refuse_anything_but_a_list_of_strings(caller, body):
    response = caller.post(COUNTS, data=body, content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()) == {"post_ids"}


def test_delete_removes_the_posts_comments_and_is_idempotent(caller, mongo_collection):
    post_id, other = uuid.uuid4(), uuid.uuid4()
    for _ in range(3):
        make_comment(post_id=post_id)
    make_comment(post_id=other)
    path = f"/internal/posts/{post_id}/comments/"
    response = caller.delete(path)
    assert response.status_code == 204
    assert response["X-Served-By"] == "comments"
    assert mongo_collection.count_documents({"post_id": str(post_id)}) == 0
    assert caller.delete(path).status_code == 204
    assert mongo_collection.count_documents({"post_id": str(other)}) == 1


@pytest.mark.parametrize("bad", ["nope", "1", "%7B%22$gt%22:%22%22%7D"])
def test_delete_with_a_malformed_id_is_a_json_404_and_removes_nothing(
    caller, bad, mongo_collection
):
    make_comment(post_id=uuid.uuid4())
    response = caller.delete(f"/internal/posts/{bad}/comments/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert mongo_collection.count_documents({}) == 1


def test_internal_routes_with_mongodb_down_are_503(caller, settings, dead_url):
    settings.MONGO_URL = f"mongodb://{dead_url}"
    assert counts(caller, uuid.uuid4()).status_code == 503
    assert caller.delete(f"/internal/posts/{uuid.uuid4()}/comments/").status_code == 503


def test_only_the_expected_methods(caller):
    assert caller.get(COUNTS).status_code == 405
    assert caller.get(f"/internal/posts/{uuid.uuid4()}/comments/").status_code == 405


# The credential: without the owner of posts' own, nothing is read or removed.
def test_no_credential_is_a_json_401_and_removes_nothing(client, mongo_collection):
    post_id = uuid.uuid4()
    make_comment(post_id=post_id)
    response = client.delete(f"/internal/posts/{post_id}/comments/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert response["WWW-Authenticate"] == 'Bearer realm="internal"'
    assert response["X-Served-By"] == "comments"
    assert mongo_collection.count_documents({"post_id": str(post_id)}) == 1
    assert counts(client, post_id).status_code == 401


@pytest.mark.parametrize(
    "credential",
    [
        authorization(CALLER, secrets.token_urlsafe(32)),  # a wrong token
        authorization("monolith", CALLER_TOKEN),  # the right token under another name
        authorization("intruder", secrets.token_urlsafe(32)),
        f"Bearer {CALLER_TOKEN}",
    ],
)
def test_a_wrong_credential_is_a_json_403_and_removes_nothing(client, mongo_collection, credential):
    post_id = uuid.uuid4()
    make_comment(post_id=post_id)
    response = client.delete(
        f"/internal/posts/{post_id}/comments/", headers={"Authorization": credential}
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid credentials for an internal route."}
    assert mongo_collection.count_documents({"post_id": str(post_id)}) == 1
    refused = client.post(
        COUNTS,
        data={"post_ids": [str(post_id)]},
        content_type="application/json",
        headers={"Authorization": credential},
    )
    assert refused.status_code == 403
    assert "counts" not in refused.json()


def test_every_internal_path_needs_the_credential_even_unknown_ones(caller):
    assert Client().get("/internal/nothing-here/").status_code == 401
    assert caller.get("/internal/nothing-here/").status_code == 404


def test_a_service_that_accepts_no_caller_refuses_the_owner_of_posts(caller, settings):
    settings.INTERNAL_CALLERS = {}
    assert counts(caller, uuid.uuid4()).status_code == 403
