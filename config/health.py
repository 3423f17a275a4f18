"""Liveness and readiness for load balancers and orchestrators.

``/healthz``: the process answers. ``/readyz``: the database, every Redis cache
and the broker answer; otherwise 503 naming what failed. Neither says anything
about users.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache(alias: str) -> None:
    caches[alias].get("readyz-probe")


def _broker() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return
    from config.celery_app import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    probes = {"database": _database, "broker": _broker}
    for alias in settings.CACHES:
        probes[f"cache:{alias}"] = lambda alias=alias: _cache(alias)  # type: ignore[misc]
    failed = []
    for name, probe in probes.items():
        try:
            probe()
        except Exception:
            failed.append(name)
    if failed:
        return JsonResponse({"status": "unavailable", "failed": failed}, status=503)
    return JsonResponse({"status": "ok", "checked": sorted(probes)})
