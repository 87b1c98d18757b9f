"""One OpenAPI document for the whole public API, as every stage serves it.

At stage 4 the gateway sends /api/schema/ (and the Swagger UI) to the posts
service, but the comment routes are the comments service's. This
drf-spectacular postprocessing hook adds the comments service's paths and
components to the posts service's own document, asking the comments service
once per request (bounded, like every call between services). When comments
cannot answer, the document still lists the post routes and says so in its
description: documentation never turns into a 503.
"""

from __future__ import annotations

import logging

from django.conf import settings

from blogweb.exceptions import DependencyUnavailable
from blogweb.http import call_service

logger = logging.getLogger("posts.openapi")


def add_comment_routes(result, generator, request, public):
    try:
        response = call_service(
            "comments",
            "GET",
            f"{settings.COMMENTS_URL}/api/schema/",
            params={"format": "json"},
            timeout=settings.COMMENTS_TIMEOUT,
            retries=0,
        )
        other = response.json() if response.status_code == 200 else None
    except (DependencyUnavailable, ValueError):
        other = None
    if not isinstance(other, dict) or not isinstance(other.get("paths"), dict):
        logger.warning("openapi: comment routes left out, the comments service did not answer")
        result["info"]["description"] += " (Comment routes missing: comments service unavailable.)"
        return result
    borrowed = {
        path: item
        for path, item in other["paths"].items()
        if isinstance(item, dict)
        and all(isinstance(op, dict) and "operationId" in op for op in item.values())
    }
    result["paths"] = dict(sorted({**borrowed, **result["paths"]}.items()))
    schemas = other.get("components", {}).get("schemas", {})
    result.setdefault("components", {}).setdefault("schemas", {}).update(
        {
            name: schema
            for name, schema in schemas.items()
            if name not in result["components"]["schemas"]
        }
    )
    tags = {tag["name"]: tag for tag in [*other.get("tags", []), *result.get("tags", [])]}
    if tags:
        result["tags"] = list(tags.values())
    return result
