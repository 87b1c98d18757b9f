"""Liveness and readiness probes: plain Django views, outside the API."""

import logging

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger("monolith.health")


@require_GET
def healthz(request):
    """Alive: the process answers. Depends on nothing."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request):
    """Ready: every dependency answers. 503 names the one that does not."""
    checks = {"database": _check_database()}
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


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not ready", never a 500
        logger.warning("readiness: database unavailable: %s", exc)
        connection.close_if_unusable_or_obsolete()
        return f"unavailable: {type(exc).__name__}"
    return "ok"
