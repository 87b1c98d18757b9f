"""The OpenAPI document: the contract's error responses (and, once the API
is served by several components, one document for all of them)."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from . import idempotency
from .serializers import ErrorSerializer

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
