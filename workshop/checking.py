"""Running an exercise's tests in its workspace, and reading the outcome.

The tests run with the main checkout's virtualenv, in the workspace, with
the workspace's ``libs/`` first on the path (the virtualenv's editable
install points at the main checkout's). pytest writes a JUnit XML report;
each failure is classified:

- ``exercise``: the code still raises the exercise's own error;
- ``behaviour``: a behaviour is missing or wrong (an assertion, pytest's
  ``Failed``, a wait that timed out, an exception the code under test let
  through);
- ``machine``: a server the tests need did not answer (PostgreSQL,
  RabbitMQ, MongoDB): the machine's problem, said so;
- ``broken``: the code does not load (an import, syntax or name error, a
  test that could not be collected): never what an exercise may fail with
  when blank.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from workshop.blank import Function
from workshop.catalogue import Exercise, Suite

BROKEN_TYPES = {
    "ImportError",
    "ModuleNotFoundError",
    "SyntaxError",
    "IndentationError",
    "TabError",
    "NameError",
    "collection failure",
}


@dataclass(frozen=True)
class Failure:
    test: str
    kind: str  # "exercise", "behaviour", "broken" or "machine"
    message: str


@dataclass(frozen=True)
class Outcome:
    returncode: int
    tests: int
    failures: tuple[Failure, ...]
    output: str

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and self.tests > 0 and not self.failures


# A server the tests need is not there: the machine's problem, not the code's.
MACHINE_SIGNS = (
    "OperationalError",
    "Connection refused",
    "could not connect",
    "ServerSelectionTimeoutError",
)


def classify(kind_type: str, message: str, exercise_id: str) -> str:
    if f"Exercise {exercise_id}" in message:
        return "exercise"
    if any(sign in kind_type or sign in message[:2000] for sign in MACHINE_SIGNS):
        return "machine"
    short = kind_type.rsplit(".", 1)[-1]
    if short in BROKEN_TYPES or kind_type in BROKEN_TYPES or "SyntaxError" in message[:200]:
        return "broken"
    return "behaviour"


def parse_junit(text: str, exercise_id: str) -> tuple[int, tuple[Failure, ...]]:
    """(tests run, failures) from pytest's JUnit XML."""
    root = ET.fromstring(text)  # noqa: S314 - pytest's own report, written just now
    tests, failures = 0, []
    for case in root.iter("testcase"):
        tests += 1
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        for tag in ("failure", "error"):
            for node in case.findall(tag):
                message = (node.get("message") or "") + "\n" + (node.text or "")
                kind = classify(node.get("type") or "", message, exercise_id)
                if not case.get("name"):
                    kind = "broken"  # a module that could not be collected
                failures.append(Failure(name, kind, (node.get("message") or "").strip()))
    return tests, tuple(failures)


def run_suite(workspace: Path, venv: Path, suite: Suite, exercise_id: str) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="exercise-") as tmp:
        report = Path(tmp) / "junit.xml"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(workspace / "libs"), str(workspace)]),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        result = subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pytest",
                *suite.args,
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={report}",
                "-o",
                "junit_family=xunit1",
            ],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        output = result.stdout + result.stderr
        if not report.exists():
            return Outcome(
                result.returncode, 0, (Failure("pytest", "broken", output[-2000:]),), output
            )
        tests, failures = parse_junit(report.read_text(), exercise_id)
    if result.returncode not in (0, 1) and not failures:
        failures = (Failure("pytest", "broken", output[-2000:]),)
    return Outcome(result.returncode, tests, failures, output)


def run_check(workspace: Path, venv: Path, exercise: Exercise) -> list[Outcome]:
    return [run_suite(workspace, venv, suite, exercise.id) for suite in exercise.check]


def teaching(exercise: Exercise, outcomes: list[Outcome]) -> list[str]:
    """What the failures say, in the participant's terms."""
    lines: list[str] = []
    failures = [f for o in outcomes for f in o.failures]
    if any(f.kind == "exercise" for f in failures):
        # Only a Function blank raises; a Replace (a shortened docstring, a
        # planted difference) is no place where something is still to write.
        where = ", ".join(str(b) for b in exercise.blanks if isinstance(b, Function))
        lines.append(
            f"The code still raises exercise {exercise.id}'s error: nothing is written yet "
            f"in {where}. Start with hint 1 (./exercise hint)."
        )
    seen: set[str] = set()
    # The gentlest hint first: a participant reads from the top.
    failures.sort(key=lambda f: lesson.hint if (lesson := exercise.lesson_for(f.test)) else 99)
    for failure in failures:
        lesson = exercise.lesson_for(failure.test)
        if failure.kind == "exercise":
            continue
        if failure.kind == "machine":
            text = (
                f"{failure.test}: a server the tests need did not answer "
                f"({_first_line(failure.message, 160)}). Is PostgreSQL (and, from stage 3, "
                "RabbitMQ) running? This is not your code."
            )
            if text not in seen:
                seen.add(text)
                lines.append(text)
            continue
        if failure.kind == "broken":
            lines.append(
                f"{failure.test}: does not run ({_first_line(failure.message, 200)}). "
                "Look for a syntax error, a missing import or a name you changed."
            )
            continue
        if lesson is None:  # a test without a lesson: its own message teaches
            text = f"{failure.test}: {_first_line(failure.message, 300)}"
        else:
            text = (
                f"Missing: {lesson.missing}. Hint {lesson.hint} helps "
                f"(./exercise hint -n {lesson.hint})."
            )
        if text not in seen:
            seen.add(text)
            lines.append(text)
    return lines


def _first_line(message: str, limit: int) -> str:
    return message.strip().splitlines()[0][:limit] if message.strip() else "see the output above"


def summary_lines(output: str) -> list[str]:
    """pytest's own verdict: the FAILED/ERROR lines and the count."""
    lines = output.rstrip().splitlines()
    picked = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    return picked + lines[-1:]


def python_for(root: Path) -> Path:
    """The virtualenv the tests run in: the main checkout's."""
    venv = root / ".venv"
    if (venv / "bin" / "python").exists():
        return venv
    raise FileNotFoundError(
        f"no virtualenv at {venv}: run `make venv` in the main checkout first "
        f"(this is {sys.executable})"
    )
