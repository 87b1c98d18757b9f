"""``./exercise``: the workshop's verbs.

    ./exercise list                 the exercises, and which pass
    ./exercise start N.M            a workspace (workspaces/N.M) with the solution removed
    ./exercise brief [N.M]          the exercise's brief again
    ./exercise hint [N.M]           the next hint (one at a time)
    ./exercise check [N.M]          its tests, and what their failures mean
    ./exercise solution [N.M]       the reference solution (a diff)
    ./exercise reset [N.M] [--yes]  back to the starting point
    ./exercise prove [N.M ...]      CI: every exercise fails blank and passes solved

Without N.M, a verb acts on the workspace it is run from.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

from workshop import checking, workspace
from workshop.catalogue import EXERCISES, Exercise, UnknownExercise, get
from workshop.workspace import State, WorkshopError


def _wrap(text: str, indent: str = "  ") -> str:
    return textwrap.fill(text, width=88, initial_indent=indent, subsequent_indent=indent)


def brief(exercise: Exercise, entry: dict | None) -> str:
    lines = [
        f"Exercise {exercise.id}: {exercise.title}  (stage {exercise.stage}, "
        f"about {exercise.minutes} min)",
        "",
        "Goal",
        _wrap(exercise.goal),
        "",
        "Why it matters",
        _wrap(exercise.why),
        "",
        "Patterns: " + ", ".join(exercise.patterns),
        "",
        "Where: " + (exercise.files_hint or "; ".join(str(b) for b in exercise.blanks if str(b))),
    ]
    if entry:
        lines += [
            f"Workspace: workspaces/{exercise.id} (branch {entry['branch']}, off "
            f"{entry['stage_tag']})",
        ]
    lines += [
        "",
        "Then: ./exercise check   (hints: ./exercise hint, one at a time; "
        f"{len(exercise.hints)} in all)",
        "",
        "To see it working afterwards (in the workspace, with PYTHONPATH=$PWD/libs so that",
        "your libs/ is used, not the main checkout's; ./exercise check does it for you):",
        *(f"  {command}" for command in exercise.after),
    ]
    return "\n".join(lines)


def _which(args: argparse.Namespace, root: Path, state: State) -> tuple[Exercise, dict]:
    """The exercise a verb acts on: the one named, or the workspace's it is run from."""
    exercise_id = getattr(args, "exercise", None) or workspace.exercise_at(Path.cwd(), root)
    if exercise_id is None:
        started = state.started()
        hint = (
            f"Exercises started: {', '.join(started)}; cd workspaces/<N.M> or name one "
            f"(./exercise {args.verb} {started[-1]})."
            if started
            else "Start one first: ./exercise list, then ./exercise start 1.1."
        )
        raise WorkshopError(f"not in an exercise workspace. {hint}")
    exercise = get(exercise_id)
    entry = state.of(exercise.id)
    if entry is None or not workspace.workspace_dir(root, exercise.id).exists():
        raise WorkshopError(
            f"exercise {exercise.id} is not started: ./exercise start {exercise.id}"
        )
    return exercise, entry


def cmd_list(args, root: Path, state: State) -> int:
    print(f"{'id':<5} {'stage':<5} {'min':>4}  {'status':<22} title")
    for exercise in EXERCISES.values():
        entry = state.of(exercise.id)
        if entry is None or not workspace.workspace_dir(root, exercise.id).exists():
            status = "-"
        elif entry.get("last_check") is None:
            status = "started"
        else:
            last = entry["last_check"]
            status = ("passes" if last["passed"] else "fails") + f" ({last['at'][11:16]})"
        print(
            f"{exercise.id:<5} {exercise.stage:<5} {exercise.minutes:>4}  {status:<22} "
            f"{exercise.title}"
        )
    print("\n./exercise start N.M to begin one; status is that of the last ./exercise check.")
    return 0


def cmd_start(args, root: Path, state: State) -> int:
    exercise = get(args.exercise)
    entry = workspace.start(root, exercise, restart=args.restart)
    if workspace.git(root, "status", "--porcelain", "--untracked-files=no"):
        print(
            "Note: your checkout has uncommitted changes; the stage history (and so this "
            "workspace) is built from its last commit only. Nothing of yours was touched.\n"
        )
    print(brief(exercise, entry))
    if entry.get("kept_branch"):
        print(f"\nYour earlier commits are on the branch {entry['kept_branch']}.")
    print(f"\nYour workspace: cd workspaces/{exercise.id}  (run ../../exercise there)")
    return 0


def cmd_brief(args, root: Path, state: State) -> int:
    exercise, entry = _which(args, root, state)
    print(brief(exercise, entry))
    return 0


def cmd_hint(args, root: Path, state: State) -> int:
    exercise, entry = _which(args, root, state)
    shown = entry.get("hints_shown", 0)
    number = args.number or min(shown + 1, len(exercise.hints))
    if not 1 <= number <= len(exercise.hints):
        raise WorkshopError(f"exercise {exercise.id} has hints 1 to {len(exercise.hints)}")
    print(f"Hint {number}/{len(exercise.hints)} for exercise {exercise.id}:")
    print(_wrap(exercise.hints[number - 1]))
    entry["hints_shown"] = max(shown, number)
    state.save()
    if number < len(exercise.hints):
        print("\n(./exercise hint again for the next one)")
    return 0


def _guard_stale(root: Path, entry: dict, exercise: Exercise) -> None:
    why = workspace.stale(root, entry)
    if why:
        raise WorkshopError(
            f"{why}\nYour work is safe on the branch {entry['branch']}. Save it "
            f"(git -C workspaces/{exercise.id} diff {entry['start'][:12]} "
            f"> my-{exercise.id}.patch), "
            f"then: ./exercise start {exercise.id} --restart, and re-apply what still fits."
        )


def cmd_check(args, root: Path, state: State) -> int:
    exercise, entry = _which(args, root, state)
    _guard_stale(root, entry, exercise)
    venv = checking.python_for(root)
    print(f"Checking exercise {exercise.id} ({exercise.title}) ...", flush=True)
    outcomes = checking.run_check(workspace.workspace_dir(root, exercise.id), venv, exercise)
    passed = all(o.passed for o in outcomes)
    for outcome in outcomes:
        lines = outcome.output.rstrip().splitlines() if args.verbose else []
        print(textwrap.indent("\n".join(lines or checking.summary_lines(outcome.output)), "  | "))
    entry["last_check"] = {"passed": passed, "at": time.strftime("%Y-%m-%d %H:%M:%S")}
    state.save()
    if passed:
        tests = sum(o.tests for o in outcomes)
        print(f"\nExercise {exercise.id} passes ({tests} tests). Compare with the reference: "
              "./exercise solution")  # fmt: skip
        if exercise.after:
            print("See it working:\n" + "\n".join(f"  {c}" for c in exercise.after))
        return 0
    print(f"\nExercise {exercise.id} does not pass yet:")
    for line in checking.teaching(exercise, outcomes):
        print(_wrap(line, "- ").replace("\n- ", "\n  "))
    return 1


def cmd_solution(args, root: Path, state: State) -> int:
    exercise, entry = _which(args, root, state)
    print(workspace.solution_diff(root, exercise, entry, color=sys.stdout.isatty()))
    return 0


def _ask(files: list[str]) -> bool:
    print("Reset discards these changes outside the exercise's own files:")
    for path in files:
        print(f"    {path}")
    if not sys.stdin.isatty():
        print("Not asked on a terminal: nothing discarded (./exercise reset --yes to discard).")
        return False
    return input("Discard them? [y/N] ").strip().lower() in ("y", "yes")


def cmd_reset(args, root: Path, state: State) -> int:
    exercise, entry = _which(args, root, state)
    confirm = (lambda files: True) if args.yes else _ask
    patch = workspace.reset(root, exercise, entry, confirm=confirm)
    entry["last_check"] = None
    state.save()
    print(f"Exercise {exercise.id} is back at its starting point.")
    if patch:
        print(f"Your work on its files was saved first: git apply {patch}")
    return 0


def cmd_prove(args, root: Path, state: State) -> int:
    from workshop import prove

    return prove.main(args.exercises)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="./exercise", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n")[1],
    )  # fmt: skip
    verbs = p.add_subparsers(dest="verb", required=True, metavar="verb")
    verbs.add_parser("list", help="the exercises, and which pass")
    start = verbs.add_parser("start", help="a workspace with the solution removed")
    start.add_argument("exercise")
    start.add_argument("--restart", action="store_true", help="make it again (keeps your commits)")
    for name, text in (
        ("brief", "the brief again"),
        ("solution", "the reference solution"),
    ):
        verbs.add_parser(name, help=text).add_argument("exercise", nargs="?")
    hint = verbs.add_parser("hint", help="the next hint")
    hint.add_argument("exercise", nargs="?")
    hint.add_argument("--number", "-n", type=int, help="this hint (1-based)")
    check = verbs.add_parser("check", help="run its tests")
    check.add_argument("exercise", nargs="?")
    check.add_argument("--verbose", "-v", action="store_true", help="pytest's whole output")
    reset = verbs.add_parser("reset", help="back to the starting point")
    reset.add_argument("exercise", nargs="?")
    reset.add_argument("--yes", action="store_true", help="discard work outside its files unasked")
    prove = verbs.add_parser("prove", help="CI: every exercise fails blank and passes solved")
    prove.add_argument("exercises", nargs="*")
    return p


COMMANDS = {
    "list": cmd_list,
    "start": cmd_start,
    "brief": cmd_brief,
    "hint": cmd_hint,
    "check": cmd_check,
    "solution": cmd_solution,
    "reset": cmd_reset,
    "prove": cmd_prove,
}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        root = workspace.main_root()
        state = State.load(root)
        return COMMANDS[args.verb](args, root, state)
    except (WorkshopError, UnknownExercise, FileNotFoundError) as exc:
        message = exc.args[0] if isinstance(exc, UnknownExercise) else str(exc)
        print(f"exercise: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # ./exercise solution | head
        return 0
