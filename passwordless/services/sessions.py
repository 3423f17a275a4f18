"""Signing in and out, and the pending request remembered in the browser's session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest, HttpResponseBase

from .. import audit, clock, signals
from ..conf import app_settings
from ..crypto import codes_match, hash_binding, pkce_matches
from ..models import AuthEvent, LoginRequest, UserSession
from . import trusted_devices

__all__ = [
    "SESSION_LAST_SEEN_KEY",
    "SESSION_LINK_KEY",
    "SESSION_METHOD_KEY",
    "SESSION_REQUEST_KEY",
    "SESSION_SIGNED_IN_AT_KEY",
    "SESSION_TRACKING_KEY",
    "Started",
    "bind_browser",
    "binding_cookie_name",
    "current_session",
    "forget_request",
    "is_bound",
    "is_requesting_client",
    "pending_request_id",
    "record_sign_in",
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
SESSION_TRACKING_KEY = "passwordless_session"


@dataclass(frozen=True)
class Started:
    """A request just started, and the binding secret for the cookie of the browser that asked.

    ``binding`` is ``None`` when the request is not new (a resend): the cookie
    the browser holds already binds it.
    """

    login_request: LoginRequest
    binding: str | None


def binding_cookie_name() -> str:
    # __Host-: only over HTTPS, for this host, path / (no subdomain can set or read it).
    return ("__Host-" if settings.SESSION_COOKIE_SECURE else "") + "passwordless_binding"


def bind_browser(response: HttpResponseBase, started: Started) -> None:
    """Give the browser that asked the cookie that proves it, for the link and for approval."""
    if started.binding is None:
        return
    response.set_cookie(
        binding_cookie_name(),
        f"{started.login_request.public_id}.{started.binding}",
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )


def is_bound(request: HttpRequest | None, login_request: LoginRequest) -> bool:
    """Whether this browser is the one that started ``login_request``."""
    if request is None or not login_request.binding_hash:
        return False
    public_id, _, binding = request.COOKIES.get(binding_cookie_name(), "").partition(".")
    return public_id == login_request.public_id and codes_match(
        login_request.binding_hash, hash_binding(binding)
    )


def is_requesting_client(
    request: HttpRequest | None, login_request: LoginRequest, code_verifier: str | None
) -> bool:
    """Whether the caller is the client that started ``login_request``: the browser holding
    its binding cookie, or the API client holding the verifier of the PKCE challenge it
    sent (RFC 7636). Holding the link, the request id or the code proves neither."""
    if is_bound(request, login_request):
        return True
    return bool(code_verifier) and pkce_matches(login_request.code_challenge, code_verifier or "")


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
    request: HttpRequest,
    user: AbstractBaseUser,
    login_request: LoginRequest,
    method: str,
    *,
    savepoint: bool = True,
) -> None:
    """Every sign-in ends here: ``login()`` cycles the session key and rotates the CSRF token.

    The device row, ``last_login`` and the audit event are written in one transaction:
    all or nothing, and one commit instead of three. ``savepoint=False`` (``signing_in``)
    when the caller's transaction ends with any failure here, as a verification's does:
    four statements fewer. A caller that catches the error inside a transaction of its own
    (``ATOMIC_REQUESTS``) needs the savepoint.
    """
    from .tracking import track

    with transaction.atomic(savepoint=savepoint):
        tracked = track(request, user, method)
        # Any AUTH_USER_MODEL is accepted; the stubs only know the configured one.
        login(request, user, backend=app_settings.AUTH_BACKEND)  # type: ignore[arg-type]
        forget_request(request)
        now = clock.now().timestamp()
        request.session[SESSION_TRACKING_KEY] = tracked.public_id
        request.session[SESSION_METHOD_KEY] = method
        request.session[SESSION_SIGNED_IN_AT_KEY] = now
        request.session[SESSION_LAST_SEEN_KEY] = now
        idle, _ = timeouts_for(user)
        request.session.set_expiry(int(idle.total_seconds()))
        record_sign_in(request, user, login_request, method)
    trusted_devices.remember(request, login_request.email)


def signing_in(
    request: HttpRequest, method: str
) -> Callable[[LoginRequest, AbstractBaseUser], None]:
    """``sign_in`` as the ``then`` of a verification, so both commit together."""

    def then(login_request: LoginRequest, user: AbstractBaseUser) -> None:
        sign_in(request, user, login_request, method, savepoint=False)

    return then


def record_sign_in(
    request: HttpRequest | None,
    user: AbstractBaseUser,
    login_request: LoginRequest,
    method: str,
    reason: str = "",
) -> None:
    """The audit event and signal of a sign-in, by session or (``reason="jwt"``) by tokens."""
    audit.record(
        AuthEvent.Kind.SIGNED_IN,
        request=request,
        login_request=login_request,
        user=user,
        method=method,
        reason=reason,
        details=audit.devices(login_request) if login_request.approved_at else None,
    )
    signals.user_signed_in.send(
        LoginRequest, user=user, login_request=login_request, request=request, method=method
    )


def sign_out(request: HttpRequest, reason: str = "") -> None:
    """End the session on the server (``logout()`` flushes it), and record why."""
    from .tracking import end_session

    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        tracked = current_session(request)
        if tracked is not None:
            end_session(tracked, reason=reason or "signed_out")
        audit.record(AuthEvent.Kind.SIGNED_OUT, request=request, user=user, reason=reason)
        signals.user_signed_out.send(LoginRequest, user=user, request=request)
    logout(request)


def current_session(request: HttpRequest) -> UserSession | None:
    """The tracked device this request comes from (its browser session)."""
    public_id = request.session.get(SESSION_TRACKING_KEY) if hasattr(request, "session") else None
    if not isinstance(public_id, str):
        return None
    return UserSession.objects.select_related("family", "user").filter(public_id=public_id).first()
