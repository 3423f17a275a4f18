"""Read-only admin views of sign-in requests. They never show a code, token or hash."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .addresses import mask_email
from .models import LoginRequest


@admin.register(LoginRequest)
class LoginRequestAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
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
    )
    readonly_fields = fields

    @admin.display(description="email", ordering="email")
    def masked_email(self, obj: LoginRequest) -> str:
        return mask_email(obj.email)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LoginRequest | None = None) -> bool:
        return False
