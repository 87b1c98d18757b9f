"""One OpenAPI document for the whole public API, as every stage serves it.

At stage 4 the gateway sends /api/schema/ (and the Swagger UI) to the posts
service, but the comment routes are the comments service's: this
drf-spectacular postprocessing hook adds them from ``comments_openapi.json``,
the comments service's own document, generated from its code and kept next to
this module. No call to the comments service: the document is the same
whether it is up or not, generating it needs no network (``manage.py
spectacular``, ``check --deploy``'s schema check, an image build), and a
request to /api/schema/ never waits on another component.

Regenerate the file after changing a comment route (tests/deploy/
test_posts_openapi.py fails until then)::

    cd services/comments && ../../.venv/bin/python manage.py spectacular \\
        --format openapi-json --file ../posts/posts/comments_openapi.json
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

COMMENTS_DOCUMENT = Path(__file__).resolve().with_name("comments_openapi.json")


@functools.cache
def comments_document() -> dict[str, Any]:
    """The comments service's OpenAPI document, read once per process."""
    return json.loads(COMMENTS_DOCUMENT.read_text(encoding="utf-8"))


def add_comment_routes(result, generator, request, public):
    return merge_routes(result, comments_document())


def merge_routes(result: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """``result`` with the operations, component schemas and tags of
    ``other`` added; on a clash, ``result``'s own win. A path item whose
    operations lack an operationId is left out (it would not validate)."""
    borrowed = {
        path: item
        for path, item in other.get("paths", {}).items()
        if isinstance(item, dict)
        and all(isinstance(op, dict) and "operationId" in op for op in item.values())
    }
    result["paths"] = dict(sorted({**borrowed, **result["paths"]}.items()))
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in other.get("components", {}).get("schemas", {}).items():
        schemas.setdefault(name, schema)
    tags = {tag["name"]: tag for tag in [*other.get("tags", []), *result.get("tags", [])]}
    if tags:
        result["tags"] = list(tags.values())
    return result
