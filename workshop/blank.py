"""Removing a solution from a stage tree: what an exercise's workspace starts from.

Two kinds of blank, both checked when applied (a blank that no longer finds
its place in the stage tree is an error, so a change to main that moves the
code fails the proof in CI instead of handing out a broken exercise):

- ``Function``: the body of a function or method (its signature and
  docstring stay) becomes a ``raise NotImplementedError`` that names the
  exercise;
- ``Replace``: an exact piece of text, found exactly once, replaced (a
  planted difference, or a table entry that cannot raise).
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path


class BlankError(RuntimeError):
    """The stage tree does not hold what the exercise expects to remove."""


@dataclass(frozen=True)
class Function:
    """Blank the body of ``qualname`` (``name`` or ``Class.name``) in ``path``."""

    path: str
    qualname: str
    what: str  # what the participant writes there, for the error message
    # A shorter docstring for the blank (the stage's own may give the answer
    # away); None keeps it.
    doc: str | None = None

    def apply(self, root: Path, exercise: str) -> None:
        file = root / self.path
        source = _read(file, self.path)
        node = _find(ast.parse(source), self.qualname, self.path)
        body = node.body
        start = body[0]
        indent = " " * start.col_offset
        first_kept = start
        if _is_docstring(start):
            if len(body) == 1:
                raise BlankError(f"{self.path}: {self.qualname} has nothing but a docstring")
            first_kept = body[1]
            if self.doc is None:
                start = body[1]
        lines = source.splitlines(keepends=True)
        first, last = start.lineno - 1, node.end_lineno  # 0-based slice [first, last)
        message = f"Exercise {exercise}: {self.what} (./exercise hint {exercise})"
        chunks = textwrap.wrap(message, 72 - len(indent), break_on_hyphens=False)
        quoted = "".join(
            f"{indent}    {(c + (' ' if i < len(chunks) - 1 else ''))!r}\n"
            for i, c in enumerate(chunks)
        )
        new = f"{indent}raise NotImplementedError(\n{quoted}{indent})\n"
        if self.doc is not None and first_kept is not start:
            new = f'{indent}"""{self.doc}"""\n' + new
        file.write_text("".join([*lines[:first], new, *lines[last:]]))

    def __str__(self) -> str:
        return f"{self.path}: {self.qualname}()"


@dataclass(frozen=True)
class Replace:
    """Replace the one occurrence of ``old`` in ``path`` by ``new``."""

    path: str
    old: str
    new: str
    label: str = ""  # how `list`/`brief` name it ("" : not shown, a planted difference)

    def apply(self, root: Path, exercise: str) -> None:
        file = root / self.path
        source = _read(file, self.path)
        found = source.count(self.old)
        if found != 1:
            raise BlankError(
                f"{self.path}: the text to replace for exercise {exercise} occurs {found} "
                f"times (expected once):\n{self.old}"
            )
        file.write_text(source.replace(self.old, self.new.replace("{exercise}", exercise)))

    def __str__(self) -> str:
        return f"{self.path}: {self.label}" if self.label else ""  # unlabelled: not shown


def _read(file: Path, path: str) -> str:
    if not file.is_file():
        raise BlankError(f"{path}: no such file in this stage's tree")
    return file.read_text()


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _find(tree: ast.Module, qualname: str, path: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    scope: list[ast.stmt] = tree.body
    parts = qualname.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef) if last else (ast.ClassDef,)
        match = [n for n in scope if isinstance(n, kinds) and n.name == part]
        if not match:
            raise BlankError(f"{path}: no {'function' if last else 'class'} {part!r} ({qualname})")
        node = match[-1]
        if last:
            return node  # type: ignore[return-value]
        scope = node.body  # type: ignore[attr-defined]
    raise BlankError(f"{path}: empty qualname")
