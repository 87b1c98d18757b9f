"""The route table: every stage sends every contract route where it should."""

from __future__ import annotations

import pytest

from gateway import routes as rt

PID = "0b1f6c1e-8a4e-4b8e-9f3a-1c2d3e4f5a6b"
CONTRACT = [
    ("GET", "/api/posts/", "posts"),
    ("GET", "/api/posts", "posts"),
    ("POST", "/api/posts/", "posts"),
    ("POST", "/api/posts", "posts"),
    ("GET", f"/api/posts/{PID}/", "posts"),
    ("GET", "/api/posts/not-a-uuid/", "posts"),
    ("DELETE", f"/api/posts/{PID}/", "posts"),
    ("GET", f"/api/posts/{PID}/comments/", "comments"),
    ("GET", "/api/posts/not-a-uuid/comments/", "comments"),
    ("POST", f"/api/posts/{PID}/comments/", "comments"),
    ("POST", f"/api/posts/{PID}/comments", "comments"),
    ("HEAD", f"/api/posts/{PID}/comments/", "comments"),
    ("GET", "/healthz", "gateway"),
    ("GET", "/readyz", "gateway"),
    ("GET", "/api/schema/", "posts"),
    ("GET", "/api/docs/", "posts"),
    ("GET", "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css", "posts"),
    ("GET", "/", "ui"),
    ("GET", "/app.js", "ui"),
    ("GET", "/app.css", "ui"),
    ("GET", "/favicon.svg", "ui"),
]


def expected(stage: int, method: str, path: str, at_stage_4: str) -> str:
    if at_stage_4 == "gateway":
        return "gateway"
    if stage == 1:
        return "monolith"
    if stage in (2, 3):
        return "comments" if at_stage_4 == "comments" else "monolith"
    return at_stage_4


@pytest.mark.parametrize("stage", [1, 2, 3, 4])
@pytest.mark.parametrize(("method", "path", "at_stage_4"), CONTRACT)
def test_every_contract_route_goes_to_its_owner(stage, method, path, at_stage_4):
    upstream, _ = rt.table(stage).resolve(method, path)
    assert upstream == expected(stage, method, path, at_stage_4)


def test_stage_0_has_no_gateway():
    assert rt.stage(0).has_gateway is False
    with pytest.raises(ValueError, match="no gateway"):
        rt.table(0)
    assert "no gateway" in rt.describe(0)


def test_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="unknown stage"):
        rt.table(5)


def test_the_table_is_well_formed():
    rt.validate()


@pytest.mark.parametrize("stage", [2, 3])
def test_stage_2_and_3_other_methods_on_the_comments_path_stay_on_the_monolith(stage):
    assert rt.table(stage).resolve("DELETE", f"/api/posts/{PID}/comments/")[0] == "monolith"


def test_stage_4_unknown_paths_and_methods_get_the_gateways_answer():
    tbl = rt.table(4)
    assert tbl.resolve("GET", "/nope") == (None, None)
    assert tbl.resolve("GET", "/api/unknown/") == (None, None)
    upstream, group = tbl.resolve("POST", "/")
    assert upstream is None
    assert group is not None  # -> 405, not 404
    assert "monolith" not in tbl.upstreams()


@pytest.mark.parametrize("stage", [2, 3])
def test_parallel_run_of_comment_reads(stage):
    tbl = rt.table(stage, shadow=True)
    path = f"/api/posts/{PID}/comments/"
    assert tbl.resolve("GET", path)[0] == "monolith"  # old owner answers
    shadow = tbl.shadow_for("GET", path)
    assert shadow is not None
    assert (shadow.primary, shadow.shadow) == ("monolith", "comments")
    assert tbl.resolve("POST", path)[0] == "comments"  # writes are not shadowed
    assert tbl.shadow_for("POST", path) is None
    assert rt.table(stage).shadow_for("GET", path) is None  # only in shadow mode


def test_parallel_run_of_post_reads_at_stage_4():
    tbl = rt.table(4, shadow=True)
    assert tbl.resolve("GET", "/api/posts/")[0] == "monolith"
    assert tbl.shadow_for("GET", "/api/posts/").shadow == "posts"
    assert tbl.resolve("POST", "/api/posts/")[0] == "posts"
    assert tbl.resolve("GET", f"/api/posts/{PID}/comments/")[0] == "comments"


def test_upstream_addresses_come_from_the_environment():
    assert rt.upstream_url("monolith", {}) == "http://127.0.0.1:8000"
    assert rt.upstream_url("posts", {}) == "http://127.0.0.1:8001"
    assert rt.upstream_url("comments", {}) == "http://127.0.0.1:8002"
    env = {"COMMENTS_URL": "http://comments.internal:9000"}
    assert rt.upstream_hostport("comments", env) == ("comments.internal", 9000)
    with pytest.raises(ValueError, match="COMMENTS_URL"):
        rt.upstream_hostport("comments", {"COMMENTS_URL": "ftp://x"})
    assert rt.ui_dir({}) == (rt.REPO_ROOT / "web").resolve()
