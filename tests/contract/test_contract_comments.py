"""Comments: create, list (oldest first, pagination), comment_count, cascade on post delete."""

from __future__ import annotations

import time
import uuid

import pytest
from contract_support import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ApiClient,
    assert_comment_shape,
    assert_detail_error,
    assert_error_shape,
    assert_list_shape,
    assert_recent,
    assert_same_origin,
    assert_status,
    json_body,
    now_utc,
    parse_timestamp,
    unique,
)

pytestmark = pytest.mark.contract


def test_create_comment_returns_201_with_every_field(api: ApiClient, post: dict) -> None:
    text = unique("comment")
    before = now_utc()
    resp = api.post(f"/api/posts/{post['id']}/comments/", json={"body": f"  \n{text}\t "})
    after = now_utc()

    assert_status(resp, 201)
    comment = json_body(resp)
    assert_comment_shape(comment)
    assert comment["post_id"] == post["id"]
    assert comment["body"] == text, "comment body must be trimmed"
    assert comment["id"] != post["id"]
    assert str(uuid.UUID(comment["id"])) == comment["id"]
    assert_recent(comment["created_at"], before, after)


def test_comment_right_after_the_posts_201(api: ApiClient) -> None:
    # Stage 3 looks posts up in a replica fed by events; the 201 must still be
    # enough for an immediate comment.
    for _ in range(5):
        post = api.create_post()
        comment = api.create_comment(post["id"])
        assert comment["post_id"] == post["id"]


def test_comment_ignores_read_only_fields(api: ApiClient) -> None:
    target, other = api.create_post(), api.create_post()
    forged_id = str(uuid.uuid4())
    text = unique("forged")
    before = now_utc()
    resp = api.post(
        f"/api/posts/{target['id']}/comments/",
        json={
            "body": text,
            "id": forged_id,
            "post_id": other["id"],
            "created_at": "2001-01-01T00:00:00.000Z",
        },
    )
    after = now_utc()
    assert_status(resp, 201)
    comment = json_body(resp)
    assert_comment_shape(comment)
    assert comment["id"] != forged_id
    assert comment["post_id"] == target["id"]
    assert_recent(comment["created_at"], before, after)
    assert [c["id"] for c in api.list_comments(target["id"])["results"]] == [comment["id"]]
    assert api.list_comments(other["id"])["count"] == 0


def test_empty_comment_list(api: ApiClient, post: dict) -> None:
    resp = api.get(f"/api/posts/{post['id']}/comments/")
    assert_status(resp, 200)
    assert json_body(resp) == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.fixture(scope="module")
def post_with_25_comments(api: ApiClient) -> tuple[dict, list[dict]]:
    post = api.create_post(title=unique("25 comments"))
    comments = []
    for i in range(25):
        comments.append(api.create_comment(post["id"], body=f"comment {i:02d}"))
        time.sleep(0.002)  # distinct millisecond timestamps: the order is then unambiguous
    return post, comments


def test_comments_list_oldest_first_with_default_page_size(
    api: ApiClient, base_url: str, post_with_25_comments
) -> None:
    post, created = post_with_25_comments
    resp = api.get(f"/api/posts/{post['id']}/comments/")
    assert_status(resp, 200)
    first = json_body(resp)
    assert_list_shape(first)
    assert first["count"] == 25
    assert first["previous"] is None
    assert len(first["results"]) == DEFAULT_PAGE_SIZE
    assert first["next"] is not None
    assert_same_origin(first["next"], base_url)
    for comment in first["results"]:
        assert_comment_shape(comment)
        assert comment["post_id"] == post["id"]

    resp = api.get(first["next"])
    assert_status(resp, 200)
    second = json_body(resp)
    assert_list_shape(second)
    assert second["count"] == 25
    assert len(second["results"]) == 5
    assert second["next"] is None
    assert second["previous"] is not None
    assert_same_origin(second["previous"], base_url)

    listed = first["results"] + second["results"]
    assert listed == created, "comments must be listed oldest first, as created"
    stamps = [parse_timestamp(c["created_at"]) for c in listed]
    assert stamps == sorted(stamps), "created_at must be non-decreasing"

    resp = api.get(second["previous"])
    assert_status(resp, 200)
    assert json_body(resp)["results"] == first["results"]


@pytest.mark.parametrize(("page_size", "sizes"), [(10, [10, 10, 5]), (25, [25]), (7, [7, 7, 7, 4])])
def test_comments_page_size_is_honoured(
    api: ApiClient, post_with_25_comments, page_size, sizes
) -> None:
    post, created = post_with_25_comments
    pages = []
    for number in range(1, len(sizes) + 1):
        pages.append(api.list_comments(post["id"], page=number, page_size=page_size))
    assert [len(p["results"]) for p in pages] == sizes
    assert pages[-1]["next"] is None
    assert [c for p in pages for c in p["results"]] == created
    assert_detail_error(
        api.get(
            f"/api/posts/{post['id']}/comments/",
            params={"page": len(sizes) + 1, "page_size": page_size},
        ),
        404,
    )


@pytest.mark.parametrize("page_size", ["100", "1000"])
def test_comments_page_size_is_capped(
    api: ApiClient, post_with_25_comments, page_size: str
) -> None:
    post, created = post_with_25_comments
    page = api.list_comments(post["id"], page_size=page_size)
    assert page["results"] == created
    assert page["next"] is None


def test_comments_page_past_the_end_is_json_404(api: ApiClient, post_with_25_comments) -> None:
    post, _ = post_with_25_comments
    assert_detail_error(api.get(f"/api/posts/{post['id']}/comments/", params={"page": 3}), 404)
    assert_detail_error(api.get(f"/api/posts/{post['id']}/comments/", params={"page": 1000}), 404)


def test_comments_page_2_of_an_empty_list_is_404(api: ApiClient, post: dict) -> None:
    assert_detail_error(api.get(f"/api/posts/{post['id']}/comments/", params={"page": 2}), 404)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("page", "0"),
        ("page", "-1"),
        ("page", "abc"),
        ("page", "1.5"),
        ("page", "last"),
        ("page_size", "0"),
        ("page_size", "-1"),
        ("page_size", "abc"),
        ("page_size", "1.5"),
    ],
)
def test_bad_page_params_on_comments_are_json_400(
    api: ApiClient, post_with_25_comments, name, value
) -> None:
    post, _ = post_with_25_comments
    resp = api.get(f"/api/posts/{post['id']}/comments/", params={name: value})
    assert_status(resp, 400)
    assert_error_shape(json_body(resp), resp)


def test_comment_count_converges(api: ApiClient, poll_until) -> None:
    post, bystander = api.create_post(title=unique("counted")), api.create_post()
    assert post["comment_count"] == 0
    for _ in range(3):
        api.create_comment(post["id"])

    poll_until(
        lambda: api.get_post(post["id"])["comment_count"],
        until=lambda n: n == 3,
        what="comment_count == 3 on the detail",
    )

    def listed_count():
        for item in api.list_posts(page_size=MAX_PAGE_SIZE)["results"]:
            if item["id"] == post["id"]:
                return item["comment_count"]
        return "post not on the first page"

    poll_until(listed_count, until=lambda n: n == 3, what="comment_count == 3 in the list")
    assert api.get_post(bystander["id"])["comment_count"] == 0


def test_comment_count_matches_big_post(api: ApiClient, post_with_25_comments, poll_until) -> None:
    post, _ = post_with_25_comments
    poll_until(
        lambda: api.get_post(post["id"])["comment_count"], until=lambda n: n == 25, what="25"
    )


def test_deleting_a_post_removes_its_comments(api: ApiClient, poll_until) -> None:
    post = api.create_post()
    for _ in range(2):
        api.create_comment(post["id"])
    assert api.list_comments(post["id"])["count"] == 2

    assert_status(api.delete(f"/api/posts/{post['id']}/"), 204)
    # The post itself is gone at once ...
    assert_detail_error(api.get(f"/api/posts/{post['id']}/"), 404)
    # ... its comments within 5 s.
    resp = poll_until(
        lambda: api.get(f"/api/posts/{post['id']}/comments/"),
        until=lambda r: r.status_code == 404,
        what="comments list 404 after the post's DELETE",
    )
    assert_detail_error(resp, 404)
    resp = poll_until(
        lambda: api.post(f"/api/posts/{post['id']}/comments/", json={"body": "too late"}),
        until=lambda r: r.status_code == 404,
        what="comment creation 404 after the post's DELETE",
    )
    assert_detail_error(resp, 404)
