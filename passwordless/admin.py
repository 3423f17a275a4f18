"""Read-only admin views of requests, events and sessions, and a small dashboard.

No page, list or export shows a code, token or hash: the hashed fields are simply
never listed. Actions call the service layer, and each declares the permission it needs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename, get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncHour
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from . import clock, services
from .addresses import mask_email
from .models import AuthEvent, LoginRequest, UserSession


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The audit trail is evidence: nobody edits it from the admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LoginRequest)
class LoginRequestAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "masked_email",
        "user",
        "status",
        "delivery",
        "attempts",
        "requester_ip",
        "created_at",
        "expires_at",
    )
    list_filter = ("status", "delivery", "created_at")
    search_fields = ("email",)
    date_hierarchy = "created_at"
    fields = (
        "email",
        "user",
        "status",
        "delivery",
        "attempts",
        "sends",
        "created_at",
        "expires_at",
        "sent_at",
        "completed_at",
        "requester_ip",
        "user_agent",
        "next_url",
        "approved_at",
        "approver_ip",
        "approver_user_agent",
    )
    readonly_fields = fields

    @admin.display(description="email", ordering="email")
    def masked_email(self, obj: LoginRequest) -> str:
        return mask_email(obj.email)


@admin.register(AuthEvent)
class AuthEventAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "kind",
        "count",
        "reason",
        "method",
        "masked_email",
        "user",
        "ip",
    )
    list_filter = ("kind", "method", "created_at")
    search_fields = ("user__email", "masked_email", "ip", "reason")
    date_hierarchy = "created_at"
    fields = (
        "created_at",
        "kind",
        "count",
        "reason",
        "method",
        "masked_email",
        "user",
        "login_request",
        "ip",
        "user_agent",
        "details",
    )
    readonly_fields = fields

    def get_urls(self) -> list[Any]:
        dashboard = self.admin_site.admin_view(self.dashboard_view)
        return [
            path("dashboard/", dashboard, name="passwordless_dashboard"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        """The last 24 hours at a glance, with an hourly chart drawn in SVG: for staff who
        may view the events it counts (the events' list and the app's page link it)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        since = clock.now() - timedelta(hours=24)
        events = AuthEvent.objects.filter(created_at__gte=since)
        # A row of refused requests counts every refusal of its window (``AuthEvent.count``).
        counts = dict(events.values_list("kind").annotate(n=Sum("count")).values_list("kind", "n"))
        hourly = (
            events.filter(kind__in=("signed_in", "failed"))
            .annotate(hour=TruncHour("created_at"))
            .values_list("hour", "kind")
            .annotate(n=Count("id"))
        )
        bars: dict[Any, dict[str, int]] = {}
        for hour, kind, n in hourly:
            bars.setdefault(hour, {"signed_in": 0, "failed": 0})[kind] = n
        peak = max([1, *(v for bar in bars.values() for v in bar.values())])
        chart = []
        for i, (hour, bar) in enumerate(sorted(bars.items())):
            tall_in = bar["signed_in"] * 100 // peak
            tall_failed = bar["failed"] * 100 // peak
            chart.append(
                {
                    "hour": hour,
                    "signed_in": bar["signed_in"],
                    "failed": bar["failed"],
                    "x": i * 24,
                    "x_failed": i * 24 + 11,
                    "height_in": tall_in,
                    "y_in": 110 - tall_in,
                    "height_failed": tall_failed,
                    "y_failed": 110 - tall_failed,
                }
            )
        outbox = LoginRequest.objects.filter(created_at__gte=since)
        context = {
            **self.admin_site.each_context(request),
            "title": "Sign-in dashboard (last 24 hours)",
            "numbers": [
                ("Sign-ins", counts.get("signed_in", 0)),
                ("Refused codes and links", counts.get("failed", 0)),
                ("Requests locked", counts.get("locked", 0)),
                ("Rate limited", counts.get("rate_limited", 0)),
                ("Emails failed", outbox.filter(delivery="failed").count()),
                ("Emails pending", outbox.filter(delivery__in=("pending", "deferred")).count()),
            ],
            "chart": chart,
            "chart_width": max(len(chart) * 24, 24),
        }
        return TemplateResponse(request, "admin/passwordless/dashboard.html", context)


@admin.register(UserSession)
class UserSessionAdmin(ReadOnlyAdmin):
    list_display = ("user", "kind", "device", "network", "method", "created_at", "last_seen_at")
    list_filter = ("kind", "method", ("ended_at", admin.EmptyFieldListFilter))
    search_fields = ("user__email", "device")
    date_hierarchy = "created_at"
    fields = (
        "user",
        "kind",
        "device",
        "user_agent",
        "network",
        "method",
        "created_at",
        "last_seen_at",
        "ended_at",
        "ended_reason",
    )
    readonly_fields = fields
    actions = ("end_sessions",)

    def has_end_permission(self, request: HttpRequest) -> bool:
        """Ending a session changes its row: Django's change permission on sessions, which
        this read-only admin otherwise never uses."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}")

    @admin.action(description="End the selected sessions", permissions=["end"])
    def end_sessions(self, request: HttpRequest, queryset: QuerySet[UserSession]) -> None:
        rows = skip_privileged(
            self, request, queryset.filter(ended_at=None), "user__", "session(s) of staff"
        )
        ended = list(rows.select_related("family", "user"))
        for row in ended:
            services.end_session(row, reason="admin")
        self.message_user(request, f"Ended {len(ended)} session(s).", messages.SUCCESS)


def skip_privileged(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[Any],
    user_path: str,
    what: str,
) -> QuerySet[Any]:
    """The rows of ``queryset`` this admin may act on: all of them for a superuser; for
    anyone else, those of accounts that are neither staff nor superuser, the others reported
    as skipped ("Skipped 2 ``what``") and left untouched. Only a superuser acts on staff: their
    address is the credential to rights. ``user_path`` leads from a row to its account
    (``"user__"``, or ``""`` for the user model itself); projects' admins use it too."""
    if getattr(request.user, "is_superuser", False):
        return queryset
    allowed = queryset.exclude(privileged(user_path))
    skipped = queryset.count() - allowed.count()
    if skipped:
        model_admin.message_user(
            request,
            f"Skipped {skipped} {what}: only a superuser may act on them.",
            messages.WARNING,
        )
    return allowed


def privileged(user_path: str = "") -> Q:
    """Staff or superuser accounts, by the flags the user model has."""
    names = {field.name for field in get_user_model()._meta.get_fields()}
    found = Q(pk__in=[])
    for flag in ("is_staff", "is_superuser"):
        if flag in names:
            found |= Q(**{f"{user_path}{flag}": True})
    return found
