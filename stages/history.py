"""`make stage-tags`: the stage history, generated from the checked-out commit.

Builds a linear chain of five commits, one per stage, and tags them::

    stage-0-monolith -> stage-1-facade -> stage-2-comments-extracted
                     -> stage-3-events -> stage-4-microservices

Stage N's tree holds the files of stages 0 to N (``stages/table.py``, each
Stage's ``files``) with every marker block of a later stage cut out
(``stages/markers.py``); the last stage's tree is the commit's own tree. So
``git diff stage-1-facade stage-2-comments-extracted`` is exactly what step 2
takes.

The commits are deterministic: fixed author and committer, the date of the
source commit, a message naming it. The same source commit gives the same
SHAs on every machine; a second run changes nothing. Only git's object store
and the tags are written: the branch, the index and the work tree are never
touched, and a shallow clone is enough (only the commit's own tree is read).
Uncommitted changes are not included (the command says so).

    python -m stages.history                  # build and tag (make stage-tags)
    python -m stages.history --dry-run        # build, print the commits, tag nothing
    python -m stages.history --stats          # the README's table of steps
    python -m stages.history --stats --worktree --write-readme
                                              # ...written into README.md (its step-table block)
    python -m stages.history --export DIR --stage N [--worktree]
                                              # write stage N's tree into DIR
    --worktree: read the work tree (tracked and new files) instead of HEAD,
                to try markers before committing; never tags.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import tomllib
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from stages import markers

AUTHOR_NAME = "Stage history"
AUTHOR_EMAIL = "stage-history@example.invalid"
TABLE_PATH = "stages/table.py"


class HistoryError(RuntimeError):
    """Anything that stops the history from being built; nothing was tagged."""


# --- git ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Git:
    root: Path

    def run(self, *args: str, input: bytes | None = None, env: dict | None = None) -> bytes:
        result = subprocess.run(
            ["git", "-C", str(self.root), *args],
            input=input,
            capture_output=True,
            env={**os.environ, **(env or {})},
            check=False,
        )
        if result.returncode != 0:
            raise HistoryError(
                f"git {' '.join(args[:3])} failed: {result.stderr.decode(errors='replace').strip()}"
            )
        return result.stdout

    def text(self, *args: str, **kwargs) -> str:
        return self.run(*args, **kwargs).decode().strip()

    def ref(self, name: str) -> str | None:
        """The object a ref points at, or None."""
        result = subprocess.run(
            ["git", "-C", str(self.root), "rev-parse", "--verify", "--quiet", name],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip() or None


def open_repository(path: Path) -> Git:
    """The repository around ``path``, with at least one commit."""
    result = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise HistoryError(
            f"{path} is not in a git repository: run this inside a clone of the project"
        )
    git = Git(Path(result.stdout.strip()))
    if git.ref("HEAD^{commit}") is None:
        raise HistoryError("the repository has no commits yet: commit first, then build")
    return git


# --- sources: the commit, or the work tree --------------------------------------------


@dataclass(frozen=True)
class Entry:
    path: str
    mode: str  # git's: 100644, 100755, 120000 (symlink), 160000 (submodule)
    blob: str | None  # the object id when known (HEAD), else None
    read: Callable[[], bytes]


class CommitSource:
    """The files of a commit, read from git's object store."""

    def __init__(self, git: Git, commit: str) -> None:
        self.git = git
        self.commit = commit
        self._contents: dict[str, bytes] | None = None
        listing = git.run("ls-tree", "-r", "-z", "--full-tree", commit)
        self.entries: dict[str, Entry] = {}
        for item in listing.split(b"\0"):
            if not item:
                continue
            meta, path = item.decode().split("\t", 1)
            mode, _kind, blob = meta.split()
            self.entries[path] = Entry(path, mode, blob, lambda p=path: self._content(p))

    def _content(self, path: str) -> bytes:
        if self._contents is None:
            self._contents = self._read_all()
        return self._contents[path]

    def _read_all(self) -> dict[str, bytes]:
        """Every blob in one `git cat-file --batch`."""
        wanted = [e for e in self.entries.values() if e.mode != "160000"]
        request = "".join(f"{e.blob}\n" for e in wanted).encode()
        out = self.git.run("cat-file", "--batch", input=request)
        contents: dict[str, bytes] = {}
        offset = 0
        for entry in wanted:
            header_end = out.index(b"\n", offset)
            size = int(out[offset:header_end].split()[2])
            start = header_end + 1
            contents[entry.path] = out[start : start + size]
            offset = start + size + 1
        return contents


class WorktreeSource:
    """The files of the work tree: tracked ones as they are on disk, plus new
    files git does not ignore (to try markers before committing)."""

    def __init__(self, git: Git) -> None:
        self.git = git
        self.commit = git.text("rev-parse", "HEAD")
        listing = git.run("ls-files", "-z", "--cached", "-s")
        modes = {}
        for item in listing.split(b"\0"):
            if item:
                meta, path = item.decode().split("\t", 1)
                modes[path] = meta.split()[0]
        others = git.run("ls-files", "-z", "--others", "--exclude-standard")
        for path in others.decode().split("\0"):
            if path:
                modes[path] = "100755" if os.access(git.root / path, os.X_OK) else "100644"
        self.entries = {}
        for path, mode in sorted(modes.items()):
            full = git.root / path
            if not full.exists() and not full.is_symlink():
                continue  # deleted in the work tree
            self.entries[path] = Entry(path, mode, None, lambda f=full: _read_path(f))


def _read_path(path: Path) -> bytes:
    if path.is_symlink():
        return os.readlink(path).encode()
    return path.read_bytes()


# --- the stage table of the source --------------------------------------------------


def load_table(source) -> types.ModuleType:
    """``stages/table.py`` as the source has it (not as this process imported it)."""
    entry = source.entries.get(TABLE_PATH)
    if entry is None:
        raise HistoryError(f"{TABLE_PATH} is missing: it says which stage each file belongs to")
    module = types.ModuleType("stages._source_table")
    module.__file__ = TABLE_PATH
    sys.modules[module.__name__] = module
    try:
        exec(compile(entry.read(), TABLE_PATH, "exec"), module.__dict__)  # noqa: S102 - our own file
    finally:
        sys.modules.pop(module.__name__, None)
    return module


# --- stage trees ----------------------------------------------------------------------


@dataclass(frozen=True)
class File:
    path: str
    mode: str
    data: bytes | None  # None: unchanged from the source (blob known)
    blob: str | None


def _text(data: bytes) -> str | None:
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def stage_trees(
    source, table, *, renderers: dict[str, Callable[[int], str]]
) -> dict[int, list[File]]:
    """Every stage's files. Raises HistoryError naming the file (and stage)
    on a file no stage claims, a malformed marker or a tree that does not build."""
    newest = max(table.STAGES)
    owner: dict[str, int] = {}
    problems = []
    for path in source.entries:
        try:
            owner[path] = table.stage_of_path(path)
        except LookupError as exc:
            problems.append(str(exc))
    for number, stage in table.STAGES.items():
        for pattern in stage.files:
            if not any(table.glob_match(p, pattern) for p in source.entries):
                problems.append(
                    f"stage {number} ({stage.slug}) names {pattern!r} in its files, "
                    "but no file matches it"
                )
    if problems:
        raise HistoryError("\n".join(problems))

    def render(name: str, stage: int) -> str:
        if name not in renderers:
            raise HistoryError(f"unknown generated block {name!r} (known: {sorted(renderers)})")
        return renderers[name](stage)

    scans: dict[str, tuple[str, markers.Scan]] = {}
    literal = getattr(table, "LITERAL", ())
    for path, entry in source.entries.items():
        if entry.mode not in ("100644", "100755") or path in literal:
            continue
        text = _text(entry.read())
        if text is None or not markers.has_markers(text):
            continue
        try:
            found = markers.scan(text, path)
        except markers.MarkerError as exc:
            raise HistoryError(str(exc)) from None
        if not found.empty:
            for block_stage in found.stages:
                if block_stage < owner[path] or block_stage > newest:
                    raise HistoryError(
                        f"{path}: a stage {block_stage} marker in a file of stage {owner[path]} "
                        f"(markers name a stage from the file's own to {newest})"
                    )
            scans[path] = (text, found)

    trees: dict[int, list[File]] = {}
    for number in sorted(table.STAGES):
        files = []
        for path, entry in sorted(source.entries.items()):
            if owner[path] > number:
                continue
            if path in scans and number < newest:
                text, found = scans[path]
                try:
                    cut = markers.cut(text, number, path=path, render=render, found=found)
                except markers.MarkerError as exc:
                    raise HistoryError(str(exc)) from None
                files.append(File(path, entry.mode, cut.encode(), None))
            elif entry.blob is None:  # the work tree: no object yet
                files.append(File(path, entry.mode, entry.read(), None))
            else:
                files.append(File(path, entry.mode, None, entry.blob))
        check_tree(number, files, source)
        trees[number] = files
    return trees


def check_tree(number: int, files: list[File], source) -> None:
    """The tree builds: Python compiles, JSON, TOML and YAML parse."""
    for f in files:
        suffix = Path(f.path).suffix
        if suffix not in (".py", ".json", ".toml", ".yaml", ".yml") or f.mode == "120000":
            continue
        data = f.data if f.data is not None else source.entries[f.path].read()
        try:
            if suffix == ".py":
                compile(data, f.path, "exec", dont_inherit=True)
            elif suffix == ".json":
                json.loads(data)
            elif suffix == ".toml":
                tomllib.loads(data.decode())
            else:
                _parse_yaml(data)
        except Exception as exc:  # reported with the file and the stage
            raise HistoryError(f"stage {number}: {f.path} does not build: {exc}") from None


def _parse_yaml(data: bytes) -> None:
    try:
        import yaml  # optional: the history builds without the virtualenv
    except ImportError:
        return
    list(yaml.safe_load_all(data))


# --- writing: blobs, trees, commits, tags -------------------------------------------


@contextmanager
def _scratch_index() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="stage-history-") as folder:
        yield str(Path(folder) / "index")


def write_tree(git: Git, files: list[File]) -> str:
    lines = []
    for f in files:
        blob = f.blob
        if blob is None:
            blob = git.text("hash-object", "-w", "--stdin", "--no-filters", input=f.data)
        kind = "commit" if f.mode == "160000" else "blob"
        lines.append(f"{f.mode} {kind} {blob}\t{f.path}\0")
    with _scratch_index() as index:
        env = {"GIT_INDEX_FILE": index}
        git.run(
            "update-index", "--add", "-z", "--index-info", input="".join(lines).encode(), env=env
        )
        return git.text("write-tree", env=env)


def commit_message(stage, source_commit: str) -> str:
    patterns = ", ".join(stage.patterns)
    return (
        f"Stage {stage.number}: {stage.title.lower()}\n\n"
        f"{stage.summary[0].upper()}{stage.summary[1:]}.\n"
        f"Patterns: {patterns}.\n"
        f"Read: {stage.note}\n\n"
        f"Generated by `make stage-tags` (stages/history.py) from {source_commit}.\n"
    )


@dataclass(frozen=True)
class Built:
    number: int
    tag: str
    commit: str
    tree: str


def build(git: Git, source, *, renderers=None) -> list[Built]:
    """The chain of stage commits (written to the object store; no ref is touched)."""
    table = load_table(source)
    if renderers is None:
        from stages import readme

        renderers = readme.renderers(table)
    trees = stage_trees(source, table, renderers=renderers)
    newest = max(table.STAGES)
    date = git.text("show", "-s", "--format=%cI", source.commit)
    env = {
        "GIT_AUTHOR_NAME": AUTHOR_NAME,
        "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_NAME": AUTHOR_NAME,
        "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
        "GIT_COMMITTER_DATE": date,
    }
    built: list[Built] = []
    parent: str | None = None
    for number in sorted(trees):
        if number == newest and isinstance(source, CommitSource):
            tree = git.text("rev-parse", f"{source.commit}^{{tree}}")
        else:
            tree = write_tree(git, trees[number])
        stage = table.STAGES[number]
        args = ["commit-tree", "--no-gpg-sign", tree, *(["-p", parent] if parent else [])]
        commit = git.text(*args, input=commit_message(stage, source.commit).encode(), env=env)
        built.append(Built(number, stage.tag, commit, tree))
        parent = commit
    return built


def set_tags(git: Git, built: list[Built]) -> list[str]:
    """Points each stage tag at its commit; returns one report line per tag."""
    report = []
    for b in built:
        ref = f"refs/tags/{b.tag}"
        old = git.ref(ref)
        old_commit = git.ref(f"{ref}^{{commit}}") if old else None
        if old == b.commit:
            status = "unchanged"
        else:
            git.run("update-ref", ref, b.commit)
            if old is None:
                status = "created"
            elif old_commit == old:
                status = f"moved (was {old[:12]})"
            else:
                status = f"moved (was an annotated tag {old[:12]} of {str(old_commit)[:12]})"
        report.append(f"  {b.tag:<28} {b.commit[:12]}  {status}")
    return report


def uncommitted(git: Git) -> list[str]:
    status = git.run("status", "--porcelain", "--untracked-files=normal").decode()
    return [line for line in status.splitlines() if line.strip()]


# --- statistics of the steps ---------------------------------------------------------

# Where a changed file counts in the table of steps (first match wins): the
# tests, the deployment, the monolith, and the new code (Python files that a
# later stage brings: the gateway, the services, the event plumbing). What
# matches none (docs, notes, README, tooling) is not counted.
AREAS = (
    ("tests", ("**/tests/**", "tests/**", "**/conftest.py")),
    ("deploy", ("docker/**", "k8s/**", ".github/**", ".dockerignore")),
    ("monolith", ("monolith/**", "manage.py")),
)
NEW_CODE = "new code"


def area_of(table, path: str) -> str | None:
    for area, patterns in AREAS:
        if any(table.glob_match(path, p) for p in patterns):
            return area
    if path.endswith(".py") and table.stage_of_path(path) > 0:
        return NEW_CODE
    return None


@dataclass(frozen=True)
class StepStats:
    number: int
    files: int  # every file the step changes
    lines: dict[str, tuple[int, int]]  # area -> (added, removed)
    files_by_area: dict[str, int]


def step_stats(git: Git, built: list[Built], table) -> list[StepStats]:
    stats = []
    for before, after in itertools.pairwise(built):
        out = git.run("diff", "--numstat", "-z", "--no-renames", before.commit, after.commit)
        lines = dict.fromkeys((*(a for a, _ in AREAS), NEW_CODE), (0, 0))
        files_by_area = dict.fromkeys(lines, 0)
        files = 0
        for item in out.decode().split("\0"):
            if not item:
                continue
            added, removed, path = item.split("\t", 2)
            files += 1
            area = area_of(table, path)
            if area is None:
                continue
            a, r = lines[area]
            lines[area] = (a + _count(added), r + _count(removed))
            files_by_area[area] += 1
        stats.append(StepStats(after.number, files, lines, files_by_area))
    return stats


def _count(value: str) -> int:
    return 0 if value == "-" else int(value)


# --- the command ---------------------------------------------------------------------


def export(files: list[File], source, target: Path) -> None:
    for f in files:
        path = target / f.path
        path.parent.mkdir(parents=True, exist_ok=True)
        data = f.data if f.data is not None else source.entries[f.path].read()
        if f.mode == "120000":
            path.symlink_to(data.decode())
            continue
        if f.mode == "160000":
            path.mkdir(exist_ok=True)
            continue
        path.write_bytes(data)
        if f.mode == "100755":
            path.chmod(0o755)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="build, print, tag nothing")
    parser.add_argument("--stats", action="store_true", help="print the README's step table")
    parser.add_argument(
        "--write-readme", action="store_true", help="with --stats: write it into README.md"
    )
    parser.add_argument("--export", type=Path, help="write one stage's tree into this folder")
    parser.add_argument("--stage", type=int, help="with --export: which stage")
    parser.add_argument("--worktree", action="store_true", help="read the work tree, not HEAD")
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        git = open_repository(args.repo)
        source = (
            WorktreeSource(git)
            if args.worktree
            else CommitSource(git, git.text("rev-parse", "HEAD"))
        )
        if args.export:
            return _export(git, source, args)
        built = build(git, source)
        if args.stats:
            from stages import readme

            table = load_table(source)
            text = readme.step_table(table, step_stats(git, built, table))
            if args.write_readme:
                readme.write_step_table(git.root / "README.md", text)
            print(text, end="")
            return 0
        dirty = uncommitted(git)
        if args.dry_run or args.worktree:
            for b in built:
                print(f"  {b.tag:<28} {b.commit[:12]}")
            return 0
        report = set_tags(git, built)
    except HistoryError as exc:
        print(f"stage-tags: {exc}", file=sys.stderr)
        print("stage-tags: no tag was changed.", file=sys.stderr)
        return 1
    print(f"Stage history from {source.commit[:12]} ({len(built)} commits):")
    print("\n".join(report))
    if dirty:
        print(
            f"\nNote: {len(dirty)} uncommitted change(s) in the work tree are NOT in the history "
            "(it is built from the last commit only):"
        )
        for line in dirty[:10]:
            print(f"    {line}")
        if len(dirty) > 10:
            print(f"    ... and {len(dirty) - 10} more")
    first, last = built[0], built[-1]
    print(
        f"\nStep through it: git checkout {first.tag}, then "
        f"git diff {first.tag} {built[1].tag if len(built) > 1 else last.tag}, ..."
    )
    return 0


def _export(git: Git, source, args) -> int:
    table = load_table(source)
    from stages import readme

    trees = stage_trees(source, table, renderers=readme.renderers(table))
    number = max(table.STAGES) if args.stage is None else args.stage
    if number not in trees:
        raise HistoryError(f"no stage {number}: stages are {sorted(trees)}")
    target = args.export.resolve()
    if target.exists() and any(target.iterdir()):
        raise HistoryError(f"{target} is not empty")
    export(trees[number], source, target)
    print(f"stage {number} ({table.STAGES[number].tag}): {len(trees[number])} files in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
