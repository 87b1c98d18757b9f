"""docs/configuration.md lists every environment variable the code reads, and
nothing else.

The code is scanned, not imported, so that this runs in any stage's tree:

- Python (every ``.py`` outside ``tests`` folders, ``test_*.py`` and
  ``conftest.py``), with ``ast``: ``os.environ.get/pop/setdefault("X")``,
  ``os.environ["X"]``, ``"X" in os.environ``, ``os.getenv("X")``, the settings
  helpers of ``blogweb.settings`` (``env_bool("X", ...)``, ``env_list``,
  ``env_seconds("X", ..., old="Y")``: Y is a deprecated name, still read),
  ``production_settings(required=("X", ...))``, the tables whose values name
  variables (``App(..., port_env)``, ``*_ENV`` constants). A read whose name
  is not a literal is allowed only where ``DYNAMIC`` says where the names are
  found instead.
- The Makefile (overridable ``X ?=``, ``$(X)`` of a variable it never sets, and
  ``$${X}`` in its recipes) and ``.ci/run`` (``${X}`` it never sets).
- Docker: compose's ``${X}`` interpolations, the keys the ``docker/*.env``
  files give compose, and the Dockerfiles' build arguments (``ARG X``).

The doc holds one section (``## ...``) per component, each with a table whose
rows start with a variable's name. A read must be listed in a section whose
component it belongs to (``SECTIONS``: the paths each section covers); a
listed variable must be read there; a row's stage column is the stage its
markers give it. The doc and the code are cut per stage the same way, so
this holds in every stage's tree.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"

# The paths (prefixes) whose reads each section of the doc lists.
SECTIONS: dict[str, tuple[str, ...]] = {
    "Every Django component": (
        "libs/blogweb/",
        "libs/blogbus/",  # [stage 3]
        "manage.py",
        "monolith/config/",
        "services/comments/manage.py",  # [stage 2]
        "services/comments/comments_service/",  # [stage 2]
        "services/posts/manage.py",  # [stage 4]
        "services/posts/posts_service/",  # [stage 4]
    ),
    "The monolith": ("monolith/",),
    "The gateway": ("gateway/",),  # [stage 1]
    "The comments service": ("services/comments/",),  # [stage 2]
    "The posts service": ("services/posts/",),  # [stage 4]
    "Scripts and the stage tooling": ("scripts/", "stages/"),
    "The Makefile and CI": ("Makefile", ".ci/"),
    "Docker": ("docker/",),
    "Benchmarks": ("bench/",),
    "Test plumbing": ("libs/blogtest/", "libs/blogweb/settings.py"),
}
# Reads whose name is not a literal where it is read, by (file, function): the
# names are the literals the scan finds elsewhere (the helpers' and
# production_settings' callers; App.port_env in stages/table.py).
DYNAMIC = {
    ("libs/blogweb/settings.py", "env_bool"),
    ("libs/blogweb/settings.py", "env_list"),
    ("libs/blogweb/settings.py", "env_seconds"),
    ("libs/blogweb/settings.py", "production_settings"),
    ("scripts/up.py", "port"),
    ("scripts/seed.py", "main"),
}
SKIP_DIRS = {
    ".git",
    ".venv",
    "node_modules",
    ".data",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "staticfiles",
    "tests",
    "workspaces",  # [stage 4]
}
NAME = re.compile(r"[A-Z][A-Z0-9_]*")
HELPERS = {"env_bool", "env_list", "env_seconds"}
MAKE_BUILTINS = {"CURDIR", "MAKE", "MAKECMDGOALS", "MAKEFILE_LIST", "MAKEFLAGS", "SHELL"}


@dataclass(frozen=True)
class Read:
    path: str  # relative to the repository's root
    name: str
    deprecated: bool = False  # an old name, still read for one release


# --- the code -------------------------------------------------------------------------


def source_files(suffix: str = ".py") -> list[str]:
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            if name.endswith(suffix) and not name.startswith("test_") and name != "conftest.py":
                found.append((Path(folder) / name).relative_to(ROOT).as_posix())
    return sorted(found)


def _is_os(node: ast.AST, attr: str) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == attr
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _literal(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, path: str):
        self.path = path
        self.function = ""
        self.reads: list[Read] = []
        self.dynamic: list[tuple[str, int, str]] = []  # (path, line, function)

    def _read(self, node: ast.AST | None, *, deprecated: bool = False) -> None:
        name = _literal(node)
        if name is None:
            self.dynamic.append((self.path, getattr(node, "lineno", 0), self.function))
        elif NAME.fullmatch(name):
            self.reads.append(Read(self.path, name, deprecated))

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        outer, self.function = self.function, node.name
        self.generic_visit(node)
        self.function = outer

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_Call(self, node: ast.Call) -> None:
        func, callee = node.func, _callee(node)
        first = node.args[0] if node.args else None
        if isinstance(func, ast.Attribute) and _is_os(func.value, "environ"):
            if func.attr in ("get", "pop", "setdefault"):
                self._read(first)
        elif _is_os(func, "getenv") or callee in HELPERS:
            self._read(first)
            for keyword in node.keywords:
                if callee == "env_seconds" and keyword.arg == "old":
                    self._read(keyword.value, deprecated=True)
        elif callee == "production_settings":
            for keyword in node.keywords:
                if keyword.arg == "required" and isinstance(keyword.value, ast.Tuple):
                    for item in keyword.value.elts:
                        self._read(item)
        elif callee == "App":  # stages/table.py: the port each app listens on
            port_env = node.args[5] if len(node.args) > 5 else None
            for keyword in node.keywords:
                if keyword.arg == "port_env":
                    port_env = keyword.value
            if port_env is not None:
                self._read(port_env)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if _is_os(node.value, "environ") and isinstance(node.ctx, ast.Load):
            self._read(node.slice)
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn) and _is_os(right, "environ"):
                self._read(node.left)
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        # Tables of variables: SOME_ENV = {"key": ("VARIABLE", default), ...}.
        targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        if any(t.endswith("_ENV") for t in targets):
            for item in ast.walk(node.value):
                if isinstance(item, ast.Tuple) and item.elts and _literal(item.elts[0]):
                    self._read(item.elts[0])
        self.generic_visit(node)


def python_reads() -> tuple[list[Read], list[str]]:
    """The reads, and where a name is computed outside DYNAMIC's places."""
    reads, dynamic = [], []
    for path in source_files():
        scanner = _Scanner(path)
        scanner.visit(ast.parse((ROOT / path).read_text(encoding="utf-8"), path))
        reads += scanner.reads
        dynamic += [
            f"{path}:{line} in {function or 'the module'}"
            for path, line, function in scanner.dynamic
            if (path, function) not in DYNAMIC
        ]
    return reads, dynamic


def makefile_reads() -> list[Read]:
    """What the Makefile takes from the environment (or the command line):
    the variables it lets override (``?=``), the ones it uses and never sets,
    and the shell's ``$${X}`` in its recipes; ``.ci/run``'s ``${X}``."""
    reads = []
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    shell = set(re.findall(r"\$\$\{([A-Z][A-Z0-9_]*)", text))
    make_text = text.replace("$$", "")
    assigned = re.findall(r"^(?:export\s+)?([A-Z][A-Z0-9_]*)\s*([:+?]?)=", make_text, re.M)
    overridable = {name for name, op in assigned if op == "?"}
    defined = {name for name, _ in assigned} | MAKE_BUILTINS
    used = set(re.findall(r"\$[({]([A-Z][A-Z0-9_]*)[)}]", make_text))
    for name in sorted(overridable | (used - defined) | shell):
        reads.append(Read("Makefile", name))
    ci = ROOT / ".ci" / "run"
    if ci.is_file():
        text = ci.read_text(encoding="utf-8")
        assigned = set(re.findall(r"^\s*(?:export\s+)?([A-Z][A-Z0-9_]*)=", text, re.M))
        for name in sorted(set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text)) - assigned):
            reads.append(Read(".ci/run", name))
    return reads


def docker_reads() -> list[Read]:
    reads = []
    compose = (ROOT / "docker" / "compose.yaml").read_text(encoding="utf-8")
    for name in sorted(set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", compose))):
        reads.append(Read("docker/compose.yaml", name))
    for env_file in sorted((ROOT / "docker").glob("*.env")):
        for line in env_file.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                path = env_file.relative_to(ROOT).as_posix()
                reads.append(Read(path, line.partition("=")[0].strip()))
    for dockerfile in sorted((ROOT / "docker").glob("*.Dockerfile")):
        text = dockerfile.read_text(encoding="utf-8")
        for name in re.findall(r"^ARG\s+([A-Za-z_][A-Za-z0-9_]*)", text, re.M):
            reads.append(Read(dockerfile.relative_to(ROOT).as_posix(), name))
    return reads


@cache
def code_reads() -> tuple[Read, ...]:
    reads, _dynamic = python_reads()
    return tuple(reads + makefile_reads() + docker_reads())


# --- the doc --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    section: str
    name: str
    default: str
    unit: str
    stage: int
    marker_stage: int  # what the doc's stage markers say
    what: str
    line: int


MARKER_OPEN = re.compile(r"<!-- >>> stage (\d+)")
MARKER_CLOSE = re.compile(r"<!-- <<< stage (\d+) -->")
MARKER_LINE = re.compile(r"<!-- \[stage (\d+)\] -->\s*$")
ROW = re.compile(r"^\|\s*`([A-Za-z_][A-Za-z0-9_]*)`\s*\|")


@cache
def doc_rows() -> tuple[Row, ...]:
    rows, blocks, section = [], [0], ""
    for number, line in enumerate(DOC.read_text(encoding="utf-8").splitlines(), 1):
        if opened := MARKER_OPEN.search(line):
            blocks.append(int(opened.group(1)))
            continue
        if MARKER_CLOSE.search(line):
            blocks.pop()
            continue
        if line.startswith("## "):
            section = line[3:].strip()
            continue
        found = ROW.match(line)
        if not found:
            continue
        one_line = MARKER_LINE.search(line)
        body = MARKER_LINE.sub("", line).strip()
        cells = [cell.strip() for cell in body.strip("|").split("|")]
        assert len(cells) == 5, f"docs/configuration.md:{number}: five columns, got {cells}"
        _name, default, unit, stage, what = cells
        assert stage.isdigit(), f"docs/configuration.md:{number}: the stage is a number"
        marked = max(blocks[-1], int(one_line.group(1)) if one_line else 0)
        rows.append(Row(section, found.group(1), default, unit, int(stage), marked, what, number))
    return tuple(rows)


def covers(section: str, path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in SECTIONS[section])


# --- the checks -----------------------------------------------------------------------


def test_every_variable_the_code_reads_is_in_the_doc():
    listed = {(row.section, row.name) for row in doc_rows()}
    missing = sorted(
        f"{read.name} (read in {read.path})"
        for read in code_reads()
        if not any((s, read.name) in listed for s in SECTIONS if covers(s, read.path))
    )
    assert not missing, (
        "docs/configuration.md does not list these variables in the section of the "
        "component that reads them:\n  " + "\n  ".join(missing)
    )


def test_the_doc_lists_nothing_the_code_does_not_read():
    read = {(s, r.name) for r in code_reads() for s in SECTIONS if covers(s, r.path)}
    stale = [
        f"docs/configuration.md:{row.line}: {row.name} ({row.section})"
        for row in doc_rows()
        if (row.section, row.name) not in read
    ]
    assert not stale, "listed, but no code of that component reads them:\n  " + "\n  ".join(stale)


def test_every_read_has_a_name_the_scan_can_see():
    _reads, dynamic = python_reads()
    assert not dynamic, (
        "environment reads with a computed name: use a literal, or say in DYNAMIC where "
        "the names come from:\n  " + "\n  ".join(dynamic)
    )


def test_the_doc_is_one_table_per_component_with_every_column_filled():
    sections = {row.section for row in doc_rows()}
    assert sections <= set(SECTIONS), sections - set(SECTIONS)
    seen = set()
    for row in doc_rows():
        where = f"docs/configuration.md:{row.line} ({row.name})"
        assert (row.section, row.name) not in seen, f"{where}: listed twice in its section"
        seen.add((row.section, row.name))
        assert all((row.default, row.unit, row.what)), f"{where}: a column is empty"
        assert row.stage == row.marker_stage, (
            f"{where}: the stage column says {row.stage}, its markers {row.marker_stage}"
        )


def test_deprecated_names_say_so_and_name_their_successor():
    deprecated = {r.name for r in code_reads() if r.deprecated}
    for row in doc_rows():
        if row.name in deprecated:
            assert "deprecated" in row.what.lower(), f"{row.name}: say it is deprecated"
            assert f"{row.name}_S" in row.what, f"{row.name}: name the new variable"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('os.environ.get("A_B", "1")', {"A_B"}),
        ('os.environ["A"]', {"A"}),
        ('os.getenv("A")', {"A"}),
        ('"A" in os.environ', {"A"}),
        ('env_bool("A", True)', {"A"}),
        ('env_list("A", [])', {"A"}),
        ('env_seconds("A_S", 0.5, old="A")', {"A_S", "A"}),
        ('production_settings(required=("A", "B"))', {"A", "B"}),
        ('X_ENV = {"x": ("A", "default")}', {"A"}),
        ('os.environ["A"] = "set, not read"', set()),
    ],
)
def test_the_scan_sees_each_form_of_read(source, expected):
    scanner = _Scanner("example.py")
    scanner.visit(ast.parse(source))
    assert {read.name for read in scanner.reads} == expected
    assert not scanner.dynamic


def test_the_scan_finds_what_the_settings_read():
    """The checks above are only as good as the scan."""
    names = {read.name for read in code_reads()}
    assert {"DATABASE_URL", "DJANGO_SECRET_KEY", "DB_CONNECT_TIMEOUT_S", "STAGE"} <= names
    assert {"MONOLITH_PORT", "DJANGO_SETTINGS_MODULE", "PYTEST_ARGS", "COMPOSE_PROFILES"} <= names
    assert {"COMMENTS_TIMEOUT_S", "COMMENTS_TIMEOUT", "MONGO_URL"} <= names  # [stage 2]
    assert {"UI_DIR", "POSTS_PORT"} <= names  # [stage 4]
