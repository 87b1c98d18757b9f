"""Error responses of the contract, for the OpenAPI document."""

from drf_spectacular.utils import OpenApiResponse

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

WRITE_ERRORS = {400: FIELD_ERRORS, 413: TOO_LARGE, 415: UNSUPPORTED_MEDIA, 503: UNAVAILABLE}
LIST_ERRORS = {400: BAD_PAGE, 404: PAGE_PAST_THE_END, 503: UNAVAILABLE}
