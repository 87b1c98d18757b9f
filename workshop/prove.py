"""``./exercise prove`` (CI, `make exercises-check`): every exercise, both ways.

In a temporary clone of the checked-out commit, for each exercise:

1. ``start``: the blank workspace, as a participant gets it;
2. its check fails there, for the intended reason: the exercise's own error
   or a missing behaviour, never an import, syntax or collection error (an
   exercise that passes blank is a defect too);
3. the rest of the workspace is sound: ``ruff check`` and ``ruff format
   --check`` of the whole tree, and the exercise's ``fast`` suites (tests of
   the same component that do not depend on the solution) pass;
4. with the reference solution put back (the stage's own files), the same
   check passes.

Prints each exercise's time; exits 1 on the first defect's end, having
proved the rest.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workshop import catalogue, checking, workspace


class Defect(RuntimeError):
    pass


def _clone(root: Path, target: Path) -> Path:
    commit = workspace.git(root, "rev-parse", "HEAD")
    workspace.git(
        target.parent, "clone", "--quiet", "--shared", "--no-checkout", str(root), str(target)
    )
    workspace.git(target, "checkout", "--quiet", "--detach", commit)
    (target / ".venv").symlink_to(root / ".venv", target_is_directory=True)
    return target


def _ruff(root: Path, workspace_dir: Path) -> None:
    ruff = str(root / ".venv" / "bin" / "ruff")
    for args in (["check", "--quiet", "."], ["format", "--check", "--quiet", "."]):
        result = subprocess.run(
            [ruff, *args], cwd=workspace_dir, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise Defect(f"ruff {args[0]} fails in the blank workspace:\n{result.stdout[-2000:]}")


def prove_one(root: Path, clone: Path, exercise: catalogue.Exercise) -> str:
    venv = checking.python_for(root)
    entry = workspace.start(clone, exercise, restart=True)
    ws = workspace.workspace_dir(clone, exercise.id)
    blank = checking.run_check(ws, venv, exercise)
    failures = [f for o in blank for f in o.failures]
    if all(o.passed for o in blank):
        raise Defect("its check passes in the blank workspace")
    broken = [f for f in failures if f.kind in ("broken", "machine")]
    if broken or not failures:
        detail = "\n".join(f"  {f.test}: {f.message[:400]}" for f in broken)
        detail = detail or blank[0].output[-2000:]
        raise Defect(f"its check fails blank for the wrong reason:\n{detail}")
    _ruff(root, ws)
    for suite in exercise.fast:
        outcome = checking.run_suite(ws, venv, suite, exercise.id)
        if not outcome.passed:
            raise Defect(
                f"fast tests fail in the blank workspace ({' '.join(suite.args)}):\n"
                + "\n".join(checking.summary_lines(outcome.output))
            )
    workspace.git(ws, "checkout", entry["stage_commit"], "--", *exercise.files)
    solved = checking.run_check(ws, venv, exercise)
    if not all(o.passed for o in solved):
        lines = [line for o in solved for line in checking.summary_lines(o.output)]
        raise Defect("its check fails with the reference solution:\n" + "\n".join(lines))
    kinds = sorted({f.kind for f in failures})
    tests = sum(o.tests for o in solved)
    return f"blank: {len(failures)} failing ({', '.join(kinds)}); solved: {tests} pass"


def main(ids: list[str]) -> int:
    root = workspace.main_root()
    exercises = [catalogue.get(i) for i in ids] if ids else list(catalogue.EXERCISES.values())
    dirty = workspace.git(root, "status", "--porcelain", "--untracked-files=no")
    if dirty:
        print("prove: uncommitted changes are not proved (a clone of HEAD is)", flush=True)
    defects = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="exercise-prove-") as tmp:
        clone = _clone(root, Path(tmp) / "repo")
        for exercise in exercises:
            t0 = time.monotonic()
            print(f"==> exercise {exercise.id} ({exercise.title})", flush=True)
            try:
                verdict = prove_one(root, clone, exercise)
            except (Defect, workspace.WorkshopError) as exc:
                defects.append(exercise.id)
                verdict = f"DEFECT: {exc}"
            print(f"    {verdict} ({time.monotonic() - t0:.0f} s)", flush=True)
    print(f"\n{len(exercises) - len(defects)}/{len(exercises)} exercises proved both ways "
          f"in {time.monotonic() - started:.0f} s", flush=True)  # fmt: skip
    if defects:
        print(f"defects: {', '.join(defects)}", file=sys.stderr)
        return 1
    return 0
