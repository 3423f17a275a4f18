"""The login requests as an outbox: sweeping what was not sent, and purging what is old."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, Q, QuerySet

from .. import clock
from ..conf import app_settings
from ..models import AuthEvent, FailureBudget, LoginRequest, PasskeyChallenge
from .delivery import lost_retries, stale_claims
from .mail import send_login_task

__all__ = ["DeliveryReport", "delivery_report", "purge", "sweep_outbox"]

Delivery = LoginRequest.Delivery


def sweep_outbox() -> dict[str, int]:
    """Queue again the pending requests the broker never delivered; expire the late ones.

    Sending is idempotent (a send is claimed in the transaction that commits its secret,
    and a claimed or sent row is not sent again), so queueing twice costs one wasted task,
    never two emails; only a claim left unsettled past ``delivery.CLAIM_TIMEOUT`` is sent
    again, at least once rather than never.
    """
    now = clock.now()
    expired = LoginRequest.objects.filter(
        delivery__in=(Delivery.PENDING, Delivery.DEFERRED), expires_at__lte=now
    ).update(delivery=Delivery.EXPIRED)
    stale = now - app_settings.SWEEP_AFTER
    queued = 0
    for pk, expires_at in LoginRequest.objects.filter(
        delivery=Delivery.PENDING, expires_at__gt=now, created_at__lte=stale
    ).values_list("pk", "expires_at")[:500]:
        queued += send_login_task(pk, expires_at)
    # A send claimed by a worker that died (SIGKILL, out of memory) before it finished (with
    # a Redis broker its task would come back only after the visibility timeout), and a
    # retry the broker lost.
    for lost in (stale_claims(now), lost_retries(now)):
        for pk, expires_at in lost.values_list("pk", "expires_at")[:500]:
            queued += send_login_task(pk, expires_at)
    return {"expired": expired, "queued": queued}


def purge(batch: int = 1000) -> dict[str, int]:
    """Delete old requests (their secrets go with them), old audit rows and spent failure
    budgets, batch by batch, so that no statement holds locks for long on a big table."""
    now = clock.now()
    counts = {}
    queries: tuple[tuple[str, QuerySet[Any]], ...] = (
        (
            "requests",
            LoginRequest.objects.filter(expires_at__lt=now - app_settings.REQUEST_RETENTION),
        ),
        ("events", AuthEvent.objects.filter(created_at__lt=now - app_settings.EVENT_RETENTION)),
        ("budgets", _spent_budgets(now)),
        # Spent or not, a passkey challenge is worth nothing once expired (5 minutes).
        ("passkey_challenges", PasskeyChallenge.objects.filter(expires_at__lt=now)),
    )
    for name, queryset in queries:
        deleted = 0
        while True:
            ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch])
            if not ids:
                break
            queryset.model._default_manager.filter(pk__in=ids).delete()
            deleted += len(ids)
        counts[name] = deleted
    return counts


def _spent_budgets(now: datetime) -> QuerySet[FailureBudget]:
    """Failure budgets whose deletion gives a guesser nothing.

    A kept budget past its limit lets an address be guessed once per longest wait;
    a deleted one gives ``FAILURE_LIMIT`` free guesses again. So a budget goes only
    once ``FAILURE_LIMIT`` longest waits have passed since its last failure (the guesses
    that waiting would have earned anyway), or at once if a success reset it. One
    holding wrong approval numbers stays: approving stays off until a sign-in.
    """
    _, longest = app_settings.FAILURE_BACKOFF
    idle_since = now - longest * max(app_settings.FAILURE_LIMIT, 1)
    return FailureBudget.objects.filter(
        Q(last_failure_at__lt=idle_since) | Q(last_failure_at=None, failures=0),
        approval_failures=0,
    )


@dataclass(frozen=True)
class DeliveryReport:
    sent: int
    p50: float | None
    p95: float | None
    p99: float | None
    pending: int
    oldest_pending: float | None
    failed: int


def delivery_report(window: timedelta = timedelta(hours=24)) -> DeliveryReport:
    """Latency from request to sent (seconds) over ``window``, and what waits now."""
    now = clock.now()
    recent = LoginRequest.objects.filter(created_at__gte=now - window)
    durations = (
        recent.filter(sent_at__isnull=False)
        .annotate(latency=F("sent_at") - F("created_at"))
        .values_list("latency", flat=True)
    )
    latencies: list[float] = sorted(d.total_seconds() for d in durations if d is not None)
    pending = recent.filter(delivery__in=(Delivery.PENDING, Delivery.DEFERRED))
    oldest = pending.order_by("created_at").values_list("created_at", flat=True).first()

    def percentile(q: int) -> float | None:
        if not latencies:
            return None
        if len(latencies) == 1:
            return float(latencies[0])
        return float(statistics.quantiles(latencies, n=100, method="inclusive")[q - 1])

    return DeliveryReport(
        sent=len(latencies),
        p50=percentile(50),
        p95=percentile(95),
        p99=percentile(99),
        pending=pending.count(),
        oldest_pending=(now - oldest).total_seconds() if oldest else None,
        failed=recent.filter(delivery=Delivery.FAILED).count(),
    )
