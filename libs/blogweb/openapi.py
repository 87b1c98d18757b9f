"""The OpenAPI document: the contract's error responses (and, once the API
is served by several components, one document for all of them)."""

import logging  # [stage 4]

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from . import idempotency
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
# >>> stage 1: the gateway's answer when the component behind a route hangs
UPSTREAM_TIMEOUT = OpenApiResponse(
    ErrorSerializer,
    description="From the gateway: the component that serves the route did not answer in "
    'time, {"detail", "upstream"} (reads: 2 s, writes: 5 s; one it cannot reach is a 503 '
    "within 1 s). A write may still have happened: retry it with the same Idempotency-Key.",
)
# <<< stage 1

WRITE_ERRORS = {
    400: FIELD_ERRORS,
    413: TOO_LARGE,
    415: UNSUPPORTED_MEDIA,
    503: UNAVAILABLE,
    504: UPSTREAM_TIMEOUT,  # [stage 1]
}
LIST_ERRORS = {
    400: BAD_PAGE,
    404: PAGE_PAST_THE_END,
    503: UNAVAILABLE,
    504: UPSTREAM_TIMEOUT,  # [stage 1]
}

# The create routes take an Idempotency-Key (blogweb.idempotency).
IDEMPOTENCY_KEY = OpenApiParameter(
    idempotency.HEADER,
    str,
    location=OpenApiParameter.HEADER,
    required=False,
    description="Optional; makes the create safe to retry (after a timeout, a 503, a dropped "
    "connection). 1-255 printable ASCII characters, e.g. a new UUID per submission. The same "
    "key with the same body (key order and whitespace aside) answers the first response "
    f"again, marked `{idempotency.REPLAYED_HEADER}: true`, and creates nothing; with another "
    "body: 422. Scoped to the route (and the post, for comments), kept 24 hours. A request "
    "that failed created nothing and can be retried with its key.",
)
IDEMPOTENT_REPLAYED = OpenApiParameter(
    idempotency.REPLAYED_HEADER,
    str,
    location=OpenApiParameter.HEADER,
    response=[201],
    description="`true` when the response is the replay of an earlier request with the same "
    "Idempotency-Key (nothing was created this time).",
)
CREATE_PARAMETERS = [IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED]
FIELD_OR_KEY_ERRORS = OpenApiResponse(
    description='Per-field messages, e.g. {"title": ["This field may not be blank."]}, '
    'or {"detail": "..."} for a body that is not a JSON object or a malformed '
    "Idempotency-Key (empty, over 255 characters, not printable ASCII)."
)
KEY_REUSED = OpenApiResponse(
    ErrorSerializer,
    description="The Idempotency-Key was already used on this route with a different body: "
    "nothing was done.",
)
KEY_IN_FLIGHT = OpenApiResponse(
    ErrorSerializer,
    description="Rare: another request with the same Idempotency-Key is being processed; "
    "retry shortly with the same key.",
)
CREATE_ERRORS = {**WRITE_ERRORS, 400: FIELD_OR_KEY_ERRORS, 409: KEY_IN_FLIGHT, 422: KEY_REUSED}


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
