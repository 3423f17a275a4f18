"""The browser's side of a sign-in: the pending request its session remembers, the cookie
that binds it to the request it started, and the session timeouts. Signing in and out is
``signin``'s."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from ..conf import app_settings
from ..crypto import digests_equal, hash_binding, pkce_matches
from ..models import LoginRequest, UserSession

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
    "remember_request",
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
    return public_id == login_request.public_id and digests_equal(
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


def current_session(request: HttpRequest) -> UserSession | None:
    """The tracked device this request comes from (its browser session)."""
    public_id = request.session.get(SESSION_TRACKING_KEY) if hasattr(request, "session") else None
    if not isinstance(public_id, str):
        return None
    return UserSession.objects.select_related("family", "user").filter(public_id=public_id).first()
