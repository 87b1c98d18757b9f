"""scripts/stage-tags.sh against throwaway repositories."""

import os
import re
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "stage-tags.sh"


@pytest.fixture
def repo(tmp_path, monkeypatch):
    # Isolate from the developer's git config (signing, hooks, default branch).
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(key, raising=False)
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")
    git(tmp_path, "init", "-q", "-b", "main")
    return tmp_path


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def stage_tags(repo: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["bash", str(SCRIPT), *args], cwd=repo, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result


def actions(output: str) -> dict[str, str]:
    """{tag: action} from the script's per-tag lines."""
    return {
        m["tag"]: m["action"]
        for m in re.finditer(
            r"^(?P<action>created|moved|unchanged)\s+(?P<tag>\S+)", output, re.MULTILINE
        )
    }


def tag_target(repo: Path, tag: str) -> str:
    return git(repo, "rev-parse", f"{tag}^{{commit}}")


def test_creates_then_leaves_unchanged_then_moves(repo):
    commit(repo, "scaffold")
    monolith = commit(repo, "monolith works\n\nRefactor-Stage: 0-monolith")
    commit(repo, "unrelated")
    facade = commit(repo, "gateway in front\n\nRefactor-Stage: 1-facade")

    first = stage_tags(repo)
    assert actions(first.stdout) == {"stage-0-monolith": "created", "stage-1-facade": "created"}
    assert tag_target(repo, "stage-0-monolith") == monolith
    assert tag_target(repo, "stage-1-facade") == facade
    assert git(repo, "cat-file", "-t", "stage-1-facade") == "tag", "tags are annotated"
    assert (
        git(repo, "tag", "-l", "--format=%(contents:subject)", "stage-1-facade")
        == "Refactor stage 1-facade"
    )

    tag_object_before = git(repo, "rev-parse", "stage-0-monolith")
    second = stage_tags(repo)
    assert actions(second.stdout) == {
        "stage-0-monolith": "unchanged",
        "stage-1-facade": "unchanged",
    }
    assert git(repo, "rev-parse", "stage-0-monolith") == tag_object_before, (
        "unchanged tags are not rewritten"
    )

    facade_fix = commit(repo, "fix the facade\n\nRefactor-Stage: 1-facade")
    third = stage_tags(repo)
    assert actions(third.stdout) == {"stage-0-monolith": "unchanged", "stage-1-facade": "moved"}
    assert tag_target(repo, "stage-1-facade") == facade_fix
    assert tag_target(repo, "stage-0-monolith") == monolith


def test_trailer_key_is_case_insensitive_and_may_share_the_block(repo):
    tagged = commit(
        repo, "extract\n\nCo-authored-by: A <a@example.com>\nrefactor-stage: 2-comments-extracted"
    )

    result = stage_tags(repo)

    assert actions(result.stdout) == {"stage-2-comments-extracted": "created"}
    assert tag_target(repo, "stage-2-comments-extracted") == tagged


def test_malformed_values_are_skipped_with_a_warning(repo):
    commit(repo, "one\n\nRefactor-Stage: Three Events")
    commit(repo, "two\n\nRefactor-Stage: stage-3")
    good = commit(repo, "three\n\nRefactor-Stage: 3-events")

    result = stage_tags(repo)

    assert actions(result.stdout) == {"stage-3-events": "created"}
    assert tag_target(repo, "stage-3-events") == good
    assert "Three Events" in result.stderr
    assert "'Refactor-Stage: stage-3'" in result.stderr
    assert git(repo, "tag", "-l") == "stage-3-events"


def test_a_lightweight_tag_on_the_right_commit_becomes_annotated(repo):
    target = commit(repo, "monolith\n\nRefactor-Stage: 0-monolith")
    git(repo, "tag", "stage-0-monolith")

    result = stage_tags(repo)

    assert actions(result.stdout) == {"stage-0-monolith": "moved"}
    assert git(repo, "cat-file", "-t", "stage-0-monolith") == "tag"
    assert tag_target(repo, "stage-0-monolith") == target


def test_dry_run_writes_nothing(repo):
    commit(repo, "monolith\n\nRefactor-Stage: 0-monolith")

    result = stage_tags(repo, "--dry-run")

    assert actions(result.stdout) == {"stage-0-monolith": "created"}
    assert git(repo, "tag", "-l") == ""


def test_no_trailers_is_not_an_error(repo):
    commit(repo, "nothing to see")

    result = stage_tags(repo)

    assert "nothing to tag" in result.stdout
    assert git(repo, "tag", "-l") == ""


def test_empty_repository_is_not_an_error(repo):
    result = stage_tags(repo)

    assert "nothing to tag" in result.stdout
