"""Exercise workspaces: git worktrees under ``workspaces/<id>`` of the main
checkout, each on the branch ``exercise/<id>`` off its stage's commit, plus
the state the verbs share (in git's own folder, never in a work tree).

The main checkout is found through git (the common git folder), so the
verbs work the same from the main checkout and from inside a workspace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from stages import history
from workshop.catalogue import Exercise

WORKSPACES = "workspaces"
BRANCH_PREFIX = "exercise/"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Workshop",
    "GIT_AUTHOR_EMAIL": "workshop@example.invalid",
    "GIT_COMMITTER_NAME": "Workshop",
    "GIT_COMMITTER_EMAIL": "workshop@example.invalid",
}


class WorkshopError(RuntimeError):
    """Something the participant has to act on; the message says what."""


def git(cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    result = subprocess.run(
        ["git", "-C", str(cwd), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if check and result.returncode != 0:
        raise WorkshopError(f"git {' '.join(args)} failed:\n{result.stderr.strip()}")
    return result.stdout.strip()


def main_root(start: Path | None = None) -> Path:
    """The main checkout (where ``workspaces/`` lives), from anywhere inside
    it or inside one of its workspaces."""
    for here in (start or Path.cwd(), Path(__file__).resolve().parents[1]):
        common = git(here, "rev-parse", "--path-format=absolute", "--git-common-dir", check=False)
        if common:
            return Path(common).parent
    raise WorkshopError("not inside the blog repository's checkout")


@dataclass
class State:
    """What the verbs remember, per exercise: where it started from, hints
    shown, the last check."""

    path: Path
    data: dict

    @classmethod
    def load(cls, root: Path) -> State:
        path = root / ".git" / "workshop" / "state.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        data.setdefault("exercises", {})
        return cls(path, data)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n")
        tmp.replace(self.path)

    def of(self, exercise_id: str) -> dict | None:
        return self.data["exercises"].get(exercise_id)

    def started(self) -> list[str]:
        return list(self.data["exercises"])


def workspace_dir(root: Path, exercise_id: str) -> Path:
    return root / WORKSPACES / exercise_id


def exercise_at(path: Path, root: Path) -> str | None:
    """The exercise whose workspace holds ``path``, if any."""
    try:
        relative = path.resolve().relative_to((root / WORKSPACES).resolve())
    except ValueError:
        return None
    return relative.parts[0] if relative.parts else None


def changes(workspace: Path) -> list[str]:
    """Changed and new files (paths) in a workspace, against its last commit."""
    out = subprocess.run(
        ["git", "-C", str(workspace), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout  # not stripped: each line starts with two status columns, maybe blank
    return [line[3:] for line in out.splitlines() if line.strip()]


def stage_build(root: Path) -> tuple[history.Git, list[history.Built]]:
    """The stage history of the checkout's HEAD (stages.history): its git
    and the stage commits, written to the object store, no ref touched."""
    repo = history.open_repository(root)
    source = history.CommitSource(repo, repo.text("rev-parse", "HEAD"))
    try:
        return repo, history.build(repo, source)
    except history.HistoryError as exc:
        raise WorkshopError(f"the stage history does not build: {exc}") from None


def start(root: Path, exercise: Exercise, *, restart: bool = False) -> dict:
    """Make the workspace; returns its state entry. Refuses to touch a
    workspace with uncommitted work."""
    from workshop.blank import BlankError

    target = workspace_dir(root, exercise.id)
    branch = BRANCH_PREFIX + exercise.id
    state = State.load(root)
    if target.exists():
        dirty = changes(target)
        if dirty:
            raise WorkshopError(
                f"workspaces/{exercise.id} has uncommitted changes:\n"
                + "\n".join(f"    {p}" for p in dirty[:15])
                + "\nKeep them first: commit them (git -C workspaces/"
                f"{exercise.id} commit -am 'my work') or stash them (git -C workspaces/"
                f"{exercise.id} stash). Nothing was changed."
            )
        if not restart:
            raise WorkshopError(
                f"exercise {exercise.id} is started already, in workspaces/{exercise.id}.\n"
                f"Go on there (./exercise brief {exercise.id}), or start it again on the "
                f"current history: ./exercise start {exercise.id} --restart (your commits "
                "stay on a backup branch)."
            )
    repo, built = stage_build(root)
    by_stage = {b.number: b for b in built}
    stage = by_stage[exercise.stage]
    history.set_tags(repo, built)
    kept = None
    if git(root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False):
        old = state.of(exercise.id) or {}
        ahead = git(root, "rev-list", "--count", f"{old.get('start', stage.commit)}..{branch}",
                    check=False)  # fmt: skip
        if ahead not in ("", "0"):
            kept = f"{branch}-{time.strftime('%Y%m%d-%H%M%S')}"
            git(root, "branch", "-m", branch, kept)
    if target.exists():
        git(root, "worktree", "remove", "--force", str(target))
    git(root, "worktree", "prune")
    target.parent.mkdir(exist_ok=True)
    git(root, "worktree", "add", "--quiet", "-B", branch, str(target), stage.commit)
    try:
        for blank in exercise.blanks:
            blank.apply(target, exercise.id)
    except BlankError:
        git(root, "worktree", "remove", "--force", str(target))
        raise
    _tidy(root, target, exercise)
    git(target, "add", "-A")
    git(
        target,
        "commit",
        "--quiet",
        "--no-verify",
        "--no-gpg-sign",
        "-m",
        f"Exercise {exercise.id}: start ({exercise.title}); the solution removed",
        env=IDENTITY,
    )
    _link_venv(root, target)
    entry = {
        "stage": exercise.stage,
        "stage_tag": stage.tag,
        "stage_commit": stage.commit,
        "stage_tree": stage.tree,
        "start": git(target, "rev-parse", "HEAD"),
        "branch": branch,
        "hints_shown": 0,
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "last_check": None,
        "kept_branch": kept,
    }
    state.data["exercises"][exercise.id] = entry
    state.save()
    return entry


def _tidy(root: Path, target: Path, exercise: Exercise) -> None:
    """The blanked files as the project's linters want them: formatted, and
    the imports only the solution uses marked (``# noqa``) so that the
    workspace's `make lint` passes before the exercise is solved."""
    ruff = root / ".venv" / "bin" / "ruff"
    ruff = str(ruff) if ruff.exists() else shutil.which("ruff")
    python_files = [p for p in exercise.files if p.endswith(".py")]
    if not ruff or not python_files:
        return
    for args in (["check", "--add-noqa", "--quiet"], ["format", "--quiet"]):
        subprocess.run([ruff, *args, *python_files], cwd=target, capture_output=True, check=False)


# What the Makefile's virtualenv and node stamps depend on: in a workspace
# they are dated back (git keeps no dates), so that `make up` or `make test`
# there never reinstalls into the shared virtualenv, which would point its
# editable blog-libs at the workspace's libs/.
STAMP_INPUTS = (
    "requirements/*.txt",
    "libs/pyproject.toml",
    "services/*/requirements*.txt",
    "tools/node/package.json",
    "tools/node/package-lock.json",
)
LONG_AGO = 946_684_800  # 2000-01-01
SHARED = {".venv": ".venv", "tools/node/node_modules": "tools/node/node_modules"}


def _link_venv(root: Path, target: Path) -> None:
    """The workspace uses the main checkout's virtualenv and node tools
    (links, ignored by git), so `make` there installs nothing new."""
    for link, source in SHARED.items():
        path, shared = target / link, root / source
        if not path.exists() and not path.is_symlink() and shared.is_dir():
            path.symlink_to(shared, target_is_directory=True)
    for pattern in STAMP_INPUTS:
        for path in target.glob(pattern):
            os.utime(path, (LONG_AGO, LONG_AGO))
    exclude = Path(git(root, "rev-parse", "--path-format=absolute", "--git-common-dir"))
    exclude = exclude / "info" / "exclude"
    exclude.parent.mkdir(exist_ok=True)
    lines = exclude.read_text().splitlines() if exclude.exists() else []
    wanted = [f"/{link}" for link in SHARED if f"/{link}" not in lines]
    if wanted:
        exclude.write_text("\n".join([*lines, *wanted]) + "\n")


def stale(root: Path, entry: dict) -> str | None:
    """Why the workspace no longer matches main's stage history, or None."""
    _, built = stage_build(root)
    now = {b.number: b for b in built}[entry["stage"]]
    if now.tree == entry["stage_tree"]:
        return None
    return (
        f"main has moved since this workspace was made: stage {entry['stage']}'s tree is "
        f"now {now.tree[:12]}, the workspace was built from {entry['stage_tree'][:12]}."
    )


def solution_diff(root: Path, exercise: Exercise, entry: dict, *, color: bool) -> str:
    """The reference solution: from the starting point to the stage's own code."""
    workspace = workspace_dir(root, exercise.id)
    return git(
        workspace,
        "diff",
        "--color=always" if color else "--no-color",
        entry["start"],
        entry["stage_commit"],
        "--",
        *exercise.files,
    )


def reset(root: Path, exercise: Exercise, entry: dict, *, confirm) -> str | None:
    """Back to the starting point. Work on the exercise's own files is saved
    as a patch first; work anywhere else is discarded only if ``confirm``
    (shown the files) says yes. Returns the patch's path, if one was saved."""
    workspace = workspace_dir(root, exercise.id)
    if not workspace.exists():
        raise WorkshopError(
            f"exercise {exercise.id} has no workspace: ./exercise start {exercise.id}"
        )
    mine = set(exercise.files)
    changed = changes(workspace)
    committed = git(workspace, "diff", "--name-only", entry["start"], "HEAD").splitlines()
    outside = sorted({p for p in [*changed, *committed] if p not in mine})
    if outside and not confirm(outside):
        raise WorkshopError("reset cancelled: nothing was changed")
    patch = None
    diff = git(workspace, "diff", entry["start"], "--", *exercise.files)
    if diff:
        backups = root / ".git" / "workshop" / "backups"
        backups.mkdir(parents=True, exist_ok=True)
        patch = backups / f"{exercise.id}-{time.strftime('%Y%m%d-%H%M%S')}.patch"
        patch.write_text(diff + "\n")
    git(workspace, "reset", "--quiet", "--hard", entry["start"])
    git(workspace, "clean", "--quiet", "-fd")
    return str(patch) if patch else None
