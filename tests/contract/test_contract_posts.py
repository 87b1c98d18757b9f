"""Posts: create, read, list (order, pagination), delete, unknown and malformed ids."""

from __future__ import annotations

import math
import time
import uuid

import pytest
from contract_support import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ApiClient,
    assert_detail_error,
    assert_error_shape,
    assert_list_shape,
    assert_post_shape,
    assert_recent,
    assert_same_origin,
    assert_status,
    describe,
    json_body,
    now_utc,
    parse_timestamp,
    unique,
)

pytestmark = pytest.mark.contract


# -- create and read ------------------------------------------------------------


def test_create_post_returns_201_with_every_field(api: ApiClient) -> None:
    title = unique("create")
    body = f"Body of {title}\nsecond line"
    before = now_utc()
    resp = api.post("/api/posts/", json={"title": title, "body": body})
    after = now_utc()

    assert_status(resp, 201)
    post = json_body(resp)
    assert_post_shape(post)
    api.created_post_ids.append(post["id"])
    assert post["title"] == title
    assert post["body"] == body
    assert post["comment_count"] == 0
    assert str(uuid.UUID(post["id"])) == post["id"]
    assert_recent(post["created_at"], before, after)


def test_create_post_trims_title_and_body(api: ApiClient) -> None:
    marker = unique("trim")
    post = api.create_post(title=f"  \t{marker}  x \n ", body="\n\n  line one\n\n  line two \t\n")
    assert post["title"] == f"{marker}  x"
    assert post["body"] == "line one\n\n  line two"
    assert api.get_post(post["id"])["title"] == f"{marker}  x"


def test_create_post_accepts_json_with_charset(api: ApiClient) -> None:
    title = unique("charset")
    resp = api.post(
        "/api/posts/",
        data=f'{{"title": "{title}", "body": "b"}}'.encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert_status(resp, 201)
    post = json_body(resp)
    api.created_post_ids.append(post["id"])
    assert post["title"] == title


def test_create_post_round_trips_unicode(api: ApiClient) -> None:
    title = "Grüße 🌍 " + unique("unicode")
    body = "日本語のテキスト — ünïcödé\n🎉"
    post = api.create_post(title=title, body=body)
    fetched = api.get_post(post["id"])
    assert (fetched["title"], fetched["body"]) == (title, body)


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(
            {"created_at": "2001-01-01T00:00:00.000Z", "comment_count": 42}, id="plausible-values"
        ),
        pytest.param(
            {"id": "not-a-uuid", "created_at": "yesterday", "comment_count": "many"},
            id="garbage-values",
        ),
    ],
)
def test_create_post_ignores_read_only_fields(api: ApiClient, forged: dict) -> None:
    victim = api.create_post()
    forged = {"id": victim["id"], **forged}
    title = unique("readonly")
    before = now_utc()
    resp = api.post("/api/posts/", json={"title": title, "body": "b", **forged})
    after = now_utc()

    assert_status(resp, 201)
    post = json_body(resp)
    assert_post_shape(post)
    api.created_post_ids.append(post["id"])
    assert post["id"] != forged["id"]
    assert post["id"] != victim["id"]
    assert post["comment_count"] == 0
    assert_recent(post["created_at"], before, after)
    # The existing post whose id was sent is untouched.
    assert api.get_post(victim["id"]) == victim
    assert api.get_post(post["id"])["title"] == title


def test_get_post_by_id(api: ApiClient) -> None:
    created = api.create_post(body="detail body")
    resp = api.get(f"/api/posts/{created['id']}/")
    assert_status(resp, 200)
    assert json_body(resp) == created


UNKNOWN_OR_MALFORMED_IDS = [
    pytest.param(lambda: str(uuid.uuid4()), id="unknown-uuid"),
    pytest.param(lambda: "00000000-0000-0000-0000-000000000000", id="nil-uuid"),
    pytest.param(lambda: "not-a-uuid", id="not-a-uuid"),
    pytest.param(lambda: "123", id="number"),
    pytest.param(lambda: str(uuid.uuid4()) + "0", id="uuid-plus-char"),
    pytest.param(lambda: "g" * 8 + "-0000-0000-0000-" + "0" * 12, id="non-hex-uuid"),
    pytest.param(lambda: "%7B%22%24gt%22%3A%22%22%7D", id="mongo-operator"),
    pytest.param(lambda: "%27%20OR%20%271%27%3D%271", id="sql-quote"),
    pytest.param(lambda: "a" * 500, id="very-long"),
]


@pytest.mark.parametrize("make_id", UNKNOWN_OR_MALFORMED_IDS)
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("DELETE", ""), ("GET", "comments/"), ("POST", "comments/")],
    ids=["get-post", "delete-post", "list-comments", "create-comment"],
)
def test_unknown_or_malformed_post_id_is_json_404(
    api: ApiClient, make_id, method: str, suffix: str
) -> None:
    post_id = make_id()
    kwargs = {"json": {"body": unique("orphan")}} if method == "POST" else {}
    resp = api.request(method, f"/api/posts/{post_id}/{suffix}", **kwargs)
    assert_detail_error(resp, 404)


@pytest.mark.parametrize(
    "spell",
    [
        pytest.param(str.upper, id="uppercase"),
        pytest.param(lambda s: s.replace("-", ""), id="no-dashes"),
        pytest.param(lambda s: "{" + s + "}", id="braces"),
        pytest.param(lambda s: "urn:uuid:" + s, id="urn"),
    ],
)
def test_alternative_spellings_of_an_id_never_fail_with_5xx(
    api: ApiClient, post: dict, spell
) -> None:
    # The contract only promises canonical UUID strings; other spellings may be
    # found or be a 404 (interpretation), but must never crash or leak another shape.
    resp = api.get(f"/api/posts/{spell(post['id'])}/")
    assert_status(resp, 200, 404)
    body = json_body(resp)
    if resp.status_code == 200:
        assert_post_shape(body)
        assert body["id"] == post["id"], "the canonical id must be rendered"
    else:
        assert_error_shape(body, resp)


# -- list ---------------------------------------------------------------------------


def test_list_shape_and_newest_first(api: ApiClient) -> None:
    created = []
    for i in range(3):
        created.append(api.create_post(title=unique(f"order-{i}")))
        time.sleep(0.01)  # distinct millisecond timestamps

    resp = api.get("/api/posts/", params={"page_size": MAX_PAGE_SIZE})
    assert_status(resp, 200)
    page = json_body(resp)
    assert_list_shape(page)
    assert page["previous"] is None
    assert page["count"] >= 3
    for item in page["results"]:
        assert_post_shape(item)

    stamps = [parse_timestamp(p["created_at"]) for p in page["results"]]
    assert stamps == sorted(stamps, reverse=True), "posts are not newest first"

    ids = [p["id"] for p in page["results"]]
    assert all(p["id"] in ids for p in created), "freshly created posts missing from the first page"
    positions = [ids.index(p["id"]) for p in created]
    assert positions == sorted(positions, reverse=True), "our newest post must come first"

    listed = next(p for p in page["results"] if p["id"] == created[0]["id"])
    assert listed == created[0], "list items must have the same representation as the detail"


def test_default_page_size_is_20(api: ApiClient) -> None:
    page = api.list_posts_with_at_least(DEFAULT_PAGE_SIZE + 1)
    assert len(page["results"]) == DEFAULT_PAGE_SIZE
    assert page["next"] is not None
    assert page["previous"] is None


def test_page_size_is_honoured(api: ApiClient) -> None:
    page = api.list_posts_with_at_least(6, page_size=5)
    assert len(page["results"]) == 5
    assert page["count"] >= 6
    assert page["next"] is not None


@pytest.mark.parametrize(
    "page_size", ["100", "101", "1000", "100000000000000000000000000000", "9" * 4000]
)
def test_page_size_is_capped_at_100(api: ApiClient, page_size: str) -> None:
    page = api.list_posts_with_at_least(MAX_PAGE_SIZE + 1, page_size=page_size)
    assert len(page["results"]) == min(MAX_PAGE_SIZE, page["count"]) == MAX_PAGE_SIZE
    assert page["next"] is not None
    # The next link also stays capped.
    resp = api.get(page["next"])
    assert_status(resp, 200)
    assert len(json_body(resp)["results"]) <= MAX_PAGE_SIZE


def test_next_and_previous_are_absolute_links_that_keep_host_and_port(
    api: ApiClient, base_url: str
) -> None:
    first = api.list_posts_with_at_least(11, page_size=5)
    assert first["previous"] is None
    assert first["next"] is not None
    assert_same_origin(first["next"], base_url)

    resp = api.get(first["next"])
    assert_status(resp, 200)
    second = json_body(resp)
    assert_list_shape(second)
    assert len(second["results"]) == 5, "page_size must survive in the next link"
    assert second["previous"] is not None
    assert second["next"] is not None
    assert_same_origin(second["previous"], base_url)
    assert_same_origin(second["next"], base_url)
    assert {p["id"] for p in second["results"]}.isdisjoint(
        {p["id"] for p in first["results"][:1]}
    ), "page 2 repeats the newest post of page 1"

    resp = api.get(second["previous"])
    assert_status(resp, 200)
    back = json_body(resp)
    assert_list_shape(back)
    assert back["previous"] is None
    assert len(back["results"]) == 5


def test_last_page_has_no_next(api: ApiClient) -> None:
    api.ensure_post_count(3)
    for _ in range(3):  # other clients may add posts between the two requests
        count = api.post_count()
        last = max(1, math.ceil(count / MAX_PAGE_SIZE))
        page = api.list_posts(page_size=MAX_PAGE_SIZE, page=last)
        if page["count"] == count:
            break
    assert page["next"] is None, f"last page {last} of {count} has a next link"
    assert len(page["results"]) == count - (last - 1) * MAX_PAGE_SIZE
    if last > 1:
        assert page["previous"] is not None


def test_page_past_the_end_is_json_404(api: ApiClient) -> None:
    api.ensure_post_count(1)
    for _ in range(3):  # other clients may add posts between the two requests
        count = api.post_count()
        past = math.ceil(count / MAX_PAGE_SIZE) + 1
        resp = api.get("/api/posts/", params={"page_size": MAX_PAGE_SIZE, "page": past})
        if resp.status_code == 404 or api.post_count() == count:
            break
    assert_detail_error(resp, 404)


@pytest.mark.parametrize("page", ["1000000", "99999999999999999999999999"])
def test_far_away_page_is_json_404(api: ApiClient, page: str) -> None:
    assert_detail_error(api.get("/api/posts/", params={"page": page}), 404)


BAD_PAGE_PARAMS = [
    ("page", "0"),
    ("page", "-1"),
    ("page", "abc"),
    ("page", "1.5"),
    ("page", "last"),
    ("page", "1e3"),
    ("page_size", "0"),
    ("page_size", "-1"),
    ("page_size", "abc"),
    ("page_size", "1.5"),
]


@pytest.mark.parametrize(("name", "value"), BAD_PAGE_PARAMS)
def test_bad_page_params_on_posts_are_json_400(api: ApiClient, name: str, value: str) -> None:
    resp = api.get("/api/posts/", params={name: value})
    assert_status(resp, 400)
    assert_error_shape(json_body(resp), resp)


# -- delete -------------------------------------------------------------------------


def test_delete_post_then_404(api: ApiClient) -> None:
    post = api.create_post()
    resp = api.delete(f"/api/posts/{post['id']}/")
    assert_status(resp, 204)
    assert resp.content == b"", f"204 must have no body: {describe(resp)}"

    assert_detail_error(api.get(f"/api/posts/{post['id']}/"), 404)
    assert post["id"] not in {p["id"] for p in api.newest_posts()}
    assert_detail_error(api.delete(f"/api/posts/{post['id']}/"), 404)


def test_delete_leaves_other_posts_alone(api: ApiClient) -> None:
    keep, gone = api.create_post(), api.create_post()
    assert_status(api.delete(f"/api/posts/{gone['id']}/"), 204)
    assert api.get_post(keep["id"]) == keep


@pytest.mark.parametrize("digits", [19, 4000], ids=["past-int64", "thousands"])
def test_a_page_number_of_many_digits_is_past_the_end(api: ApiClient, digits: int) -> None:
    # (Past 4,300 digits Python refuses int(): the unit tests of the
    # pagination cover that; a request line that long is refused by the WSGI
    # server before any app sees it.)
    api.ensure_post_count(1)
    resp = api.get("/api/posts/", params={"page": "9" * digits})
    assert_detail_error(resp, 404)
