"""Liveness and readiness probes: plain Django views, outside the API.

Readiness runs the checks named in ``settings.READINESS_CHECKS`` (name ->
dotted path of a callable that raises when its dependency cannot answer).
"""

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils.module_loading import import_string
from django.views.decorators.http import require_GET

logger = logging.getLogger("blog.health")

DEFAULT_CHECKS = {"database": "blogweb.health.check_database"}


@require_GET
def healthz(request):
    """Alive: the process answers. Depends on nothing."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request):
    """Ready: every dependency answers. 503 names the one that does not."""
    checks = {name: _run(name, path) for name, path in _configured_checks().items()}
    failed = sorted(name for name, result in checks.items() if result != "ok")
    if failed:
        return JsonResponse(
            {
                "status": "unavailable",
                "detail": f"Not ready: {', '.join(failed)} unavailable.",
                "checks": checks,
            },
            status=503,
        )
    return JsonResponse({"status": "ok", "checks": checks})


def _configured_checks() -> dict[str, str]:
    return getattr(settings, "READINESS_CHECKS", DEFAULT_CHECKS)


def _run(name: str, path: str) -> str:
    try:
        import_string(path)()
    except Exception as exc:  # any failure means "not ready", never a 500
        logger.warning("readiness: %s unavailable: %s", name, exc)
        return f"unavailable: {type(exc).__name__}"
    return "ok"


def check_database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        connection.close_if_unusable_or_obsolete()
        raise
