"""The verbs as a participant uses them, on a clone of this repository:
start, hint, check, solution, reset, and the refusals that keep work safe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MAIN = Path(__file__).resolve().parents[2]


def exercise(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """This checkout's workshop code, run against the repository at ``cwd``."""
    code = (
        f"import sys; sys.path.insert(0, {str(MAIN)!r}); "
        "from workshop.cli import main; sys.exit(main())"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    clone = tmp_path_factory.mktemp("workshop") / "repo"
    git(clone.parent, "clone", "--quiet", "--shared", str(MAIN), str(clone))
    git(clone, "checkout", "--quiet", "--detach", git(MAIN, "rev-parse", "HEAD"))
    (clone / ".venv").symlink_to(MAIN / ".venv", target_is_directory=True)
    return clone


@pytest.fixture(scope="module")
def started(repo: Path) -> Path:
    result = exercise(repo, "start", "1.1")
    assert result.returncode == 0, result.stderr
    assert "Exercise 1.1: Facade" in result.stdout
    assert "Goal" in result.stdout
    return repo / "workspaces" / "1.1"


def state(repo: Path) -> dict:
    return json.loads((repo / ".git" / "workshop" / "state.json").read_text())


def test_an_unknown_exercise_lists_the_valid_ones(repo):
    result = exercise(repo, "start", "7.7")
    assert result.returncode == 2
    assert "no exercise '7.7'" in result.stderr
    assert "1.1" in result.stderr
    assert "3.2" in result.stderr
    assert not (repo / "workspaces" / "7.7").exists()


def test_check_outside_a_workspace_says_which_exercise_to_start(tmp_path_factory):
    clone = tmp_path_factory.mktemp("fresh") / "repo"
    git(clone.parent, "clone", "--quiet", "--shared", str(MAIN), str(clone))
    result = exercise(clone, "check")
    assert result.returncode == 2
    assert "not in an exercise workspace" in result.stderr
    assert "./exercise start 1.1" in result.stderr


def test_start_makes_a_branch_off_the_stage_with_the_solution_removed(repo, started):
    routes = (started / "gateway" / "routes.py").read_text()
    assert 'INTERNAL = r"(?!)"' in routes
    assert '"gateway", "internal")' not in routes
    entry = state(repo)["exercises"]["1.1"]
    assert git(started, "rev-parse", "--abbrev-ref", "HEAD") == "exercise/1.1"
    assert git(started, "rev-parse", "HEAD~1") == entry["stage_commit"]
    assert git(repo, "rev-parse", "stage-1-facade") == entry["stage_commit"]
    assert git(started, "status", "--porcelain") == ""  # the start is committed
    listed = exercise(repo, "list").stdout
    assert any(line.startswith("1.1") and "started" in line for line in listed.splitlines())


def test_hints_come_one_at_a_time(repo, started):
    first = exercise(started, "hint")
    second = exercise(started, "hint")
    assert "Hint 1/3" in first.stdout
    assert "Hint 2/3" in second.stdout
    assert state(repo)["exercises"]["1.1"]["hints_shown"] == 2


def test_the_solution_is_the_diff_back_to_the_stage(started):
    diff = exercise(started, "solution").stdout
    assert '+    Route(ANY, "regex", INTERNAL, "gateway", "internal"),' in diff
    assert '+INTERNAL = r"^/+internal(/.*)?$"' in diff


def test_check_fails_blank_with_what_is_missing_then_passes_solved(repo, started):
    blank = exercise(started, "check")
    assert blank.returncode == 1, blank.stdout + blank.stderr
    assert "does not pass yet" in blank.stdout
    assert "Missing:" in blank.stdout
    assert "Hint 1 helps" in blank.stdout
    git(started, "checkout", state(repo)["exercises"]["1.1"]["stage_commit"], "--", "gateway")
    solved = exercise(started, "check")
    assert solved.returncode == 0, solved.stdout
    assert "Exercise 1.1 passes" in solved.stdout
    assert "passes" in next(
        line for line in exercise(repo, "list").stdout.splitlines() if line.startswith("1.1")
    )
    assert exercise(repo, "reset", "1.1", "--yes").returncode == 0


def test_start_refuses_a_workspace_with_uncommitted_work(started):
    notes = started / "my-notes.txt"
    notes.write_text("mine")
    try:
        result = exercise(started.parent.parent, "start", "1.1", "--restart")
        assert result.returncode == 2
        assert "uncommitted changes" in result.stderr
        assert "commit" in result.stderr
        assert "stash" in result.stderr
        assert notes.read_text() == "mine"
    finally:
        notes.unlink()


def test_reset_asks_before_discarding_work_outside_the_exercise(started):
    routes = started / "gateway" / "routes.py"
    readme = started / "README.md"
    routes.write_text(routes.read_text() + "\n# my attempt\n")
    original = readme.read_text()
    readme.write_text(original + "\nmy notes\n")
    refused = exercise(started, "reset", stdin="")  # not a terminal: never discards
    assert refused.returncode == 2
    assert "README.md" in refused.stdout
    assert readme.read_text().endswith("my notes\n")
    assert routes.read_text().endswith("# my attempt\n")
    done = exercise(started, "reset", "--yes")
    assert done.returncode == 0
    assert readme.read_text() == original
    assert "# my attempt" not in routes.read_text()
    patch = Path(done.stdout.split("git apply ", 1)[1].strip())
    assert "+# my attempt" in patch.read_text()  # the exercise's own work was saved


def test_a_workspace_of_an_older_history_says_how_to_restart(repo, started):
    path = repo / ".git" / "workshop" / "state.json"
    saved = path.read_text()
    data = json.loads(saved)
    data["exercises"]["1.1"]["stage_tree"] = "0" * 40
    path.write_text(json.dumps(data))
    try:
        result = exercise(started, "check")
        assert result.returncode == 2
        assert "main has moved" in result.stderr
        assert "./exercise start 1.1 --restart" in result.stderr
    finally:
        path.write_text(saved)


def test_restart_keeps_the_participants_commits_on_a_branch(repo, started):
    (started / "gateway" / "attempt.txt").write_text("x")
    git(started, "add", "-A")
    git(started, "-c", "user.name=P", "-c", "user.email=p@example.invalid", "commit", "-qm", "mine")
    result = exercise(repo, "start", "1.1", "--restart")
    assert result.returncode == 0, result.stderr
    kept = state(repo)["exercises"]["1.1"]["kept_branch"]
    assert kept
    assert kept.startswith("exercise/1.1-")
    assert git(repo, "log", "-1", "--format=%s", kept) == "mine"
    assert not (started / "gateway" / "attempt.txt").exists()
