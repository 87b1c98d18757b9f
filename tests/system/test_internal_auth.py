"""The /internal/ routes, tried from outside as an attacker would (ADR 0006):
each component that answers them, at every stage and mode that has them,
refuses a call without a credential (JSON 401), with a malformed or wrong one
and with a real credential of a component it does not accept (JSON 403), and
the refusal changes nothing. The caller the stage table names gets through.

The stacks are real processes (gunicorn, PostgreSQL, the MongoDB-wire
server, the broker where the stage has events) behind real nginx."""

from __future__ import annotations

import uuid

import pytest
import requests

from stages import table
from tests.support.harness import stage_stack

TIMEOUT = 10
# Each component's /internal/ routes: (method, path, JSON body), {post} the post's id.
ROUTES: dict[str, tuple[tuple[str, str, dict | None], ...]] = {
    "monolith": (("GET", "/internal/posts/{post}/", None),),
    "comments": (
        ("POST", "/internal/comment-counts/", {"post_ids": ["{post}"]}),
        ("DELETE", "/internal/posts/{post}/comments/", None),
    ),
    "posts": (("GET", "/internal/posts/{post}/", None),),  # [stage 4]
}

STACKS = [
    (stage, mode)
    for stage, spec in table.STAGES.items()
    for mode in spec.modes
    if any(table.accepted_callers(p) for p in spec.topology(mode).processes)
]


def accepted(stage: int, mode: str) -> dict[str, tuple[str, ...]]:
    """By app, the callers the stage table says its /internal/ routes accept."""
    found: dict[str, tuple[str, ...]] = {}
    for process in table.topology(stage, mode).processes:
        callers = table.accepted_callers(process)
        if callers:
            found[process.app] = callers
    return found


@pytest.fixture(scope="module", params=STACKS, ids=lambda sm: f"stage{sm[0]}-{sm[1]}")
def stack(request, tmp_path_factory):
    stage, mode = request.param
    log_dir = tmp_path_factory.mktemp(f"internal-auth-{stage}-{mode}")
    with stage_stack(stage, gateway="nginx", log_dir=log_dir, mode=mode) as running:
        yield stage, mode, running


def call(base: str, route: tuple[str, str, dict | None], post_id: str, headers: dict):
    method, path, body = route
    json_body = None
    if body is not None:
        json_body = {k: [v.format(post=post_id) for v in vs] for k, vs in body.items()}
    return requests.request(
        method,
        base + path.format(post=post_id),
        json=json_body,
        headers=headers,
        timeout=TIMEOUT,
    )


def bearer(name: str, token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}.{token}"}


def post_with_comments(url: str, n: int) -> str:
    post = requests.post(f"{url}/api/posts/", json={"title": "t", "body": "b"}, timeout=TIMEOUT)
    assert post.status_code == 201, post.text
    post_id = post.json()["id"]
    for i in range(n):
        made = requests.post(
            f"{url}/api/posts/{post_id}/comments/", json={"body": f"c{i}"}, timeout=TIMEOUT
        )
        assert made.status_code == 201, made.text
    return post_id


def comment_ids(url: str, post_id: str) -> set[str]:
    listed = requests.get(f"{url}/api/posts/{post_id}/comments/", timeout=TIMEOUT)
    assert listed.status_code == 200, listed.text
    return {c["id"] for c in listed.json()["results"]}


def test_every_internal_route_refuses_a_missing_or_wrong_credential_and_changes_nothing(stack):
    stage, mode, running = stack
    post_id = post_with_comments(running.url, 2)
    before = comment_ids(running.url, post_id)
    assert len(before) == 2
    callees = accepted(stage, mode)
    assert callees, "a stage with /internal/ routes names who may call them"
    for app, callers in callees.items():
        base = running.urls[app]
        strangers = [other for other in running.tokens if other not in callers]
        refused_credentials = {
            "malformed": {"Authorization": "Bearer not-a-credential"},
            "right caller, wrong token": bearer(callers[0], "x" * 43),
            "unknown caller": bearer("intruder", running.tokens[callers[0]]),
            # A real component's real credential, but not one this app accepts.
            **{f"{other}'s own token": bearer(other, running.tokens[other]) for other in strangers},
        }
        for route in ROUTES[app]:
            # No bearer credential at all (none, or another scheme): 401.
            for headers in ({}, {"Authorization": f"Basic {running.tokens[callers[0]]}"}):
                missing = call(base, route, post_id, headers)
                assert missing.status_code == 401, (app, route, headers, missing.text)
                assert missing.headers["Content-Type"].startswith("application/json")
                assert missing.headers["WWW-Authenticate"].startswith("Bearer")
                assert "detail" in missing.json()
            for what, headers in refused_credentials.items():
                refused = call(base, route, post_id, headers)
                assert refused.status_code == 403, (app, route, what, refused.text)
                assert refused.json() == {"detail": "Invalid credentials for an internal route."}
        # Nothing the refused calls asked for happened.
        assert comment_ids(running.url, post_id) == before, app
        detail = requests.get(f"{running.url}/api/posts/{post_id}/", timeout=TIMEOUT)
        assert detail.status_code == 200


def test_the_caller_the_stage_names_gets_through(stack):
    """The other side of the refusals: with the credential the stage table
    gives, the same calls are answered, so the refusals above are the
    credential's doing, not a broken route."""
    stage, mode, running = stack
    post_id = post_with_comments(running.url, 1)
    for app, callers in accepted(stage, mode).items():
        headers = bearer(callers[0], running.tokens[callers[0]])
        base = running.urls[app]
        for route in ROUTES[app]:
            if route[0] == "DELETE":
                continue
            answered = call(base, route, post_id, headers)
            assert answered.status_code == 200, (app, route, answered.text)
        if app == "comments":
            delete = next(r for r in ROUTES[app] if r[0] == "DELETE")
            # The comments of another post: deleting them is what the owner of posts may do.
            other = post_with_comments(running.url, 1)
            assert call(base, delete, other, headers).status_code == 204
            # Counted, not listed: with POST_LOOKUP=async the call also
            # tombstones the post (it says the post is deleted): its list is a 404.
            counted = call(base, ROUTES[app][0], other, headers)
            assert counted.json()["counts"] == {other: 0}
            assert len(comment_ids(running.url, post_id)) == 1


def test_an_unknown_internal_path_is_refused_before_it_is_looked_up(stack):
    _, _, running = stack
    for app in accepted(*stack[:2]):
        missing = requests.get(f"{running.urls[app]}/internal/{uuid.uuid4()}/", timeout=TIMEOUT)
        assert missing.status_code == 401, app
