"""The route table: every stage sends every contract route where it should."""

from __future__ import annotations

import pytest

from gateway import routes as rt

from .conftest import GATEWAY_STAGES

PID = "0b1f6c1e-8a4e-4b8e-9f3a-1c2d3e4f5a6b"
# The requests of the contract (and the UI's files). At stage 1 the gateway
# answers its probes and sends everything else to the monolith.
CONTRACT = [
    ("GET", "/api/posts/"),
    ("GET", "/api/posts"),
    ("POST", "/api/posts/"),
    ("POST", "/api/posts"),
    ("GET", f"/api/posts/{PID}/"),
    ("GET", "/api/posts/not-a-uuid/"),
    ("DELETE", f"/api/posts/{PID}/"),
    ("GET", f"/api/posts/{PID}/comments/"),
    ("GET", "/api/posts/not-a-uuid/comments/"),
    ("POST", f"/api/posts/{PID}/comments/"),
    ("POST", f"/api/posts/{PID}/comments"),
    ("HEAD", f"/api/posts/{PID}/comments/"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/schema/"),
    ("GET", "/api/docs/"),
    ("GET", "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css"),
    ("GET", "/"),
    ("GET", "/app.js"),
    ("GET", "/app.css"),
    ("GET", "/favicon.svg"),
]
PROBES = {"/healthz", "/readyz"}
# >>> stage 2: the comments of a post, read and written, go to the comments service
COMMENT_ROUTES = {
    ("GET", f"/api/posts/{PID}/comments/"),
    ("GET", "/api/posts/not-a-uuid/comments/"),
    ("POST", f"/api/posts/{PID}/comments/"),
    ("POST", f"/api/posts/{PID}/comments"),
    ("HEAD", f"/api/posts/{PID}/comments/"),
}
# <<< stage 2
# >>> stage 4: the monolith leaves the path: the posts service, the UI files from the gateway
AT_STAGE_4 = {
    ("GET", "/api/posts/"): "posts",
    ("GET", "/api/posts"): "posts",
    ("POST", "/api/posts/"): "posts",
    ("POST", "/api/posts"): "posts",
    ("GET", f"/api/posts/{PID}/"): "posts",
    ("GET", "/api/posts/not-a-uuid/"): "posts",
    ("DELETE", f"/api/posts/{PID}/"): "posts",
    ("GET", "/api/schema/"): "posts",
    ("GET", "/api/docs/"): "posts",
    ("GET", "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css"): "posts",
    ("GET", "/"): "ui",
    ("GET", "/app.js"): "ui",
    ("GET", "/app.css"): "ui",
    ("GET", "/favicon.svg"): "ui",
}
# <<< stage 4


def expected(stage: int, method: str, path: str) -> str:
    # >>> stage 4: the services own the contract
    if stage >= 4 and (method, path) in AT_STAGE_4:
        return AT_STAGE_4[(method, path)]
    # <<< stage 4
    # >>> stage 2: the comment routes moved
    if stage >= 2 and (method, path) in COMMENT_ROUTES:
        return "comments"
    # <<< stage 2
    return "gateway" if path in PROBES else "monolith"


@pytest.mark.parametrize("stage", GATEWAY_STAGES)
@pytest.mark.parametrize(("method", "path"), CONTRACT)
def test_every_contract_route_goes_to_its_owner(stage, method, path):
    upstream, _ = rt.table(stage).resolve(method, path)
    assert upstream == expected(stage, method, path)


def test_stage_0_has_no_gateway():
    assert rt.stage(0).has_gateway is False
    with pytest.raises(ValueError, match="no gateway"):
        rt.table(0)
    assert "no gateway" in rt.describe(0)


def test_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="unknown stage"):
        rt.table(max(rt.STAGES) + 1)


def test_the_table_is_well_formed():
    rt.validate()


@pytest.mark.parametrize("stage", GATEWAY_STAGES)
def test_the_table_is_described(stage):
    text = rt.describe(stage)
    assert text.startswith(f"stage {stage} ({rt.stage(stage).name}):\n")
    assert "/healthz" in text


# >>> stage 2: the comment routes at the comments service, with a parallel run of their reads
@pytest.mark.parametrize(
    "stage",
    [
        2,
        3,  # [stage 3]
    ],
)
def test_stage_2_and_3_other_methods_on_the_comments_path_stay_on_the_monolith(stage):
    assert rt.table(stage).resolve("DELETE", f"/api/posts/{PID}/comments/")[0] == "monolith"


@pytest.mark.parametrize(
    "stage",
    [
        2,
        3,  # [stage 3]
    ],
)
def test_parallel_run_of_comment_reads(stage):
    tbl = rt.parallel_run(stage)
    path = f"/api/posts/{PID}/comments/"
    assert tbl.resolve("GET", path)[0] == "monolith"  # old owner answers
    shadow = tbl.shadow_for("GET", path)
    assert shadow is not None
    assert (shadow.primary, shadow.shadow) == ("monolith", "comments")
    assert tbl.resolve("POST", path)[0] == "comments"  # writes are not shadowed
    assert tbl.shadow_for("POST", path) is None
    assert rt.table(stage).shadow_for("GET", path) is None  # only in shadow mode
    assert "mirror -> comments" in rt.describe_parallel_run(stage)


def test_a_stage_without_shadow_entries_has_no_parallel_run():
    tbl = rt.parallel_run(1)
    assert tbl.shadow_mode
    assert tbl.shadow_for("GET", "/api/posts/") is None
    assert tbl.groups == rt.table(1).groups
    # <<< stage 2


# >>> stage 4: the posts service and the UI files; the monolith is out of the path
def test_stage_4_unknown_paths_and_methods_get_the_gateways_answer():
    tbl = rt.table(4)
    assert tbl.resolve("GET", "/nope") == (None, None)
    assert tbl.resolve("GET", "/api/unknown/") == (None, None)
    upstream, group = tbl.resolve("POST", "/")
    assert upstream is None
    assert group is not None  # -> 405, not 404
    assert "monolith" not in tbl.upstreams()


def test_parallel_run_of_post_reads_at_stage_4():
    tbl = rt.parallel_run(4)
    assert tbl.resolve("GET", "/api/posts/")[0] == "monolith"
    assert tbl.shadow_for("GET", "/api/posts/").shadow == "posts"
    assert tbl.resolve("POST", "/api/posts/")[0] == "posts"
    assert tbl.resolve("GET", f"/api/posts/{PID}/comments/")[0] == "comments"
    # <<< stage 4


def test_upstream_addresses_come_from_the_environment():
    assert rt.upstream_url("monolith", {}) == "http://127.0.0.1:8000"
    env = {"MONOLITH_URL": "http://monolith.internal:9000"}
    assert rt.upstream_hostport("monolith", env) == ("monolith.internal", 9000)
    with pytest.raises(ValueError, match="MONOLITH_URL"):
        rt.upstream_hostport("monolith", {"MONOLITH_URL": "ftp://x"})
    assert rt.upstream_url("posts", {}) == "http://127.0.0.1:8001"  # [stage 4]
    # >>> stage 2: the comments service's address
    assert rt.upstream_url("comments", {}) == "http://127.0.0.1:8002"
    env = {"COMMENTS_URL": "http://comments.internal:9000"}
    assert rt.upstream_hostport("comments", env) == ("comments.internal", 9000)
    with pytest.raises(ValueError, match="COMMENTS_URL"):
        rt.upstream_hostport("comments", {"COMMENTS_URL": "ftp://x"})
    # <<< stage 2
    assert rt.ui_dir({}) == (rt.REPO_ROOT / "web").resolve()  # [stage 4]


# Every spelling of /internal the gateway answers itself (after nginx's
# normalisation: percent-decoding and dot segments are resolved before
# matching, repeated slashes are not), and look-alikes it must not take.
INTERNAL_SPELLINGS = [
    "/internal",
    "/internal/",
    f"/internal/posts/{PID}/",
    "/internal/comment-counts/",
    "//internal/comment-counts/",
    "///internal/posts/",
]
NOT_INTERNAL = ["/internals/", "/internal-docs", "/api/internal/", f"/api/posts/{PID}/internal/"]


@pytest.mark.parametrize("stage", GATEWAY_STAGES)
@pytest.mark.parametrize("path", INTERNAL_SPELLINGS)
def test_internal_paths_are_answered_by_the_gateway(stage, path):
    for method in ("GET", "POST", "DELETE"):
        upstream, _ = rt.table(stage).resolve(method, rt.normalised_path(path))
        assert upstream == "gateway", (
            f"stage {stage}: {method} {path} goes to {upstream!r}; the gateway must answer "
            "it itself (a route of its own in the table, for every spelling of /internal)"
        )


@pytest.mark.parametrize("stage", GATEWAY_STAGES)
@pytest.mark.parametrize("path", NOT_INTERNAL)
def test_paths_that_only_look_internal_are_routed_as_usual(stage, path):
    upstream, _ = rt.table(stage).resolve("GET", path)
    assert upstream != "gateway", (
        f"stage {stage}: GET {path} is answered by the gateway; only /internal and what is "
        "under /internal/ are its own (the pattern is too wide)"
    )
