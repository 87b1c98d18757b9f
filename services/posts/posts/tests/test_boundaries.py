"""The service is self-contained: nothing in it imports the monolith or
another service (only libs/, installed as the blog-libs package)."""

import ast
from pathlib import Path

SERVICE_DIR = Path(__file__).resolve().parents[2]
FOREIGN = {"monolith", "services", "comments", "comments_service", "gateway"}


def imported_roots(source: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_nothing_imports_the_monolith_or_another_service():
    offenders = {
        str(path.relative_to(SERVICE_DIR)): sorted(imported_roots(path) & FOREIGN)
        for path in SERVICE_DIR.rglob("*.py")
        if imported_roots(path) & FOREIGN
    }
    assert offenders == {}
