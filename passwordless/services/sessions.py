"""Signing in and out, and the pending request remembered in the browser's session."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import login, logout
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest

from .. import audit, clock, signals
from ..conf import app_settings
from ..models import AuthEvent, LoginRequest

__all__ = [
    "SESSION_LAST_SEEN_KEY",
    "SESSION_LINK_KEY",
    "SESSION_METHOD_KEY",
    "SESSION_REQUEST_KEY",
    "SESSION_SIGNED_IN_AT_KEY",
    "forget_request",
    "pending_request_id",
    "remember_request",
    "sign_in",
    "sign_out",
    "timeouts_for",
]

SESSION_REQUEST_KEY = "passwordless_request"
SESSION_LINK_KEY = "passwordless_link"
SESSION_METHOD_KEY = "passwordless_method"
SESSION_SIGNED_IN_AT_KEY = "passwordless_signed_in_at"
SESSION_LAST_SEEN_KEY = "passwordless_last_seen"


def timeouts_for(user: object) -> tuple[timedelta, timedelta]:
    """The idle and absolute session timeouts that apply to ``user``."""
    if getattr(user, "is_staff", False):
        return app_settings.STAFF_SESSION_IDLE_TIMEOUT, app_settings.STAFF_SESSION_ABSOLUTE_TIMEOUT
    return app_settings.SESSION_IDLE_TIMEOUT, app_settings.SESSION_ABSOLUTE_TIMEOUT


def remember_request(request: HttpRequest, login_request: LoginRequest) -> None:
    """Remember which request this browser started, for the code page."""
    request.session[SESSION_REQUEST_KEY] = login_request.public_id


def pending_request_id(request: HttpRequest) -> str | None:
    value = request.session.get(SESSION_REQUEST_KEY)
    return value if isinstance(value, str) else None


def forget_request(request: HttpRequest) -> None:
    for key in (SESSION_REQUEST_KEY, SESSION_LINK_KEY):
        request.session.pop(key, None)


def sign_in(
    request: HttpRequest, user: AbstractBaseUser, login_request: LoginRequest, method: str
) -> None:
    """Every sign-in ends here: ``login()`` cycles the session key and rotates the CSRF token."""
    # Any AUTH_USER_MODEL is accepted; the stubs only know the configured one.
    login(request, user, backend=app_settings.AUTH_BACKEND)  # type: ignore[arg-type]
    forget_request(request)
    now = clock.now().timestamp()
    request.session[SESSION_METHOD_KEY] = method
    request.session[SESSION_SIGNED_IN_AT_KEY] = now
    request.session[SESSION_LAST_SEEN_KEY] = now
    idle, _ = timeouts_for(user)
    request.session.set_expiry(int(idle.total_seconds()))
    audit.record(
        AuthEvent.Kind.SIGNED_IN,
        request=request,
        login_request=login_request,
        user=user,
        method=method,
    )
    signals.user_signed_in.send(
        LoginRequest, user=user, login_request=login_request, request=request, method=method
    )


def sign_out(request: HttpRequest, reason: str = "") -> None:
    """End the session on the server (``logout()`` flushes it), and record why."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        audit.record(AuthEvent.Kind.SIGNED_OUT, request=request, user=user, reason=reason)
        signals.user_signed_out.send(LoginRequest, user=user, request=request)
    logout(request)
