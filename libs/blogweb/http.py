"""Calls from one component to another: bounded, retried once, and turned
into a 503 for our own client when the other side cannot answer."""

from __future__ import annotations

import logging

import requests

from .exceptions import DependencyUnavailable
from .internal import is_internal, outgoing_headers
from .requestid import REQUEST_ID_HEADER, current_request_id

logger = logging.getLogger("blog.http")

_session = requests.Session()


def call_service(
    name: str,
    method: str,
    url: str,
    *,
    timeout: float = 1.0,
    retries: int = 1,
    json=None,
    params=None,
) -> requests.Response:
    """One HTTP call to service ``name``. Returns 2xx and 4xx responses; raises
    DependencyUnavailable(name) on a refused connection, a timeout or a 5xx,
    after ``retries`` more tries. The caller's request id goes along, and to
    an /internal/ route this component's credential (blogweb.internal)."""
    headers = outgoing_headers(url)
    request_id = current_request_id.get()
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    last_problem = ""
    for attempt in range(retries + 1):
        try:
            response = _session.request(
                method, url, json=json, params=params, headers=headers, timeout=timeout
            )
        except requests.RequestException as exc:
            last_problem = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code in (401, 403) and is_internal(url):
                logger.error(
                    "call to %s refused (%s): this component's INTERNAL_TOKEN is not one "
                    "that %s accepts (its INTERNAL_CALLERS)",
                    name,
                    response.status_code,
                    name,
                    extra={"url": url},
                )
            if response.status_code < 500:
                return response
            last_problem = f"HTTP {response.status_code}"
        logger.warning(
            "call to %s failed",
            name,
            extra={"url": url, "attempt": attempt + 1, "problem": last_problem},
        )
    raise DependencyUnavailable(name)
