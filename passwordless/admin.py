"""Read-only admin views of requests, events and sessions, and a small dashboard.

No page, list or export shows a code, token or hash: the hashed fields are simply
never listed. Actions call the service layer, and each declares the permission it needs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename, get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncHour
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext, gettext_lazy

from . import clock, services
from .addresses import mask_email
from .models import AuthEvent, Invitation, LoginRequest, UserSession
from .services import invitations


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

    @admin.display(description=gettext_lazy("email"), ordering="email")
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
            "title": gettext("Sign-in dashboard (last 24 hours)"),
            "numbers": [
                (gettext("Sign-ins"), counts.get("signed_in", 0)),
                (gettext("Refused codes and links"), counts.get("failed", 0)),
                (gettext("Requests locked"), counts.get("locked", 0)),
                (gettext("Rate limited"), counts.get("rate_limited", 0)),
                (gettext("Emails failed"), outbox.filter(delivery="failed").count()),
                (
                    gettext("Emails pending"),
                    outbox.filter(delivery__in=("pending", "deferred")).count(),
                ),
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

    @admin.action(description=gettext_lazy("End the selected sessions"), permissions=["end"])
    def end_sessions(self, request: HttpRequest, queryset: QuerySet[UserSession]) -> None:
        rows = skip_privileged(
            self, request, queryset.filter(ended_at=None), "user__", gettext("session(s) of staff")
        )
        ended = list(rows.select_related("family", "user"))
        for row in ended:
            services.end_session(row, reason="admin")
        self.message_user(
            request,
            gettext("Ended %(count)d session(s).") % {"count": len(ended)},
            messages.SUCCESS,
        )


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
            gettext("Skipped %(count)d %(what)s: only a superuser may act on them.")
            % {"count": skipped, "what": what},
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


# issue 18, sign-up: invitations. Staff add addresses; the worker mails each its link.


class InvitationForm(forms.Form):
    """The addresses to invite, one a line (or separated by commas)."""

    emails = forms.CharField(
        label=gettext_lazy("Email addresses"),
        widget=forms.Textarea(attrs={"rows": 8, "cols": 60}),
        help_text=gettext_lazy(
            "One a line. Each gets an email with a link that lets that address, and only "
            "it, create an account."
        ),
        max_length=100_000,
    )

    def addresses(self) -> list[str]:
        text = self.cleaned_data["emails"].replace(",", "\n")
        return [line.strip() for line in text.splitlines() if line.strip()]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Invitations: added from a list of addresses, sent again, withdrawn (deleted). No
    page shows a token or its hash; the link is only ever in the invitee's email."""

    list_display = ("email", "invited_by", "created_at", "expires_at", "sent_at", "used_at")
    list_filter = (("used_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("email",)
    date_hierarchy = "created_at"
    fields = ("email", "invited_by", "created_at", "expires_at", "sent_at", "used_at")
    readonly_fields = fields
    actions = ("send_again",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = InvitationForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            staff: Any = request.user
            done = invitations.invite(form.addresses(), invited_by=staff, request=request)
            self._report(request, done)
            return HttpResponseRedirect(reverse("admin:passwordless_invitation_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Invite people to sign up"),
            "form": form,
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/passwordless/invitation/add.html", context)

    def _report(self, request: HttpRequest, done: invitations.Invited) -> None:
        if done.sent:
            self.message_user(
                request,
                gettext("Sent %(count)d invitation(s).") % {"count": len(done.sent)},
                messages.SUCCESS,
            )
        if done.existing:
            self.message_user(
                request,
                gettext("Already have an account, so not invited: %(emails)s")
                % {"emails": ", ".join(done.existing)},
                messages.WARNING,
            )
        if done.invalid:
            self.message_user(
                request,
                gettext("Not email addresses, so not invited: %(emails)s")
                % {"emails": ", ".join(done.invalid)},
                messages.ERROR,
            )

    @admin.action(
        description=gettext_lazy("Send the selected invitations again"), permissions=["add"]
    )
    def send_again(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        sent = invitations.send_again(queryset, request=request)
        self.message_user(
            request,
            gettext("Sent %(count)d invitation(s) again, each with a new link.") % {"count": sent},
            messages.SUCCESS,
        )
