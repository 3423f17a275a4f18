"""Liveness and readiness for load balancers and orchestrators.

``/healthz``: the process answers. ``/readyz``: the database, every Redis cache
and the broker answer; otherwise 503 naming what failed, and under
``misconfigured`` why a Redis URL cannot work at all (a database the server does
not have), which waiting will not fix. Neither says anything about users, nor
the URLs themselves (the log line of the failure names those, without passwords).

A ready answer also says how long the oldest email still to send has waited
(``oldest_pending_email_seconds``, null when none waits): a stalled outbox (no worker
running, or one that stopped consuming) shows there while every service answers. It is
a field, not a 503: the web processes serve sign-ins either way, and taking them out of
the load balancer would not send a single email.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from passwordless.redis_probe import masked, redis_refusal

logger = logging.getLogger("config.health")


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


def _redis_url_of(probe: str) -> str:
    """The Redis URL a probe used, if it is one (the first, for several locations)."""
    if probe == "broker":
        return str(settings.CELERY_BROKER_URL)
    if not probe.startswith("cache:"):
        return ""
    location = settings.CACHES[probe.removeprefix("cache:")].get("LOCATION", "")
    first = location.split(",")[0] if isinstance(location, str) else next(iter(location), "")
    return str(first) if str(first).startswith(("redis://", "rediss://", "unix://")) else ""


def _oldest_pending_email_seconds() -> float | None:
    from passwordless import clock
    from passwordless.models import LoginRequest

    waiting = (LoginRequest.Delivery.PENDING, LoginRequest.Delivery.DEFERRED)
    now = clock.now()
    oldest = (
        LoginRequest.objects.filter(delivery__in=waiting, expires_at__gt=now)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return None if oldest is None else round((now - oldest).total_seconds(), 1)


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    probes = {"database": _database, "broker": _broker}
    for alias in settings.CACHES:
        probes[f"cache:{alias}"] = lambda alias=alias: _cache(alias)  # type: ignore[misc]
    failed, misconfigured = [], {}
    for name, probe in probes.items():
        try:
            probe()
        except Exception as exc:
            failed.append(name)
            url = _redis_url_of(name)
            reason = redis_refusal(exc, url) if url else None
            if reason is not None:
                misconfigured[name] = reason
                logger.error("readyz: %s at %s cannot work: %s", name, masked(url), reason)
    if failed:
        body: dict[str, object] = {"status": "unavailable", "failed": failed}
        if misconfigured:
            body["misconfigured"] = misconfigured
        return JsonResponse(body, status=503)
    return JsonResponse(
        {
            "status": "ok",
            "checked": sorted(probes),
            "oldest_pending_email_seconds": _oldest_pending_email_seconds(),
        }
    )
