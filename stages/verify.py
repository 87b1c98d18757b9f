"""`make stage-check` (CI): the generated stage history builds, is
deterministic, and every stage's tree is that stage and runs.

1. **Build twice.** In a fresh clone of the checked-out commit (without its
   tags: only main is published), `make stage-tags` twice: the second run
   changes nothing; a shallow clone gives the same SHAs.
2. **Nothing later.** Each tag's tree holds no file of a later stage (by the
   stage table), no marker block or line of a later stage, and none of a
   later stage's identifiers (``Stage.terms``: the names of its folders,
   settings and commands), which catches what a missing marker leaks into
   prose, a Makefile or a workflow.
3. **Each tree runs.** For each stage but the last (whose tree is the
   checked-out commit's, tested by `make test` and `make parity`), in its own
   folder and a virtualenv holding only that tree's requirements: `make
   lint`, `make test` (every suite of the tree, browser and system tests
   included; its contract suite and browser test start the tree's last
   stage, that stage), and `make up` (the embedded profile, on free ports
   and a data folder of its own) serving the stage: every process up, the
   post list answered where the stage serves it, then stopped. The last stage's `make up` is tried
   from the checked-out commit itself.

    python -m stages.verify                      # everything (what CI runs)
    python -m stages.verify --stages 0,2         # step 3 for these stages only
    python -m stages.verify --worktree           # the work tree's trees, no tags (before a commit)
    python -m stages.verify --no-run             # steps 1 and 2 only

Prints each phase's time; exits non-zero on the first failing check.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from stages import history, markers

ROOT = Path(__file__).resolve().parents[1]


class CheckFailed(RuntimeError):
    pass


def phase(title: str):
    print(f"\n==> {title}", flush=True)
    return time.monotonic()


def done(started: float, what: str = "") -> None:
    print(f"    {what + ' ' if what else ''}({time.monotonic() - started:.1f} s)", flush=True)


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, quiet=False) -> str:
    result = subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=quiet,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        output = (result.stdout or "") + (result.stderr or "") if quiet else ""
        raise CheckFailed(f"{' '.join(args)} failed in {cwd} (exit {result.returncode})\n{output}")
    return result.stdout or ""


def git(repo: Path, *args: str) -> str:
    return run(["git", *args], repo, quiet=True).strip()


def tags_of(repo: Path, names: list[str]) -> dict[str, str]:
    return {name: git(repo, "rev-parse", name) for name in names}


# --- 1. build twice -------------------------------------------------------------------


def build_twice(workdir: Path, table) -> Path:
    started = phase("Stage history: built twice in a fresh clone, once in a shallow one")
    clone, shallow = workdir / "clone", workdir / "shallow"
    git(workdir, "clone", "-q", "--no-local", "--no-tags", str(ROOT), str(clone))
    git(workdir, "clone", "-q", "--no-tags", "--depth", "1", f"file://{ROOT}", str(shallow))
    names = [s.tag for s in table.STAGES.values()]
    make_tags = [sys.executable, "-m", "stages.history"]
    print(run(make_tags, clone, quiet=True).rstrip())
    first = tags_of(clone, names)
    again = run(make_tags, clone, quiet=True)
    if again.count("unchanged") != len(names) or tags_of(clone, names) != first:
        raise CheckFailed(f"a second run changed the tags:\n{again}")
    run(make_tags, shallow, quiet=True)
    if tags_of(shallow, names) != first:
        raise CheckFailed("a shallow clone built other commits than a full one")
    head = git(clone, "rev-parse", "HEAD")
    if git(clone, "rev-parse", f"{names[-1]}^{{tree}}") != git(
        clone, "rev-parse", f"{head}^{{tree}}"
    ):
        raise CheckFailed(f"{names[-1]}'s tree is not the commit's own")
    done(started, f"{len(names)} tags, the same SHAs in every build")
    check_step_table(clone, table, names)
    return clone


def check_step_table(clone: Path, table, names: list[str]) -> None:
    """The README's table of steps is the one this history gives."""
    from stages import readme

    built = [
        history.Built(n, name, git(clone, "rev-parse", name), "")
        for n, name in zip(sorted(table.STAGES), names, strict=True)
    ]
    wanted = readme.step_table(table, history.step_stats(history.Git(clone), built, table))
    if readme.step_table_of((clone / "README.md").read_text()) != wanted:
        raise CheckFailed(
            "README.md's table of steps is not this history's: run "
            "`python -m stages.history --stats --worktree --write-readme` and commit:\n" + wanted
        )
    print("    README.md's table of steps matches the history")


# --- 2. nothing later -----------------------------------------------------------------


def check_nothing_later(number: int, files: dict[str, bytes], table) -> None:
    """``files`` (path -> content) of stage ``number``'s tree hold nothing of a later stage."""
    later_terms = {
        term: n for n, stage in table.STAGES.items() if n > number for term in stage.terms
    }
    problems = []
    for path, data in sorted(files.items()):
        owner = table.stage_of_path(path)
        if owner > number:
            problems.append(f"{path}: a file of stage {owner}")
            continue
        text = history._text(data)
        if text is None or path in table.LITERAL:
            continue
        if markers.has_markers(text):
            found = markers.scan(text, path)
            late = sorted(s for s in found.stages if s > number)
            if late:
                problems.append(f"{path}: marker blocks of stage {late}")
        for term, n in later_terms.items():
            if term in text:
                line = text[: text.index(term)].count("\n") + 1
                problems.append(f"{path}:{line}: {term!r}, which stage {n} brings")
    if problems:
        shown = "\n  ".join(problems[:40])
        more = f"\n  ... and {len(problems) - 40} more" if len(problems) > 40 else ""
        raise CheckFailed(f"stage {number}'s tree holds what comes later:\n  {shown}{more}")


def tree_files(repo: Path, ref: str) -> dict[str, bytes]:
    source = history.CommitSource(history.Git(repo), git(repo, "rev-parse", ref))
    return {path: entry.read() for path, entry in source.entries.items()}


# --- 3. each tree runs ------------------------------------------------------------------


def stage_venv(workdir: Path) -> Path:
    """One virtualenv for the stage trees, filled stage by stage: at stage N it
    holds what the requirements of stages 0..N ask for (and that tree's libs)."""
    venv = workdir / "venv"
    if not (venv / "bin" / "python").exists():
        run([sys.executable, "-m", "venv", str(venv)], workdir, quiet=True)
        run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--upgrade", "pip"],
            workdir,
            quiet=True,
        )
    return venv


def check_tree_runs(number: int, tree: Path, venv: Path, table) -> None:
    py = str(venv / "bin" / "python")
    started = phase(f"Stage {number}: install its requirements")
    run([py, "-m", "pip", "install", "-q", "-r", "requirements/dev.txt"], tree, quiet=True)
    for stamp in (".runtime", ".installed"):  # the Makefile's two layers, in order
        (venv / stamp).touch()
    node_modules = ROOT / "tools" / "node" / "node_modules"
    if node_modules.is_dir() and (tree / "tools" / "node").is_dir():
        # A copy (3 MB), not a link: the tree's make may reinstall its own.
        shutil.copytree(node_modules, tree / "tools" / "node" / "node_modules", symlinks=True)
    done(started)
    env = {"VENV": str(venv), "PYTHONDONTWRITEBYTECODE": "1"}
    env_make = [f"VENV={venv}"]
    started = phase(f"Stage {number}: make lint")
    run(["make", "lint", *env_make], tree, env)
    done(started)
    started = phase(f"Stage {number}: make test")
    run(["make", "test", *env_make, "PYTEST_ARGS=-q -p no:cacheprovider"], tree, env)
    done(started)
    check_make_up(number, tree, venv, table)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_make_up(number: int, tree: Path, venv: Path, table, deadline_s: float = 120) -> None:
    """`make up` in ``tree`` serves stage ``number``: the post list answers on
    the monolith's port and, where the stage has a gateway, on the gateway's.
    Then the whole process group is stopped."""
    started = phase(f"Stage {number}: make up (embedded profile)")
    ports = {spec.port_env: free_port() for spec in table.APPS.values()}
    ports["GATEWAY_PORT"] = free_port()  # [stage 1]
    ports["MONGO_PORT"] = free_port()  # [stage 2]
    data = Path(tempfile.mkdtemp(prefix=f"stage-{number}-data-"))
    env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        "DATA_DIR": str(data),
        "STAGE": str(number),
    }
    for name in ("MODE", "DATABASE_URL"):
        env.pop(name, None)
    # >>> stage 3: the embedded profile's folder broker, both seams as the stage says
    for name in ("BROKER_URL", "POST_LOOKUP", "COMMENT_COUNTS"):
        env.pop(name, None)
    # <<< stage 3
    log = data / "make-up.log"
    urls = [f"http://127.0.0.1:{ports['MONOLITH_PORT']}/api/posts/"]
    if table.topology(number).has_gateway:  # [stage 1]
        urls.append(f"http://127.0.0.1:{ports['GATEWAY_PORT']}/api/posts/")  # [stage 1]
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "up", f"VENV={venv}"], cwd=tree, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        waiting = list(urls)
        deadline = time.monotonic() + deadline_s
        while waiting and time.monotonic() < deadline:
            if process.poll() is not None:
                raise CheckFailed(f"stage {number}: make up exited:\n{_tail(log)}")
            waiting = [url for url in waiting if not _answers(url)]
            time.sleep(0.5)
        if waiting:
            raise CheckFailed(f"stage {number}: no answer from {waiting}:\n{_tail(log)}")
        _write_and_read(urls[-1], number, log)
    finally:
        from blogtest.processes import stop  # the virtualenv's (run with `make stage-check`)

        stop(process, timeout_s=20)  # honcho's whole group: it stops its children
        shutil.rmtree(data, ignore_errors=True)
    done(started, f"the post list answered at {', '.join(urls)}; a post written, its comments read")


def _write_and_read(posts_url: str, number: int, log: Path) -> None:
    """A post written, and its comments read, where the stage serves them."""
    request = urllib.request.Request(  # noqa: S310 - loopback
        posts_url,
        data=json.dumps({"title": "stage check", "body": "make up"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            post = json.loads(response.read())
        with urllib.request.urlopen(f"{posts_url}{post['id']}/comments/", timeout=10) as response:  # noqa: S310
            if response.status != 200:
                raise OSError(f"HTTP {response.status}")
    except (OSError, ValueError, KeyError) as exc:
        raise CheckFailed(
            f"stage {number}: make up's stage did not serve a write: {exc}\n{_tail(log)}"
        ) from None


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return response.status == 200
    except OSError:
        return False


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def export_stage(source, table, number: int, target: Path) -> None:
    """Stage ``number``'s tree of the work tree into ``target``, its files
    dated like a checkout of a tag (older than the virtualenv, so that make
    does not take them for newer requirements)."""
    from stages import readme

    trees = history.stage_trees(source, table, renderers=readme.renderers(table))
    history.export(trees[number], source, target)
    date = int(git(ROOT, "show", "-s", "--format=%ct", source.commit))
    for path in target.rglob("*"):
        if not path.is_symlink():
            os.utime(path, (date, date))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--stages", help="comma-separated stages whose trees to run (default: all but the last)"
    )
    parser.add_argument(
        "--worktree", action="store_true", help="check the work tree's stage trees (no tags)"
    )
    parser.add_argument("--no-run", action="store_true", help="skip step 3")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    total = time.monotonic()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="stage-check-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        git_root = history.open_repository(ROOT)
        source = (
            history.WorktreeSource(git_root)
            if args.worktree
            else history.CommitSource(git_root, git(ROOT, "rev-parse", "HEAD"))
        )
        table = history.load_table(source)
        newest = max(table.STAGES)
        chosen = (
            [int(s) for s in args.stages.split(",")]
            if args.stages
            else [n for n in table.STAGES if n < newest]
        )
        if args.worktree:
            started = phase("Stage trees of the work tree: nothing later")
            from stages import readme

            trees = history.stage_trees(source, table, renderers=readme.renderers(table))
            for number, files in trees.items():
                contents = {
                    f.path: f.data if f.data is not None else source.entries[f.path].read()
                    for f in files
                }
                check_nothing_later(number, contents, table)
            done(started)
        else:
            clone = build_twice(workdir, table)
            started = phase("Each tag's tree: no file, marker or identifier of a later stage")
            for number, stage in table.STAGES.items():
                check_nothing_later(number, tree_files(clone, stage.tag), table)
            done(started)
        if not args.no_run:
            venv = stage_venv(workdir)
            for number in chosen:
                tree = workdir / f"stage-{number}"
                if tree.exists():
                    shutil.rmtree(tree)
                if args.worktree:
                    export_stage(source, table, number, tree)
                else:
                    tree.mkdir()
                    archive = subprocess.run(
                        ["git", "archive", table.STAGES[number].tag],
                        cwd=clone,
                        capture_output=True,
                        check=True,
                    ).stdout
                    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
                check_tree_runs(number, tree, venv, table)
            if newest not in chosen and not args.stages:
                check_make_up(newest, ROOT, Path(sys.executable).parents[1], table)
    except (CheckFailed, history.HistoryError, markers.MarkerError) as exc:
        print(f"\nstage-check: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nstage-check: passed ({time.monotonic() - total:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
