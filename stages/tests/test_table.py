"""The stage table is well-formed and agrees with the code it describes."""

from __future__ import annotations

import json  # [stage 3]
import os  # [stage 3]
import re
import string
import subprocess
import sys  # [stage 3]
from pathlib import Path

import pytest

from stages import table

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGIES = [(n, m) for n, s in table.STAGES.items() for m in s.modes]


def tracked() -> list[str]:
    """The repository's files: git's list in a clone; in a stage's exported
    tree (not a clone), every file but local state and caches."""
    if (ROOT / ".git").exists():
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
        return [p for p in out.split("\0") if p]
    skip = {".venv", ".data", "__pycache__", "node_modules", ".pytest_cache", ".ruff_cache"}
    return [
        p.relative_to(ROOT).as_posix()
        for p in ROOT.rglob("*")
        if p.is_file()
        and not skip & set(p.relative_to(ROOT).parts)
        and not any(part.endswith(".egg-info") for part in p.relative_to(ROOT).parts)
    ]


def test_every_tracked_file_belongs_to_a_stage_and_every_glob_to_a_file():
    paths = tracked()
    owners = {path: table.stage_of_path(path) for path in paths}
    assert set(owners.values()) == set(table.STAGES)
    for number, stage in table.STAGES.items():
        for pattern in stage.files:
            assert any(table.glob_match(p, pattern) for p in paths), (number, pattern)


def test_a_later_stage_claims_files_inside_an_earlier_ones_folder():
    assert table.stage_of_path("monolith/posts/models.py") == 0
    assert table.stage_of_path("gateway/routes.py") == 1  # [stage 1]
    assert table.stage_of_path("monolith/comments/remote.py") == 2  # [stage 2]
    assert table.stage_of_path("services/comments/comments/events.py") == 3  # [stage 3]
    assert table.stage_of_path("services/posts/posts/models.py") == 4  # [stage 4]
    with pytest.raises(LookupError, match="belongs to no stage"):
        table.stage_of_path("nowhere/file.txt")


def test_globs():
    assert table.glob_match("a/b/c.py", "a/**")
    assert table.glob_match("a/b.py", "a/*.py")
    assert not table.glob_match("a/b/c.py", "a/*.py")
    assert table.glob_match("docs/adr/0001-x.md", "docs/adr/0001-*")
    assert not table.glob_match("docs/adr/0011-x.md", "docs/adr/0001-*")


def test_stages_are_numbered_in_order_with_their_tags():
    assert list(table.STAGES) == list(range(len(table.STAGES)))
    assert max(table.STAGES) == table.NEWEST
    for number, stage in table.STAGES.items():
        assert stage.number == number
        assert stage.tag == f"stage-{number}-{stage.slug}"
        assert (ROOT / stage.note).is_file(), stage.note
        assert stage.default_mode in stage.modes
        if number < table.NEWEST:
            assert stage.next_step


@pytest.mark.parametrize(("number", "mode"), TOPOLOGIES)
def test_each_topology_is_complete(number, mode):
    topology = table.topology(number, mode)
    assert topology.stage == number
    names = [p.name for p in topology.processes]
    assert len(names) == len(set(names)), names
    placeholders = set()
    for process in topology.processes:
        assert process.role in table.ROLES
        assert process.app in {*table.APPS, "gateway", "mongodb"}
        for _key, value in process.env:
            placeholders |= {f for _, f, _, _ in string.Formatter().parse(value) if f}
    # Every address a process needs is one the stage has.
    has = set(topology.apps)
    # >>> stage 2: and every credential names an app of the stage
    has |= {f"{kind}[{app}]" for kind in ("token", "caller") for app in topology.apps}
    # <<< stage 2
    if topology.of_role("store"):
        has.add("mongodb")
    # >>> stage 3: events: the broker, and a consumer process per queue
    if topology.has_events:
        has.add("broker")
    consumers = {p.app for p in topology.of_role("consumer")}
    assert consumers == {c.service for c in topology.consumers}
    assert {p.app for p in topology.of_role("relay")} <= set(topology.apps)
    # <<< stage 3
    assert placeholders <= has, placeholders - has
    assert topology.has_gateway == (number > 0)
    assert topology.served_by == set(topology.apps) | ({"gateway"} if number else set())


def test_the_stages_as_the_refactoring_goes():
    assert table.topology(0).apps == ("monolith",)
    assert not table.topology(0).has_gateway
    # >>> stage 1: the gateway in front
    assert table.topology(1).apps == ("monolith",)
    assert table.topology(1).has_gateway
    # <<< stage 1
    # >>> stage 2: the comments service, sync calls
    assert set(table.topology(2).apps) == {"monolith", "comments"}
    assert not table.topology(2).has_events  # [stage 3]
    with pytest.raises(ValueError, match="runs in mode sync, not 'async'"):
        table.topology(2, "async")
    # <<< stage 2
    assert table.topology(3).has_events  # [stage 3]
    # >>> stage 4: the monolith out of the path, sync or async
    assert set(table.topology(4, "sync").apps) == {"posts", "comments"}
    assert not table.topology(4, "sync").has_events
    assert table.topology(4).mode == table.STAGES[4].default_mode == "async"
    # <<< stage 4


# >>> stage 3: one side of the seams apart from the other
def test_one_side_can_be_set_apart_from_the_mode():
    mixed = table.topology(3, comment_counts="sync")
    assert dict(mixed.process("monolith").env)["COMMENT_COUNTS"] == "sync"
    assert dict(mixed.process("comments").env)["POST_LOOKUP"] == "async"
    assert table.topology(3, post_lookup="async") == table.topology(3)
    # >>> stage 4: the same at stage 4
    mixed = table.topology(4, "sync", comment_counts="async")
    assert dict(mixed.process("posts").env)["COMMENT_COUNTS"] == "async"
    assert dict(mixed.process("comments").env)["POST_LOOKUP"] == "sync"
    assert {c.service for c in mixed.consumers} == {"posts", "comments"}
    assert table.topology(4, "sync", post_lookup="sync") == table.topology(4, "sync")
    # <<< stage 4


def app_consumer_keys(app: str) -> dict[str, list[str]]:
    """The app's BLOGBUS_CONSUMERS setting: service -> the keys it has handlers for."""
    spec = table.APPS[app]
    code = (
        "import json; from django.conf import settings as s; "
        "print(json.dumps({k: sorted(v) for k, v in s.BLOGBUS_CONSUMERS.items()}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT / spec.folder,
        env={**env, "DJANGO_SETTINGS_MODULE": f"{spec.settings}.local"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "service", sorted({c.service for t in table.STAGES.values() for c in t.topology().consumers})
)
def test_consumer_keys_are_the_ones_the_service_has_handlers_for(service):
    keys = table.consumer_of(service).keys
    assert sorted(keys) == app_consumer_keys(service)[service]
    # and the same keys at every stage the service consumes
    for number, mode in TOPOLOGIES:
        for consumer in table.topology(number, mode).consumers:
            if consumer.service == service:
                assert consumer.keys == keys
    # <<< stage 3


def test_the_readme_banner_is_the_newest_stages():
    """The README says which stage this tree is; in main (the last stage)
    it is exactly what stages/readme.py renders (a stage tree's banner was
    rendered from main's table, which knows the next step)."""
    from stages import readme

    text = (ROOT / "README.md").read_text()
    found = re.search(
        r"<!-- >>> generated: stage-banner -->\n(.*?)<!-- <<< generated -->", text, re.S
    )
    assert found, "README.md has no stage-banner block"
    banner = found.group(1)
    newest = table.STAGES[table.NEWEST]
    assert f"You are on stage {table.NEWEST} of " in banner
    assert f"(tag `{newest.tag}`)" in banner
    if "**Next:**" not in banner:
        assert banner == readme.banner(table, table.NEWEST), (
            "the README's banner is stale: paste `python -c 'from stages import readme, table; "
            "print(readme.banner(table, table.NEWEST))'` into it"
        )


# >>> stage 2: the credentials of the /internal/ routes
@pytest.mark.parametrize(("number", "mode"), TOPOLOGIES)
def test_who_calls_whose_internal_routes(number, mode):
    """Each web process that calls another app (its *_URL names one) has its
    own token, and the app it calls accepts it; nobody else has credentials."""
    topology = table.topology(number, mode)
    web = {p.app: p for p in topology.of_role("web")}
    for process in topology.processes:
        env = dict(process.env)
        if process.role != "web":
            assert not {"INTERNAL_TOKEN", "INTERNAL_CALLERS"} & set(env), process.name
            continue
        calls = {
            value.strip("{}")
            for key, value in env.items()
            if key.endswith("_URL") and value.strip("{}") in web
        }
        if calls:
            assert env["INTERNAL_TOKEN"] == f"{{token[{process.app}]}}", process.name
        for callee in calls:
            assert process.app in table.accepted_callers(web[callee]), (process.name, callee)
        for caller in table.accepted_callers(process):
            assert caller in web, (process.name, caller)
            assert caller != process.app, process.name


def test_the_stages_callers():
    callers = {
        (number, p.app): table.accepted_callers(p)
        for number, mode in TOPOLOGIES
        for p in table.topology(number, mode).of_role("web")
    }
    assert callers[(2, "monolith")] == ("comments",)
    assert callers[(2, "comments")] == ("monolith",)
    assert callers[(3, "comments")] == ("monolith",)  # [stage 3]
    # >>> stage 4: the posts service owns posts
    assert callers[(4, "comments")] == ("posts",)
    assert callers[(4, "posts")] == ("comments",)
    # <<< stage 4


def test_credentials_fill_the_placeholders_with_hashes_blogweb_accepts():
    from blogweb.internal import caller_entry, parse_callers

    tokens = table.new_tokens()
    assert set(tokens) == set(table.APPS)
    assert len(set(tokens.values())) == len(tokens)
    filled = table.credentials(tokens)
    for app, token in tokens.items():
        assert filled["caller"][app] == caller_entry(app, token)
    where = {"mongodb": "mongodb://127.0.0.1:1", "monolith": "http://127.0.0.1:2", **filled}
    env = table.topology(2).process("comments").environment(where)
    assert env["INTERNAL_TOKEN"] == tokens["comments"]
    assert parse_callers(env["INTERNAL_CALLERS"]) == {
        "monolith": (filled["caller"]["monolith"].split(":")[1],)
    }


def test_kept_tokens_are_made_once_and_readable_by_their_owner_only(tmp_path):
    first = table.kept_tokens(tmp_path / "data")
    path = tmp_path / "data" / table.TOKENS_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert table.kept_tokens(tmp_path / "data") == first
    path.write_text("{not json")
    assert table.kept_tokens(tmp_path / "data") != first
    # <<< stage 2
