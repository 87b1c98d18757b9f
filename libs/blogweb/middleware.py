"""The middleware layer of the HTTP contract.

In the monolith these few classes apply to every request of every app at
once. After the split every service runs the same layer (this package is
installed into each), so the contract's headers, JSON errors and body limit
cannot drift apart between stages.
"""

from __future__ import annotations

import logging
import time
from http import HTTPStatus

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from .requestid import REQUEST_ID_HEADER, accept_or_generate, current_request_id

access_log = logging.getLogger("blog.access")

API_PREFIX = "/api/"
DEFAULT_BODY_MAX_BYTES = 1024 * 1024
# The texts DRF uses, so an error reads the same whoever produced it.
_DEFAULT_DETAIL = {404: "Not found.", 500: "Internal server error."}


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


class RequestIdMiddleware:
    """Gives every request an id (the client's, if sane), makes it available
    to logs and downstream calls, and stamps X-Request-ID and X-Served-By on
    every response, errors included."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.served_by = settings.SERVED_BY

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = accept_or_generate(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        response["X-Served-By"] = self.served_by
        return response


class AccessLogMiddleware:
    """One structured line per request, with its duration."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "bytes": len(response.content) if not response.streaming else None,
                    "remote_addr": request.META.get("REMOTE_ADDR"),
                },
            )
        return response


def json_error(status: int, detail: str | None = None) -> JsonResponse:
    detail = detail or _DEFAULT_DETAIL.get(status) or HTTPStatus(status).phrase
    return JsonResponse({"detail": detail}, status=status)


class ApiJsonErrorsMiddleware:
    """Under /api/ every error is JSON: whatever produced a non-JSON error
    response (a URL that resolves nowhere, Django's debug pages, a 500 from
    anywhere) is replaced by the contract's {"detail": ...} body."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and _is_api(request)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            replacement = json_error(response.status_code)
            for header in ("Allow", "Retry-After"):
                if header in response:
                    replacement[header] = response[header]
            return replacement
        return response


class RequestBodyLimitMiddleware:
    """413 with a JSON body for a request that announces more than
    REQUEST_BODY_MAX_BYTES, before anything reads it.

    A chunked body announces no length, and Django reads such a body as empty
    (a valid post would get "field required"); it gets an honest 411 instead.
    A proxy in front (nginx) buffers chunked bodies and sends a length."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.limit = getattr(settings, "REQUEST_BODY_MAX_BYTES", DEFAULT_BODY_MAX_BYTES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:
            return json_error(400, "Invalid Content-Length header.")
        if length > self.limit:
            return json_error(413, f"Request body exceeds {self.limit} bytes.")
        if not length and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            return json_error(411, "A Content-Length header is required.")
        return self.get_response(request)


class ApiTrailingSlashMiddleware:
    """Answers /api/posts like /api/posts/. Django's APPEND_SLASH would
    redirect instead, and a client following a 301 turns POST into GET and
    drops the body."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _is_api(request) and not request.path_info.endswith("/"):
            request.path_info += "/"
            request.path += "/"
        return self.get_response(request)


def json_404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return json_error(404, "Not found.")


def json_500(request: HttpRequest) -> JsonResponse:
    return json_error(500, "Internal server error.")


def json_400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return json_error(400, "Bad request.")
