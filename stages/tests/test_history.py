"""`make stage-tags` (stages.history) against throw-away repositories holding a
small project with three stages: the chain of commits, determinism across
clones (shallow ones too), what it leaves alone, and its errors."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TABLE = """\
from stages.table import Stage, Topology, glob_match


def _stage(number, slug, files):
    return Stage(number, slug, slug.title(), ("a pattern",), f"{slug} runs", f"after {slug}",
                 {"-": Topology(number, "-", ())}, "-", files=files)


STAGES = {
    0: _stage(0, "base", ("README.md", "app.py", "stages/**", "config.json")),
    1: _stage(1, "extra", ("extra/**",)),
    2: _stage(2, "more", ("more.py",)),
}


def stage_of_path(path):
    hits = [n for n, s in STAGES.items() if any(glob_match(path, g) for g in s.files)]
    if not hits:
        raise LookupError(f"{path} belongs to no stage (stages/table.py)")
    return max(hits)
"""

APP = """\
import json  # [stage 1]


def base():
    return 0


# >>> stage 1: the extra step
def extra():
    return json.dumps(1)
    # <<< stage 1
"""

README = """\
# Project
<!-- >>> generated: stage-banner -->
(rendered)
<!-- <<< generated -->
Base text.
<!-- >>> stage 2: more -->
More text.
<!-- <<< stage 2 -->
"""


@pytest.fixture
def git_env(monkeypatch):
    """Isolated from the developer's git configuration (signing, hooks, names)."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(key, raising=False)
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Someone")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "someone@example.com")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def write(repo: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)


@pytest.fixture
def repo(tmp_path, git_env) -> Path:
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(
        repo,
        {
            "stages/table.py": TABLE,
            "app.py": APP,
            "README.md": README,
            "config.json": '{"a": 1}\n',
            "extra/notes.md": "extra\n",
            "more.py": "MORE = 2\n",
        },
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    return repo


def history(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stages.history", "--repo", str(repo), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def tags(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/tags")
    return dict(line.split() for line in out.splitlines())


def show(repo: Path, ref: str, path: str) -> str:
    return git(repo, "show", f"{ref}:{path}")


def files(repo: Path, ref: str) -> set[str]:
    return set(git(repo, "ls-tree", "-r", "--name-only", ref).splitlines())


NAMES = ["stage-0-base", "stage-1-extra", "stage-2-more"]


def test_builds_a_linear_chain_one_commit_and_tag_per_stage(repo):
    result = history(repo)
    assert result.returncode == 0, result.stderr
    made = tags(repo)
    assert sorted(made) == NAMES
    assert git(repo, "rev-list", "--parents", "-n1", made["stage-0-base"]).split()[1:] == []
    for before, after in itertools.pairwise(NAMES):
        assert git(repo, "rev-parse", f"{made[after]}^") == made[before]
    assert result.stdout.count(" created") == 3
    # Stage 0: only its files, later blocks and lines cut out.
    assert files(repo, "stage-0-base") == {"stages/table.py", "app.py", "README.md", "config.json"}
    assert show(repo, "stage-0-base", "app.py") == "def base():\n    return 0"
    assert files(repo, "stage-1-extra") == files(repo, "stage-0-base") | {"extra/notes.md"}
    assert "def extra" in show(repo, "stage-1-extra", "app.py")
    # The last stage is the commit's own tree.
    assert git(repo, "rev-parse", "stage-2-more^{tree}") == git(repo, "rev-parse", "HEAD^{tree}")
    # Each step's diff is that step.
    assert git(repo, "diff", "--name-only", "stage-1-extra", "stage-2-more").splitlines() == [
        "README.md",
        "more.py",
    ]


def test_the_readme_banner_is_rendered_for_each_stage(repo):
    assert history(repo).returncode == 0
    at_0 = show(repo, "stage-0-base", "README.md")
    assert "You are on stage 0 of 2: Base" in at_0
    assert "git diff stage-0-base stage-1-extra" in at_0
    assert "More text" not in at_0
    assert "You are on stage 1 of 2" in show(repo, "stage-1-extra", "README.md")
    # The last stage keeps main's own text.
    assert show(repo, "stage-2-more", "README.md") == README.rstrip("\n")


def test_the_commits_are_deterministic_in_any_clone_shallow_or_not(repo, tmp_path, monkeypatch):
    assert history(repo).returncode == 0
    first = tags(repo)
    again = history(repo)
    assert again.returncode == 0
    assert tags(repo) == first
    assert again.stdout.count("unchanged") == 3
    # Another machine: another clone, another user, another clock; a shallow clone.
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Someone Else")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2030-01-01T00:00:00+00:00")
    full = tmp_path / "full"
    shallow = tmp_path / "shallow"
    # Only main is published: clone without the tags.
    git(tmp_path, "clone", "-q", "--no-local", "--no-tags", str(repo), str(full))
    git(tmp_path, "clone", "-q", "--no-tags", "--depth", "1", f"file://{repo}", str(shallow))
    assert git(shallow, "rev-parse", "--is-shallow-repository") == "true"
    for clone in (full, shallow):
        assert not tags(clone)
        result = history(clone)
        assert result.returncode == 0, result.stderr
        assert tags(clone) == first


def test_it_leaves_the_branch_index_and_work_tree_alone_and_names_uncommitted_changes(repo):
    (repo / "app.py").write_text(APP + "\n\ndef unsaved():\n    pass\n")
    (repo / "new.txt").write_text("new\n")
    git(repo, "add", "new.txt")
    before = (
        git(repo, "rev-parse", "HEAD"),
        git(repo, "symbolic-ref", "HEAD"),
        git(repo, "status", "--porcelain"),
        (repo / ".git" / "index").read_bytes(),
        (repo / "app.py").read_text(),
    )
    result = history(repo)
    assert result.returncode == 0, result.stderr
    after = (
        git(repo, "rev-parse", "HEAD"),
        git(repo, "symbolic-ref", "HEAD"),
        git(repo, "status", "--porcelain"),
        (repo / ".git" / "index").read_bytes(),
        (repo / "app.py").read_text(),
    )
    assert after == before
    assert "2 uncommitted change(s)" in result.stdout
    assert "NOT in the history" in result.stdout
    assert "unsaved" not in show(repo, "stage-2-more", "app.py")
    assert "new.txt" not in files(repo, "stage-2-more")


def test_a_new_commit_moves_the_tags_and_says_so(repo):
    assert history(repo).returncode == 0
    old = tags(repo)
    write(repo, {"more.py": "MORE = 3\n"})
    git(repo, "commit", "-qam", "second")
    result = history(repo)
    assert result.returncode == 0, result.stderr
    new = tags(repo)
    assert all(new[name] != old[name] for name in NAMES)  # the source commit is named in each
    assert f"moved (was {old['stage-2-more'][:12]})" in result.stdout
    assert git(repo, "show", "-s", "--format=%B", "stage-0-base").count(
        git(repo, "rev-parse", "HEAD")
    )


def test_a_tag_name_taken_by_something_else_is_moved(repo):
    git(repo, "tag", "-a", "-m", "someone's tag", "stage-1-extra", "HEAD")
    annotated = git(repo, "rev-parse", "stage-1-extra")
    result = history(repo)
    assert result.returncode == 0, result.stderr
    assert f"moved (was an annotated tag {annotated[:12]}" in result.stdout
    assert git(repo, "cat-file", "-t", "stage-1-extra") == "commit"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stray.txt": "x\n"}, "stray.txt belongs to no stage"),
        (
            {"app.py": APP.replace("    # <<< stage 1\n", "")},
            "app.py:8: the stage 1 block is never closed",
        ),
        (
            {"app.py": "def f():\n    # >>> stage 1: x\n    return 1\n    # <<< stage 1\n"},
            "stage 0: app.py does not build",
        ),
        ({"config.json": '{"a": 1,\n"b": 2 // [stage 1]\n}\n'}, "config.json does not build"),
        (
            {"stages/table.py": TABLE.replace('"more.py",', '"more.py", "gone/**",')},
            "stage 2 (more) names 'gone/**' in its files, but no file matches it",
        ),
        ({"more.py": "# >>> stage 1: too early\nX = 1\n# <<< stage 1\n"}, "a stage 1 marker"),
    ],
)
def test_errors_name_the_file_and_leave_every_tag_as_it_was(repo, change, message):
    assert history(repo).returncode == 0
    before = tags(repo)
    write(repo, change)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "broken")
    result = history(repo)
    assert result.returncode == 1
    assert message in result.stderr
    assert "no tag was changed" in result.stderr
    assert tags(repo) == before


def test_outside_a_repository_or_without_commits_it_says_so(tmp_path, git_env):
    plain = tmp_path / "plain"
    plain.mkdir()
    result = history(plain)
    assert result.returncode == 1
    assert "is not in a git repository" in result.stderr
    git(plain, "init", "-q")
    result = history(plain)
    assert result.returncode == 1
    assert "has no commits yet" in result.stderr


def test_export_writes_one_stage_tree_and_stats_count_each_step(repo, tmp_path):
    target = tmp_path / "stage0"
    result = history(repo, "--export", str(target), "--stage", "0")
    assert result.returncode == 0, result.stderr
    assert {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()} == {
        "stages/table.py", "app.py", "README.md", "config.json",
    }  # fmt: skip
    stats = history(repo, "--stats")
    assert stats.returncode == 0, stats.stderr
    rows = stats.stdout.splitlines()
    assert rows[0].startswith("| step |")
    assert rows[2].startswith("| 0 → 1 extra | a pattern | 3 |")
    assert rows[3].startswith("| 1 → 2 more | a pattern | 2 |")


def test_write_readme_puts_the_table_of_steps_into_its_block(repo):
    (repo / "README.md").write_text(
        README + "<!-- >>> stage 2: table -->\n<!-- >>> generated: step-table -->\nold\n"
        "<!-- <<< generated -->\n<!-- <<< stage 2 -->\n"
    )
    result = history(repo, "--stats", "--worktree", "--write-readme")
    assert result.returncode == 0, result.stderr
    text = (repo / "README.md").read_text()
    assert "old\n" not in text
    assert "| 0 → 1 extra | a pattern |" in text
    assert text.index("| step |") > text.index("generated: step-table")
