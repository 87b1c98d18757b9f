"""The API's errors: DependencyUnavailable (a dependency cannot answer now:
a 503 naming it), and the one exception handler through which every error
leaves in the contract's shape, {"detail": "..."} or {"<field>": ["...", ...]}."""

import logging

from django.db import DatabaseError, InterfaceError, OperationalError
from rest_framework import status
from rest_framework.exceptions import ErrorDetail
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger("blog.errors")


class DependencyUnavailable(Exception):
    """A dependency (the database, a store, another service) cannot answer
    now: the API answers 503 naming it (api_exception_handler)."""

    def __init__(self, dependency: str):
        super().__init__(dependency)
        self.dependency = dependency


def _flatten(detail) -> str:
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    if isinstance(detail, dict):
        return " ".join(_flatten(item) for item in detail.values())
    return str(detail)


def _normalise(data):
    """DRF's non-field errors and bare lists become {"detail": "..."}."""
    if isinstance(data, list | ErrorDetail | str):
        return {"detail": _flatten(data)}
    if isinstance(data, dict) and "non_field_errors" in data:
        rest = {k: v for k, v in data.items() if k != "non_field_errors"}
        return {"detail": _flatten(data["non_field_errors"]), **rest}
    return data


def api_exception_handler(exc, context):
    response = exception_handler(exc, context)
    if response is not None:
        response.data = _normalise(response.data)
        return response
    if isinstance(exc, DependencyUnavailable):
        return _unavailable(exc.dependency)
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("database unavailable: %s", exc)
        return _unavailable("database")
    if isinstance(exc, DatabaseError):
        logger.exception("database error")
    else:
        logger.exception("unhandled error")
    return Response(
        {"detail": "Internal server error."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR
    )


def _unavailable(dependency: str) -> Response:
    return Response(
        {"detail": f"Service unavailable: {dependency} is not reachable."},
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "1"},
    )
