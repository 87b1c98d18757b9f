"""Browser tests of the web UI (web/) against a live stack.

Run: ``.venv/bin/pytest tests/e2e -p no:cacheprovider -q``; set
``E2E_BASE_URL`` to test a running stack (e.g. behind the gateway) instead of
the throwaway monolith the conftest starts, and ``E2E_SCREENSHOT_DIR`` to keep
the screenshots.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

POST_URL = re.compile(r"#/posts/([0-9a-fA-F-]{36})$")
# Eventually consistent stages converge within 5 s; leave some slack.
# Times the one factor every suite's deadlines share (TEST_TIME_SCALE; read
# here, not imported: the browser test imports no project code).
CONVERGENCE_S = 10.0 * float(os.environ.get("TEST_TIME_SCALE") or 1)


def component_pattern(components: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("^(" + "|".join(map(re.escape, components)) + ")$")


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


def post_item(page: Page, post_id: str):
    return page.locator(f'[data-testid="post-item"][data-post-id="{post_id}"]')


def create_post_via_ui(page: Page, title: str, body: str) -> str:
    page.get_by_test_id("new-post-title").fill(title)
    page.get_by_test_id("new-post-body").fill(body)
    page.get_by_test_id("new-post-submit").click()
    expect(page).to_have_url(POST_URL)
    expect(page.get_by_test_id("post-title")).to_have_text(title)
    match = POST_URL.search(page.url)
    assert match
    return match.group(1)


def create_post_via_api(page: Page, base_url: str, title: str, body: str) -> dict:
    res = page.request.post(
        f"{base_url}/api/posts/",
        data=json.dumps({"title": title, "body": body}),
        headers={"Content-Type": "application/json"},
    )
    assert res.status == 201, res.text()
    return res.json()


def delete_post_via_api(page: Page, base_url: str, post_id: str) -> None:
    res = page.request.delete(f"{base_url}/api/posts/{post_id}/")
    assert res.status in (204, 404), res.text()


def eventually(page: Page, check: Callable[[], None], timeout_s: float = CONVERGENCE_S) -> None:
    """Re-run ``check`` (re-loading the page between tries) until it passes or the deadline hits."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            page.reload()


def test_post_lifecycle(page: Page, base_url: str, expected_components: tuple[str, ...]) -> None:
    served_by = component_pattern(expected_components)
    title = unique("E2E lifecycle")
    body = "First line of the post.\n\nSecond paragraph, long enough to make an excerpt."

    page.goto("/")
    expect(page.get_by_test_id("served-by-list")).to_have_attribute("data-component", served_by)
    expect(page.get_by_test_id("served-by-list").locator(".badge-value")).to_have_text(served_by)

    # Create: the UI opens the new post.
    post_id = create_post_via_ui(page, title, body)
    expect(page.get_by_test_id("post-body")).to_have_text(body)
    expect(page.get_by_test_id("post-comment-count")).to_have_text("0 comments")
    expect(page.get_by_test_id("post-created")).to_have_attribute(
        "datetime", re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    )
    expect(page.get_by_test_id("served-by-post")).to_have_attribute("data-component", served_by)
    expect(page.get_by_test_id("comments-empty")).to_be_visible()

    # The list shows it, newest first, with its comment count.
    page.get_by_test_id("back-link").click()
    item = post_item(page, post_id)
    expect(item).to_be_visible()
    expect(item.get_by_test_id("post-link")).to_have_text(title)
    expect(item.get_by_test_id("comment-count")).to_have_text("0 comments")
    expect(page.get_by_test_id("post-item").first).to_have_attribute("data-post-id", post_id)
    expect(page.get_by_test_id("page-status")).to_have_text(re.compile(r"^Page 1 of \d+$"))

    # Open it and comment.
    item.get_by_test_id("post-link").click()
    expect(page.get_by_test_id("post-title")).to_have_text(title)
    comment_text = unique("A thoughtful comment")
    page.get_by_test_id("new-comment-body").fill(comment_text)
    page.get_by_test_id("new-comment-submit").click()
    comments = page.get_by_test_id("comment-list").get_by_test_id("comment-item")
    expect(comments).to_have_count(1)
    expect(comments.first.get_by_test_id("comment-body")).to_have_text(comment_text)
    expect(page.get_by_test_id("post-comment-count")).to_have_text("1 comment")
    expect(page.get_by_test_id("comments-total")).to_have_text("(1)")
    expect(page.get_by_test_id("new-comment-body")).to_have_value("")
    expect(page.get_by_test_id("served-by-comments")).to_have_attribute("data-component", served_by)

    # An empty comment is refused by the API; its message sits next to the field.
    page.get_by_test_id("new-comment-submit").click()
    field = page.locator(".field").filter(has=page.get_by_test_id("new-comment-body"))
    error = field.get_by_test_id("new-comment-body-error")
    expect(error).to_be_visible()
    expect(error).not_to_be_empty()
    expect(page.get_by_test_id("new-comment-body")).to_have_attribute("aria-invalid", "true")
    expect(comments).to_have_count(1)

    # The call log shows what happened, with who served it.
    log_entries = page.get_by_test_id("api-log-entry")
    expect(log_entries.first.get_by_test_id("api-log-status")).to_have_text("400")
    expect(log_entries.first.get_by_test_id("api-log-served-by")).to_have_text(served_by)
    expect(log_entries.nth(1).get_by_test_id("api-log-status")).to_have_text("201")
    expect(log_entries).not_to_have_count(0)

    # Back in the list the count has moved from 0 to 1 (eventually, on async stages).
    page.get_by_test_id("back-link").click()
    list_count = post_item(page, post_id).get_by_test_id("comment-count")
    eventually(page, lambda: expect(list_count).to_have_text("1 comment", timeout=2_000))

    # A reload of the post shows the comment from the server, not just the local append.
    page.goto(f"/#/posts/{post_id}")
    expect(page.get_by_test_id("comment-item")).to_have_count(1)
    expect(page.get_by_test_id("comment-body")).to_have_text(comment_text)

    # Delete: needs a second click, can be cancelled.
    page.get_by_test_id("delete-post").click()
    expect(page.get_by_test_id("confirm-delete")).to_be_visible()
    page.get_by_test_id("cancel-delete").click()
    expect(page.get_by_test_id("confirm-delete")).to_have_count(0)
    page.get_by_test_id("delete-post").click()
    page.get_by_test_id("confirm-delete").click()

    expect(page).to_have_url(re.compile(r"#/$"))
    expect(page.get_by_test_id("flash")).to_contain_text(title)
    expect(page.get_by_test_id("served-by-list")).to_have_attribute("data-component", served_by)
    expect(post_item(page, post_id)).to_have_count(0)
    res = page.request.get(f"{base_url}/api/posts/{post_id}/")
    assert res.status == 404
    assert "detail" in res.json()

    # The old address now says so instead of breaking.
    page.goto(f"/#/posts/{post_id}")
    expect(page.get_by_test_id("post-missing")).to_be_visible()


def test_post_form_shows_field_errors(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_test_id("served-by-list")).not_to_have_attribute("data-component", "pending")
    page.get_by_test_id("new-post-title").fill("x" * 201)
    page.get_by_test_id("new-post-body").fill("   ")
    page.get_by_test_id("new-post-submit").click()

    for name in ("title", "body"):
        control = page.get_by_test_id(f"new-post-{name}")
        field = page.locator(".field").filter(has=control)
        error = field.get_by_test_id(f"new-post-{name}-error")
        expect(error).to_be_visible()
        expect(error).not_to_be_empty()
        expect(control).to_have_attribute("aria-invalid", "true")
        expect(control).to_have_attribute("aria-describedby", re.compile(f"new-post-{name}-error"))
    expect(page).to_have_url(re.compile(r"#/$"))
    # Input is kept so the user can fix it.
    expect(page.get_by_test_id("new-post-title")).to_have_value("x" * 201)

    # Fixing the input clears the errors and creates the post.
    title = unique("E2E fixed")
    page.get_by_test_id("new-post-title").fill(title)
    page.get_by_test_id("new-post-body").fill("Now valid.")
    page.get_by_test_id("new-post-submit").click()
    expect(page).to_have_url(POST_URL)
    expect(page.get_by_test_id("post-title")).to_have_text(title)
    page.get_by_test_id("delete-post").click()
    page.get_by_test_id("confirm-delete").click()
    expect(page).to_have_url(re.compile(r"#/$"))


def test_user_content_is_rendered_as_text(page: Page, base_url: str) -> None:
    title = '<img src=x onerror="window.__xss=1"> ' + uuid.uuid4().hex[:8]
    body = "<script>window.__xss=1</script><b>not bold</b>"
    post = create_post_via_api(page, base_url, title, body)
    try:
        page.goto("/")
        item = post_item(page, post["id"])
        expect(item.get_by_test_id("post-link")).to_have_text(title)
        expect(item.locator("img, script, b")).to_have_count(0)
        item.get_by_test_id("post-link").click()
        expect(page.get_by_test_id("post-body")).to_have_text(body)
        expect(page.get_by_test_id("post-detail").locator("img, script, b")).to_have_count(0)
        assert page.evaluate("window.__xss") is None
    finally:
        delete_post_via_api(page, base_url, post["id"])


def test_pagination(page: Page, base_url: str) -> None:
    marker = uuid.uuid4().hex[:8]
    created = [
        create_post_via_api(page, base_url, f"Paged {marker} #{i:02d}", "body") for i in range(21)
    ]
    try:
        page.goto("/")
        expect(page.get_by_test_id("post-item")).to_have_count(20)
        page_status = page.get_by_test_id("page-status")
        expect(page_status).to_have_text(re.compile(r"^Page 1 of ([2-9]|\d\d+)$"))
        expect(page.get_by_test_id("page-prev")).to_have_attribute("aria-disabled", "true")
        # Newest first: the last one created leads page 1.
        first_item = page.get_by_test_id("post-item").first
        expect(first_item).to_have_attribute("data-post-id", created[-1]["id"])

        page.get_by_test_id("page-next").click()
        expect(page).to_have_url(re.compile(r"#/\?page=2$"))
        expect(page.get_by_test_id("page-status")).to_have_text(re.compile(r"^Page 2 of \d+$"))
        expect(page.get_by_test_id("page-prev")).not_to_have_attribute("aria-disabled", "true")
        expect(post_item(page, created[-1]["id"])).to_have_count(0)

        page.get_by_test_id("page-prev").click()
        expect(page.get_by_test_id("page-status")).to_have_text(re.compile(r"^Page 1 of \d+$"))

        page.goto("/#/?page=100000")
        expect(page.get_by_test_id("page-missing")).to_be_visible()
    finally:
        for post in created:
            delete_post_via_api(page, base_url, post["id"])


def test_comments_load_more(page: Page, base_url: str) -> None:
    post = create_post_via_api(page, base_url, unique("E2E many comments"), "body")
    try:
        for i in range(21):
            res = page.request.post(
                f"{base_url}/api/posts/{post['id']}/comments/",
                data=json.dumps({"body": f"comment {i:02d}"}),
                headers={"Content-Type": "application/json"},
            )
            assert res.status == 201, res.text()
        page.goto(f"/#/posts/{post['id']}")
        comments = page.get_by_test_id("comment-item")
        expect(comments).to_have_count(20)
        # Oldest first.
        expect(comments.first.get_by_test_id("comment-body")).to_have_text("comment 00")
        expect(page.get_by_test_id("comments-total")).to_have_text("(21)")
        page.get_by_test_id("load-more-comments").click()
        expect(comments).to_have_count(21)
        expect(comments.last.get_by_test_id("comment-body")).to_have_text("comment 20")
        expect(page.get_by_test_id("load-more-comments")).to_be_hidden()

        page.get_by_test_id("new-comment-body").fill("comment 21")
        page.get_by_test_id("new-comment-submit").click()
        expect(comments).to_have_count(22)
        expect(comments.last.get_by_test_id("comment-body")).to_have_text("comment 21")
        expect(page.get_by_test_id("comments-total")).to_have_text("(22)")
    finally:
        delete_post_via_api(page, base_url, post["id"])


def test_error_banner_on_5xx_and_network_failure(page: Page, screenshot_dir) -> None:
    page.route(
        re.compile(r"/api/posts/\?"),
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            headers={"X-Served-By": "gateway", "X-Request-ID": "e2e-fake-503"},
            body=json.dumps({"detail": "comments service unavailable"}),
        ),
    )
    page.goto("/")
    banner = page.get_by_test_id("error-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("comments service unavailable")
    expect(page.get_by_test_id("served-by-list")).to_have_attribute("data-component", "gateway")
    # Non-blocking: the form is still usable and the banner can be dismissed.
    expect(page.get_by_test_id("new-post-title")).to_be_editable()
    banner_shot = screenshot_dir / "banner-1280x800.png"
    page.screenshot(path=str(banner_shot))
    assert banner_shot.stat().st_size > 0
    page.get_by_test_id("error-banner-close").click()
    expect(banner).to_have_count(0)

    page.unroute(re.compile(r"/api/posts/\?"))
    page.route(re.compile(r"/api/posts/\?"), lambda route: route.abort("connectionrefused"))
    page.reload()
    expect(page.get_by_test_id("error-banner")).to_contain_text("could not be reached")
    expect(
        page.get_by_test_id("api-log-entry").first.get_by_test_id("api-log-status")
    ).to_have_text("ERR")


UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class CreateCalls:
    """A page.route handler for the POSTs of one create route: it records each
    one's Idempotency-Key and answers the attempts listed in ``lost`` with a
    gateway's JSON 504, like a gateway that gave up on its upstream. With
    ``reach_server`` a lost attempt still reaches the server first (the
    create happened, only its answer was lost); without, it never leaves the
    browser. Every other request goes on unchanged."""

    def __init__(self, lost: set[int], *, reach_server: bool) -> None:
        self.lost = lost
        self.reach_server = reach_server
        self.keys: list[str] = []  # "" for a request without the header

    def __call__(self, route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        attempt = len(self.keys)
        self.keys.append(route.request.header_value("idempotency-key") or "")
        if attempt not in self.lost:
            route.continue_()
            return
        if self.reach_server:
            route.fetch()
        route.fulfill(
            status=504,
            content_type="application/json",
            headers={"X-Served-By": "gateway", "X-Request-ID": f"e2e-fake-504-{attempt}"},
            body=json.dumps({"detail": "Upstream timed out.", "upstream": "test"}),
        )


def posts_titled(page: Page, base_url: str, title: str) -> list[dict]:
    res = page.request.get(f"{base_url}/api/posts/?page_size=100")
    assert res.status == 200, res.text()
    return [post for post in res.json()["results"] if post["title"] == title]


@pytest.mark.parametrize("uuid_source", ["randomUUID", "getRandomValues"])
def test_post_form_retry_keeps_its_idempotency_key(
    page: Page, base_url: str, uuid_source: str
) -> None:
    if uuid_source == "getRandomValues":
        # As in a non-secure context (plain http to another host): no crypto.randomUUID.
        page.add_init_script("delete Crypto.prototype.randomUUID;")
    # Attempts 0 and 2 get a 504; 1 and 3 go through.
    calls = CreateCalls({0, 2}, reach_server=False)
    page.route(re.compile(r"/api/posts/$"), calls)
    title, other_title = unique("E2E retried post"), unique("E2E edited post")
    page.goto("/")
    assert page.evaluate("typeof crypto.randomUUID") == (
        "function" if uuid_source == "randomUUID" else "undefined"
    )
    created: list[str] = []
    try:
        # A 504: the form says a retry is safe and keeps the input.
        page.get_by_test_id("new-post-title").fill(title)
        page.get_by_test_id("new-post-body").fill("Sent twice, stored once.")
        page.get_by_test_id("new-post-submit").click()
        form_error = page.get_by_test_id("new-post-form-error")
        expect(form_error).to_contain_text("may not have been saved")
        expect(form_error).to_contain_text("Submitting again is safe")
        expect(page.get_by_test_id("new-post-title")).to_have_value(title)

        # The retry of the same content: the same key; it goes through.
        page.get_by_test_id("new-post-submit").click()
        expect(page).to_have_url(POST_URL)
        created.append(POST_URL.search(page.url).group(1))
        assert len(calls.keys) == 2
        assert UUID4.match(calls.keys[0]), calls.keys
        assert calls.keys[1] == calls.keys[0]

        # After a success the same content is a new submission: a new key.
        page.get_by_test_id("back-link").click()
        page.get_by_test_id("new-post-title").fill(title)
        page.get_by_test_id("new-post-body").fill("Sent twice, stored once.")
        page.get_by_test_id("new-post-submit").click()
        expect(form_error).to_contain_text("Submitting again is safe")
        assert len(calls.keys) == 3
        assert UUID4.match(calls.keys[2]), calls.keys
        assert calls.keys[2] != calls.keys[0]

        # Edited after the failure: another request, so a new key.
        page.get_by_test_id("new-post-title").fill(other_title)
        page.get_by_test_id("new-post-submit").click()
        expect(page).to_have_url(POST_URL)
        expect(page.get_by_test_id("post-title")).to_have_text(other_title)
        created.append(POST_URL.search(page.url).group(1))
        assert len(calls.keys) == 4
        assert UUID4.match(calls.keys[3]), calls.keys
        assert calls.keys[3] not in calls.keys[:3]

        # Only the attempts that went through created something.
        assert [p["id"] for p in posts_titled(page, base_url, title)] == [created[0]]
        assert [p["id"] for p in posts_titled(page, base_url, other_title)] == [created[1]]
    finally:
        for post_id in created:
            delete_post_via_api(page, base_url, post_id)


def test_comment_retry_after_a_lost_answer_is_replayed(page: Page, base_url: str) -> None:
    post = create_post_via_api(page, base_url, unique("E2E lost answer"), "body")
    comments_url = f"{base_url}/api/posts/{post['id']}/comments/"
    # Attempt 0 is stored by the server, but the browser gets a 504 instead of its 201.
    calls = CreateCalls({0}, reach_server=True)
    page.route(re.compile(r"/api/posts/[^/]+/comments/$"), calls)
    try:
        page.goto(f"/#/posts/{post['id']}")
        expect(page.get_by_test_id("comments-empty")).to_be_visible()
        text = unique("Only once")
        page.get_by_test_id("new-comment-body").fill(text)
        page.get_by_test_id("new-comment-submit").click()
        form_error = page.get_by_test_id("new-comment-form-error")
        expect(form_error).to_contain_text("Submitting again is safe")
        expect(page.get_by_test_id("new-comment-body")).to_have_value(text)

        # The retry carries the same key: the server answers with the first
        # comment (Idempotent-Replayed) instead of storing a second one.
        with page.expect_response(lambda r: r.request.method == "POST") as retried:
            page.get_by_test_id("new-comment-submit").click()
        assert retried.value.status == 201
        assert retried.value.header_value("idempotent-replayed") == "true"
        comments = page.get_by_test_id("comment-list").get_by_test_id("comment-item")
        expect(comments).to_have_count(1)
        expect(comments.first.get_by_test_id("comment-body")).to_have_text(text)
        expect(page.get_by_test_id("post-comment-count")).to_have_text("1 comment")
        expect(page.get_by_test_id("new-comment-body")).to_have_value("")
        last_call = page.get_by_test_id("api-log-entry").first
        expect(last_call.get_by_test_id("api-log-replayed")).to_be_visible()
        assert len(calls.keys) == 2
        assert UUID4.match(calls.keys[0]), calls.keys
        assert calls.keys[1] == calls.keys[0]
        stored = page.request.get(comments_url).json()
        assert [c["body"] for c in stored["results"]] == [text]

        # After the success the same text is a new comment, with a new key.
        page.get_by_test_id("new-comment-body").fill(text)
        page.get_by_test_id("new-comment-submit").click()
        expect(comments).to_have_count(2)
        assert len(calls.keys) == 3
        assert UUID4.match(calls.keys[2]), calls.keys
        assert calls.keys[2] != calls.keys[0]
        expect(last_call.get_by_test_id("api-log-status")).to_have_text("201")
        stored = page.request.get(comments_url).json()
        assert [c["body"] for c in stored["results"]] == [text, text]
    finally:
        delete_post_via_api(page, base_url, post["id"])


@pytest.mark.parametrize(
    "viewport",
    [{"width": 390, "height": 844}, {"width": 1280, "height": 800}],
    ids=["phone", "desktop"],
)
def test_screenshots(browser, base_url: str, screenshot_dir, viewport: dict) -> None:
    context = browser.new_context(base_url=base_url, viewport=viewport, device_scale_factor=1)
    page = context.new_page()
    post = create_post_via_api(
        page,
        base_url,
        "Strangler fig: routing one call at a time",
        "The gateway sends comment routes to the comments service while everything else still "
        "goes to the monolith.\n\nWatch the served-by badges change as the stages advance.",
    )
    for text in ("Nice walkthrough.", "Which stage adds the outbox?"):
        res = page.request.post(
            f"{base_url}/api/posts/{post['id']}/comments/",
            data=json.dumps({"body": text}),
            headers={"Content-Type": "application/json"},
        )
        assert res.status == 201, res.text()
    name = f"{viewport['width']}x{viewport['height']}"
    try:
        page.goto("/")
        expect(post_item(page, post["id"])).to_be_visible()
        list_badge = page.get_by_test_id("served-by-list")
        expect(list_badge).not_to_have_attribute("data-component", "pending")
        list_shot = screenshot_dir / f"list-{name}.png"
        page.screenshot(path=str(list_shot), full_page=True)

        page.goto(f"/#/posts/{post['id']}")
        expect(page.get_by_test_id("comment-item")).to_have_count(2)
        page.get_by_test_id("new-comment-submit").click()
        expect(page.get_by_test_id("new-comment-body-error")).to_be_visible()
        post_shot = screenshot_dir / f"post-{name}.png"
        page.screenshot(path=str(post_shot), full_page=True)

        page.get_by_test_id("delete-post").click()
        expect(page.get_by_test_id("confirm-delete")).to_be_visible()
        confirm_shot = screenshot_dir / f"confirm-{name}.png"
        page.screenshot(path=str(confirm_shot), full_page=False)

        for shot in (list_shot, post_shot, confirm_shot):
            assert shot.stat().st_size > 0, shot
        # Nothing overflows sideways on a phone.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    finally:
        delete_post_via_api(page, base_url, post["id"])
        context.close()
