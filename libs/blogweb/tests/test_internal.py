"""blogweb.internal: the credential of each caller of the /internal/ routes,
checked by one middleware in front of every such route, and sent by
call_service on the calls to them (and only to them)."""

from __future__ import annotations

import io
import json
import logging
import secrets
from contextlib import redirect_stdout

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import JsonResponse
from django.test import RequestFactory

from blogtest.http import JsonHandler, serving
from blogweb import internal
from blogweb.http import call_service

TOKEN = secrets.token_urlsafe(32)
OTHER = secrets.token_urlsafe(32)


@pytest.fixture
def accepts_monolith(settings):
    settings.INTERNAL_CALLERS = internal.parse_callers(internal.caller_entry("monolith", TOKEN))
    return settings


# --- settings ---------------------------------------------------------------------------


def test_callers_are_names_with_hashes_a_name_may_have_two_while_rotating():
    old, new = internal.token_hash(TOKEN), internal.token_hash(OTHER)
    text = f" monolith:{old}, posts:{new} ,monolith:{new},"
    assert internal.parse_callers(text) == {"monolith": (old, new), "posts": (new,)}
    assert internal.parse_callers("") == {}


@pytest.mark.parametrize(
    "entry",
    [
        TOKEN,  # a token pasted where its hash belongs
        f"monolith:{TOKEN}",
        "monolith",
        f"Monolith:{internal.token_hash(TOKEN)}",
        f":{internal.token_hash(TOKEN)}",
        f"monolith:{internal.token_hash(TOKEN).upper()}",
    ],
)
def test_a_malformed_caller_is_refused_at_start_without_echoing_it(entry):
    with pytest.raises(ImproperlyConfigured) as raised:
        internal.parse_callers(f"posts:{internal.token_hash(OTHER)},{entry}")
    assert "entry 2" in str(raised.value)
    assert TOKEN not in str(raised.value)


@pytest.mark.parametrize("token", ["short", "x" * 31, "x" * 257, "has space" * 4, "é" * 40])
def test_a_weak_or_unsendable_token_is_refused_at_start(token):
    with pytest.raises(ImproperlyConfigured, match="INTERNAL_TOKEN must be"):
        internal.check_token(token)


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("INTERNAL_TOKEN", raising=False)
    monkeypatch.delenv("INTERNAL_CALLERS", raising=False)
    assert internal.internal_settings() == {"INTERNAL_TOKEN": "", "INTERNAL_CALLERS": {}}
    monkeypatch.setenv("INTERNAL_TOKEN", f" {TOKEN} ")
    monkeypatch.setenv("INTERNAL_CALLERS", internal.caller_entry("comments", OTHER))
    assert internal.internal_settings() == {
        "INTERNAL_TOKEN": TOKEN,
        "INTERNAL_CALLERS": {"comments": (internal.token_hash(OTHER),)},
    }


# --- verification -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, (401, None)),
        ("", (401, None)),
        ("Bearer", (401, None)),
        ("Bearer   ", (401, None)),
        (f"Basic monolith.{TOKEN}", (401, None)),
        (f"Bearer {TOKEN}", (403, None)),  # no caller name
        (f"Bearer Monolith.{TOKEN}", (403, None)),
        ("Bearer monolith.", (403, None)),
        (f"Bearer monolith.{'x' * 300}", (403, None)),
        (f"Bearer monolith.{OTHER}", (403, "monolith")),  # wrong token
        (f"Bearer posts.{TOKEN}", (403, "posts")),  # the right token, another name
        (f"Bearer monolith.{TOKEN}", (0, "monolith")),
        (f"bearer  monolith.{TOKEN} ", (0, "monolith")),
    ],
)
def test_verify(header, expected):
    accepted = {"monolith": (internal.token_hash(TOKEN),)}
    assert internal.verify(header, accepted) == expected


def test_both_tokens_of_a_rotation_are_accepted():
    accepted = internal.parse_callers(
        f"{internal.caller_entry('posts', TOKEN)},{internal.caller_entry('posts', OTHER)}"
    )
    assert internal.verify(f"Bearer posts.{TOKEN}", accepted) == (0, "posts")
    assert internal.verify(f"Bearer posts.{OTHER}", accepted) == (0, "posts")


def test_a_component_that_accepts_no_caller_refuses_everyone():
    assert internal.verify(f"Bearer monolith.{TOKEN}", {}) == (403, "monolith")


# --- the middleware ---------------------------------------------------------------------


class View:
    """What stands behind the middleware: records whether it ran."""

    def __init__(self):
        self.seen = []

    def __call__(self, request):
        self.seen.append((request.path, getattr(request, "internal_caller", None)))
        return JsonResponse({"ok": True})


def through(path: str, **headers):
    view = View()
    request = RequestFactory().delete(path, headers=headers)
    return internal.InternalCallerMiddleware(view)(request), view.seen


def test_no_credential_is_a_json_401_and_the_view_never_runs(accepts_monolith):
    response, seen = through("/internal/posts/1/comments/")
    assert response.status_code == 401
    assert json.loads(response.content) == {"detail": internal.NOT_PROVIDED}
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"] == 'Bearer realm="internal"'
    assert seen == []


@pytest.mark.parametrize(
    "header", [f"Bearer monolith.{OTHER}", f"Bearer posts.{TOKEN}", "Bearer nonsense"]
)
def test_a_wrong_credential_is_a_json_403_and_the_view_never_runs(accepts_monolith, header):
    response, seen = through("/internal/comment-counts/", Authorization=header)
    assert response.status_code == 403
    assert json.loads(response.content) == {"detail": internal.REFUSED}
    assert seen == []


def test_the_right_caller_goes_through_and_is_known_to_the_view(accepts_monolith):
    response, seen = through("/internal/x/", Authorization=f"Bearer monolith.{TOKEN}")
    assert response.status_code == 200
    assert seen == [("/internal/x/", "monolith")]


@pytest.mark.parametrize("path", ["/api/posts/", "/healthz", "/internalx/", "/x/internal/"])
def test_other_paths_need_no_credential(accepts_monolith, path):
    response, seen = through(path)
    assert response.status_code == 200
    assert seen == [(path, None)]


def test_without_accepted_callers_every_call_is_refused(settings):
    settings.INTERNAL_CALLERS = {}
    response, seen = through("/internal/x/", Authorization=f"Bearer monolith.{TOKEN}")
    assert response.status_code == 403
    assert seen == []


def test_a_refusal_is_logged_without_the_token(accepts_monolith, caplog):
    with caplog.at_level(logging.WARNING, logger="blog.internal"):
        through("/internal/x/", Authorization=f"Bearer monolith.{OTHER}")
        through("/internal/x/")
    assert [r.caller for r in caplog.records] == ["monolith", None]
    logged = " ".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert "refused" in logged
    assert OTHER not in logged
    assert TOKEN not in logged


# --- the caller's side ------------------------------------------------------------------


def test_the_credential_goes_to_internal_routes_only(settings):
    settings.SERVED_BY = "posts"
    settings.INTERNAL_TOKEN = TOKEN
    expected = {"Authorization": f"Bearer posts.{TOKEN}"}
    assert internal.outgoing_headers("http://comments:8002/internal/comment-counts/") == expected
    assert internal.outgoing_headers("http://comments:8002/api/schema/?format=json") == {}
    assert internal.outgoing_headers("http://comments:8002/readyz") == {}
    settings.INTERNAL_TOKEN = ""
    assert internal.outgoing_headers("http://comments:8002/internal/comment-counts/") == {}


class Recorder(JsonHandler):
    seen: list[tuple[str, str | None]] = []
    status = 200

    def do_GET(self):
        Recorder.seen.append((self.path, self.headers.get("Authorization")))
        self.reply(Recorder.status, {"ok": True})


@pytest.fixture
def server():
    Recorder.seen, Recorder.status = [], 200
    with serving(Recorder) as url:
        yield url


def test_call_service_sends_this_components_credential(server, settings):
    settings.SERVED_BY = "comments"
    settings.INTERNAL_TOKEN = TOKEN
    call_service("posts", "GET", f"{server}/internal/posts/1/")
    call_service("posts", "GET", f"{server}/api/schema/")
    assert Recorder.seen == [
        ("/internal/posts/1/", f"Bearer comments.{TOKEN}"),
        ("/api/schema/", None),
    ]


def test_call_service_says_when_the_callee_refuses_and_not_the_token(server, settings, caplog):
    settings.SERVED_BY = "comments"
    settings.INTERNAL_TOKEN = TOKEN
    Recorder.status = 403
    with caplog.at_level(logging.ERROR, logger="blog.http"):
        response = call_service("posts", "GET", f"{server}/internal/posts/1/")
    assert response.status_code == 403
    assert len(Recorder.seen) == 1  # a 4xx is an answer: no retry
    [record] = caplog.records
    assert "refused (403)" in record.getMessage()
    assert TOKEN not in f"{record.getMessage()} {vars(record)}"


# --- python -m blogweb.internal ---------------------------------------------------------


def test_the_command_makes_a_token_and_the_entry_that_accepts_it():
    out = io.StringIO()
    with redirect_stdout(out):
        assert internal.main(["posts"]) == 0
    token_line, entry_line = out.getvalue().splitlines()
    token = token_line.removeprefix("INTERNAL_TOKEN=")
    entry = entry_line.removeprefix("INTERNAL_CALLERS entry: ")
    assert internal.check_token(token) == token
    assert internal.verify(f"Bearer posts.{token}", internal.parse_callers(entry)) == (0, "posts")


def test_the_command_hashes_a_token_from_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{TOKEN}\n"))
    out = io.StringIO()
    with redirect_stdout(out):
        internal.main(["monolith", "--stdin"])
    assert out.getvalue() == f"INTERNAL_CALLERS entry: {internal.caller_entry('monolith', TOKEN)}\n"
