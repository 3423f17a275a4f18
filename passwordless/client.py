"""What the app records about the client that made a request."""

from __future__ import annotations

from django.http import HttpRequest

__all__ = ["client_ip", "user_agent"]

_MAX_USER_AGENT = 300


def client_ip(request: HttpRequest | None) -> str | None:
    """The peer address. ``X-Forwarded-For`` is ignored: anyone can forge it."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def user_agent(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    return str(request.META.get("HTTP_USER_AGENT", ""))[:_MAX_USER_AGENT]
