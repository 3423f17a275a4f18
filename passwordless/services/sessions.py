"""Signing in and out, and the pending request remembered in the browser's session."""

from __future__ import annotations

from django.contrib.auth import login, logout
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest

from .. import signals
from ..conf import app_settings
from ..models import LoginRequest

__all__ = [
    "SESSION_LINK_KEY",
    "SESSION_METHOD_KEY",
    "SESSION_REQUEST_KEY",
    "forget_request",
    "pending_request_id",
    "remember_request",
    "sign_in",
    "sign_out",
]

SESSION_REQUEST_KEY = "passwordless_request"
SESSION_LINK_KEY = "passwordless_link"
SESSION_METHOD_KEY = "passwordless_method"


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
    request.session[SESSION_METHOD_KEY] = method
    signals.user_signed_in.send(
        LoginRequest, user=user, login_request=login_request, request=request, method=method
    )


def sign_out(request: HttpRequest) -> None:
    logout(request)
