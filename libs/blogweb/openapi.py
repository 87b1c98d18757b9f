"""The OpenAPI document: the contract's error responses (and, once the API
is served by several components, one document for all of them)."""

import logging  # [stage 4]

from drf_spectacular.utils import OpenApiResponse

from .exceptions import DependencyUnavailable  # [stage 4]
from .http import call_service  # [stage 4]
from .serializers import ErrorSerializer

logger = logging.getLogger("blog.openapi")  # [stage 4]

FIELD_ERRORS = OpenApiResponse(
    description='Per-field messages, e.g. {"title": ["This field may not be blank."]}, '
    'or {"detail": "..."} for a body that is not a JSON object.'
)
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="Unknown or malformed id.")
BAD_PAGE = OpenApiResponse(
    description='page or page_size not a positive integer, e.g. {"page": ["..."]}.'
)
PAGE_PAST_THE_END = OpenApiResponse(
    ErrorSerializer, description="Page past the end (for a post's comments: or an unknown post)."
)
TOO_LARGE = OpenApiResponse(ErrorSerializer, description="Request body over 1 MB.")
UNSUPPORTED_MEDIA = OpenApiResponse(ErrorSerializer, description="Not application/json.")
UNAVAILABLE = OpenApiResponse(ErrorSerializer, description="The database cannot be reached.")

WRITE_ERRORS = {400: FIELD_ERRORS, 413: TOO_LARGE, 415: UNSUPPORTED_MEDIA, 503: UNAVAILABLE}
LIST_ERRORS = {400: BAD_PAGE, 404: PAGE_PAST_THE_END, 503: UNAVAILABLE}


# >>> stage 4: the posts service's document borrows the comment routes
def add_remote_routes(result: dict, *, service: str, url: str, timeout: float) -> dict:
    """For a drf-spectacular postprocessing hook: adds the paths and
    components of another component's OpenAPI document (``url`` +
    /api/schema/) to ``result``, so that the API served by several components
    is one document, as in every stage. Bounded; when the other side cannot
    answer, the document keeps its own routes and says what is missing:
    documentation never becomes a 503."""
    try:
        response = call_service(
            service,
            "GET",
            f"{url}/api/schema/",
            params={"format": "json"},
            timeout=timeout,
            retries=0,
        )
        other = response.json() if response.status_code == 200 else None
    except (DependencyUnavailable, ValueError):
        other = None
    if not isinstance(other, dict) or not isinstance(other.get("paths"), dict):
        logger.warning("openapi: %s routes left out, %s did not answer", service, service)
        result["info"]["description"] += f" ({service} routes missing: {service} unavailable.)"
        return result
    borrowed = {
        path: item
        for path, item in other["paths"].items()
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
    # <<< stage 4
