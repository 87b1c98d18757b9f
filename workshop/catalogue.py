"""The exercises, as data: what each one blanks, what checks it, how it teaches.

One module per exercise in ``workshop/exercises/`` (``ex_<stage>_<n>.py``,
each defining ``EXERCISE``); ``EXERCISES`` holds them by id, in order.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

from workshop.blank import Function, Replace


@dataclass(frozen=True)
class Suite:
    """One pytest run in the workspace: its arguments (paths, -c, --ds, -k)."""

    args: tuple[str, ...]


@dataclass(frozen=True)
class Lesson:
    """What a failing test means: the behaviour that is missing, the hint that helps."""

    missing: str
    hint: int  # 1-based


@dataclass(frozen=True)
class Exercise:
    id: str  # "N.M": N is the stage the exercise's code belongs to
    stage: int
    title: str
    goal: str
    why: str
    patterns: tuple[str, ...]
    minutes: int
    blanks: tuple[Function | Replace, ...]
    check: tuple[Suite, ...]  # fail blank, pass solved
    # Test name (or a part of it) -> what its failure teaches.
    lessons: dict[str, Lesson]
    hints: tuple[str, ...]
    after: tuple[str, ...]  # what to run afterwards to see it working
    # Tests of the same component that do not depend on the solution: they
    # pass in the blank workspace too (CI proves it), so a participant can
    # trust them while working.
    fast: tuple[Suite, ...] = ()
    files_hint: str = ""  # where to look, for the brief (default: the blanks)

    @property
    def files(self) -> tuple[str, ...]:
        """The exercise's files: what reset and solution are about."""
        return tuple(dict.fromkeys(b.path for b in self.blanks))

    def lesson_for(self, test_id: str) -> Lesson | None:
        for key, lesson in self.lessons.items():
            if key in test_id:
                return lesson
        return None


def _load() -> dict[str, Exercise]:
    from workshop import exercises

    found = []
    for info in pkgutil.iter_modules(exercises.__path__):
        if info.name.startswith("ex_"):
            module = importlib.import_module(f"workshop.exercises.{info.name}")
            found.append(module.EXERCISE)
    found.sort(key=lambda e: tuple(int(p) for p in e.id.split(".")))
    by_id = {e.id: e for e in found}
    if len(by_id) != len(found):
        raise RuntimeError("two exercises share an id")
    for e in found:
        if not e.id.startswith(f"{e.stage}."):
            raise RuntimeError(f"exercise {e.id}: its id must start with its stage {e.stage}")
        for lesson in e.lessons.values():
            if not 1 <= lesson.hint <= len(e.hints):
                raise RuntimeError(f"exercise {e.id}: a lesson names hint {lesson.hint}")
    return by_id


EXERCISES: dict[str, Exercise] = _load()


class UnknownExercise(LookupError):
    pass


def get(exercise_id: str) -> Exercise:
    try:
        return EXERCISES[exercise_id]
    except KeyError:
        listing = "\n".join(f"  {e.id:<5} {e.title}" for e in EXERCISES.values())
        raise UnknownExercise(
            f"no exercise {exercise_id!r}. The exercises are:\n{listing}"
        ) from None
