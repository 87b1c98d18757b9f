"""Cross-cutting HTTP rules: request/served-by headers, JSON errors, trailing slashes,
health, readiness, OpenAPI schema and docs."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from contract_support import (
    OVERSIZED_BYTES,
    ApiClient,
    assert_detail_error,
    assert_list_shape,
    assert_post_shape,
    assert_status,
    describe,
    json_body,
    unique,
)

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
def shared_post(api: ApiClient) -> dict:
    return api.create_post(title=unique("http"))


# -- X-Request-ID and X-Served-By on every response -------------------------------

# name -> (method, path (may use {post}/{fresh}), request kwargs, expected status)
SCENARIOS = {
    "healthz": ("GET", "/healthz", {}, 200),
    "readyz": ("GET", "/readyz", {}, 200),
    "schema": ("GET", "/api/schema/", {}, 200),
    "docs": ("GET", "/api/docs/", {}, 200),
    "list-posts": ("GET", "/api/posts/", {}, 200),
    "create-post": ("POST", "/api/posts/", {"json": {"title": "headers", "body": "b"}}, 201),
    "get-post": ("GET", "/api/posts/{post}/", {}, 200),
    "delete-post": ("DELETE", "/api/posts/{fresh}/", {}, 204),
    "list-comments": ("GET", "/api/posts/{post}/comments/", {}, 200),
    "create-comment": ("POST", "/api/posts/{post}/comments/", {"json": {"body": "headers"}}, 201),
    "validation-400": ("POST", "/api/posts/", {"json": {"title": ""}}, 400),
    "comment-validation-400": ("POST", "/api/posts/{post}/comments/", {"json": {"body": 1}}, 400),
    "bad-page-400": ("GET", "/api/posts/", {"params": {"page": "0"}}, 400),
    "invalid-json-400": (
        "POST",
        "/api/posts/",
        {"data": b"{", "headers": {"Content-Type": "application/json"}},
        400,
    ),
    "unknown-post-404": ("GET", "/api/posts/{unknown}/", {}, 404),
    "malformed-id-404": ("GET", "/api/posts/not-a-uuid/", {}, 404),
    "unknown-post-comments-404": ("GET", "/api/posts/{unknown}/comments/", {}, 404),
    "unknown-path-404": ("GET", "/api/nope/", {}, 404),
    "method-405": ("PUT", "/api/posts/", {"json": {}}, 405),
    "media-type-415": (
        "POST",
        "/api/posts/",
        {"data": b"{}", "headers": {"Content-Type": "text/plain"}},
        415,
    ),
    "too-large-413": (
        "POST",
        "/api/posts/",
        {
            "data": b'{"title": "t", "body": "' + b"x" * OVERSIZED_BYTES + b'"}',
            "headers": {"Content-Type": "application/json"},
        },
        413,
    ),
}


def run_scenario(api: ApiClient, post: dict, name: str, headers: dict | None = None):
    method, path, kwargs, status = SCENARIOS[name]
    if "{fresh}" in path:
        path = path.replace("{fresh}", api.create_post()["id"])
    path = path.replace("{post}", post["id"]).replace("{unknown}", str(uuid.uuid4()))
    kwargs = dict(kwargs)
    kwargs["headers"] = {**kwargs.get("headers", {}), **(headers or {})}
    resp = api.request(method, path, **kwargs)
    assert_status(resp, status)
    if status == 201 and path == "/api/posts/":
        api.created_post_ids.append(json_body(resp)["id"])
    return resp


SANE_ID_RE = re.compile(r"^[\x21-\x7e]{1,200}$")


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_response_carries_request_id_and_served_by(api, shared_post, served_by, name) -> None:
    resp = run_scenario(api, shared_post, name)
    request_id = resp.headers.get("X-Request-ID")
    assert SANE_ID_RE.match(request_id or ""), f"X-Request-ID {request_id!r}: {describe(resp)}"
    served = resp.headers.get("X-Served-By")
    assert served in served_by, (
        f"X-Served-By {served!r} not in {sorted(served_by)}: {describe(resp)}"
    )


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_sane_client_request_id_is_echoed(api, shared_post, name) -> None:
    sent = str(uuid.uuid4())
    resp = run_scenario(api, shared_post, name, headers={"X-Request-ID": sent})
    assert resp.headers.get("X-Request-ID") == sent, describe(resp)


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param("abc-123", id="short"),
        pytest.param("3f2b8c1e-9d4a-4e6f-8a7b-1c2d3e4f5a6b", id="uuid"),
        pytest.param("3f2b8c1e9d4a4e6f8a7b1c2d3e4f5a6b", id="hex"),
    ],
)
@pytest.mark.parametrize("path", ["/api/posts/", "/api/nope/"])
def test_sane_request_id_formats_are_echoed(api: ApiClient, sent: str, path: str) -> None:
    resp = api.get(path, headers={"X-Request-ID": sent})
    assert resp.headers.get("X-Request-ID") == sent, describe(resp)


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param("x" * 300, id="300-chars"),
        pytest.param("has space", id="space"),
        pytest.param("<script>alert(1)</script>", id="markup"),
        pytest.param("quote\"and'semicolon;", id="quotes"),
        pytest.param("", id="empty"),
    ],
)
@pytest.mark.parametrize("path", ["/api/posts/", "/api/nope/", "/healthz"])
def test_insane_request_id_is_replaced(api: ApiClient, sent: str, path: str) -> None:
    resp = api.get(path, headers={"X-Request-ID": sent})
    got = resp.headers.get("X-Request-ID")
    assert got != sent, f"X-Request-ID {sent!r} must be replaced: {describe(resp)}"
    assert SANE_ID_RE.match(got or ""), f"generated X-Request-ID {got!r} is not sane"


def test_generated_request_ids_are_unique(api: ApiClient) -> None:
    ids = {
        api.get("/api/posts/", params={"page_size": 1}).headers.get("X-Request-ID")
        for _ in range(5)
    }
    assert None not in ids, ids
    assert len(ids) == 5, ids


# -- JSON errors under /api/ ------------------------------------------------------------

JSON_ERRORS = [
    ("GET", "/api/nope/", 404),
    ("GET", "/api/nope", 404),
    ("GET", "/api/posts/{post}/nope/", 404),
    ("GET", "/api/posts/{post}/comments/{unknown}/", 404),
    ("POST", "/api/nope/", 404),
    ("PUT", "/api/posts/", 405),
    ("PATCH", "/api/posts/", 405),
    ("DELETE", "/api/posts/", 405),
    ("PUT", "/api/posts/{post}/", 405),
    ("PATCH", "/api/posts/{post}/", 405),
    ("POST", "/api/posts/{post}/", 405),
    ("PUT", "/api/posts/{post}/comments/", 405),
    ("DELETE", "/api/posts/{post}/comments/", 405),
]


@pytest.mark.parametrize(("method", "path", "status"), JSON_ERRORS)
def test_errors_under_api_are_json(
    api: ApiClient, shared_post: dict, method: str, path: str, status: int
) -> None:
    path = path.replace("{post}", shared_post["id"]).replace("{unknown}", str(uuid.uuid4()))
    kwargs = {"json": {"title": "t", "body": "b"}} if method in ("POST", "PUT", "PATCH") else {}
    resp = api.request(method, path, **kwargs)
    assert_detail_error(resp, status)
    # Nothing was changed by a refused method.
    assert api.get(f"/api/posts/{shared_post['id']}/").status_code == 200


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
@pytest.mark.parametrize(
    "path", ["/api/posts/", "/api/posts/{post}/", "/api/posts/{post}/comments/"]
)
def test_other_methods_never_5xx(api: ApiClient, shared_post: dict, method: str, path: str) -> None:
    resp = api.request(method, path.replace("{post}", shared_post["id"]))
    assert resp.status_code < 500, describe(resp)
    assert not 300 <= resp.status_code < 400, describe(resp)
    assert resp.headers.get("X-Request-ID"), describe(resp)


# -- trailing slash: same answer or a JSON 404, never a redirect ----------------------


def assert_json_404(resp) -> None:
    assert_detail_error(resp, 404)


def test_post_without_trailing_slash_is_not_redirected(api: ApiClient) -> None:
    title = unique("noslash")
    resp = api.post("/api/posts", json={"title": title, "body": "b"})
    assert not 300 <= resp.status_code < 400, f"redirect drops the POST body: {describe(resp)}"
    if resp.status_code == 201:
        post = json_body(resp)
        assert_post_shape(post)
        api.created_post_ids.append(post["id"])
        assert api.get_post(post["id"])["title"] == title
    else:
        assert_json_404(resp)
        assert not api.posts_containing(title)


def test_list_without_trailing_slash_is_not_redirected(api: ApiClient) -> None:
    resp = api.get("/api/posts", params={"page_size": 2})
    assert not 300 <= resp.status_code < 400, describe(resp)
    if resp.status_code == 200:
        assert_list_shape(json_body(resp))
    else:
        assert_json_404(resp)


def test_detail_without_trailing_slash_is_not_redirected(api: ApiClient, shared_post: dict) -> None:
    resp = api.get(f"/api/posts/{shared_post['id']}")
    assert not 300 <= resp.status_code < 400, describe(resp)
    if resp.status_code == 200:
        assert json_body(resp)["id"] == shared_post["id"]
    else:
        assert_json_404(resp)


def test_delete_without_trailing_slash_is_not_redirected(api: ApiClient) -> None:
    post = api.create_post()
    resp = api.delete(f"/api/posts/{post['id']}")
    assert not 300 <= resp.status_code < 400, describe(resp)
    if resp.status_code == 204:
        assert_status(api.get(f"/api/posts/{post['id']}/"), 404)
    else:
        assert_json_404(resp)
        assert api.get_post(post["id"])["id"] == post["id"]


def test_comments_without_trailing_slash_are_not_redirected(api: ApiClient) -> None:
    post = api.create_post()
    resp = api.post(f"/api/posts/{post['id']}/comments", json={"body": "no slash"})
    assert not 300 <= resp.status_code < 400, f"redirect drops the POST body: {describe(resp)}"
    if resp.status_code == 201:
        assert json_body(resp)["post_id"] == post["id"]
        assert api.list_comments(post["id"])["count"] == 1
    else:
        assert_json_404(resp)
        assert api.list_comments(post["id"])["count"] == 0

    resp = api.get(f"/api/posts/{post['id']}/comments")
    assert not 300 <= resp.status_code < 400, describe(resp)
    if resp.status_code == 200:
        assert_list_shape(json_body(resp))
    else:
        assert_json_404(resp)


# -- health, readiness, schema, docs ----------------------------------------------------


def test_healthz(api: ApiClient) -> None:
    assert_status(api.get("/healthz"), 200)


def test_readyz_is_200_json(api: ApiClient) -> None:
    resp = api.get("/readyz")
    assert_status(resp, 200)
    assert isinstance(json_body(resp), dict)


def load_schema(api: ApiClient) -> dict:
    attempts = [
        ("/api/schema/?format=json", {}),
        ("/api/schema/", {"Accept": "application/vnd.oai.openapi+json"}),
        ("/api/schema/", {}),
    ]
    problems = []
    for path, headers in attempts:
        resp = api.get(path, headers=headers)
        if resp.status_code != 200:
            problems.append(describe(resp))
            continue
        try:
            return json.loads(resp.text)
        except ValueError:
            pass
        try:
            import yaml  # optional: only for a YAML-only schema endpoint
        except ImportError:
            problems.append(f"{path}: not JSON and PyYAML is not installed")
            continue
        try:
            doc = yaml.safe_load(resp.text)
        except yaml.YAMLError as exc:
            problems.append(f"{path}: neither JSON nor YAML ({exc})")
            continue
        if isinstance(doc, dict):
            return doc
    raise AssertionError("no OpenAPI document at /api/schema/: " + " | ".join(problems))


def test_schema_is_openapi_3_with_the_contract_paths(api: ApiClient) -> None:
    assert_status(api.get("/api/schema/"), 200)
    doc = load_schema(api)
    assert str(doc.get("openapi", "")).startswith("3"), f"openapi version: {doc.get('openapi')!r}"
    paths = doc.get("paths") or {}
    assert "/api/posts/" in paths, sorted(paths)

    def find(pattern: str) -> str:
        matches = [p for p in paths if re.fullmatch(pattern, p)]
        assert matches, f"no path matching {pattern} in {sorted(paths)}"
        return matches[0]

    detail = find(r"/api/posts/\{[^/{}]+\}/")
    comments = find(r"/api/posts/\{[^/{}]+\}/comments/")
    assert {"get", "post"} <= set(paths["/api/posts/"])
    assert {"get", "delete"} <= set(paths[detail])
    assert {"get", "post"} <= set(paths[comments])


def test_docs_is_swagger_ui_html(api: ApiClient) -> None:
    resp = api.get("/api/docs/")
    assert_status(resp, 200)
    media = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    assert media == "text/html", describe(resp)
    assert "swagger" in resp.text.lower(), "the docs page is not Swagger UI"
