"""Signing in and out: every sign-in, by session or by tokens, ends in this module.

A sign-in records its session (``track``, within ``MAX_SESSIONS``), then either logs the
browser in (``sign_in``) or issues a token family (``sign_in_with_tokens``), and records
the event, in one transaction. A completion (``verification.complete_code``,
``complete_link``, ``approval.collect_approval``) signs in through a finisher,
``BrowserSession`` or ``ApiTokens``, inside its own transaction. It sits above
``tracking``, ``tokens`` and ``revocation``, which never import it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.http import HttpRequest

from .. import audit, clock, signals
from ..client import client_ip, mask_ip, user_agent
from ..conf import app_settings
from ..devices import describe_user_agent
from ..errors import SignInError
from ..models import AuthEvent, LoginRequest, TokenFamily, UserSession
from . import trusted_devices
from .mail import queue_new_sign_in_email
from .revocation import end_session
from .sessions import (
    SESSION_LAST_SEEN_KEY,
    SESSION_METHOD_KEY,
    SESSION_SIGNED_IN_AT_KEY,
    SESSION_TRACKING_KEY,
    current_session,
    forget_request,
    timeouts_for,
)
from .tokens import TokenPair, issue_family
from .tracking import active_sessions

__all__ = [
    "ApiTokens",
    "BrowserSession",
    "end_own_session",
    "record_sign_in",
    "sign_in",
    "sign_in_with_tokens",
    "sign_out",
    "track",
]


def track(
    request: HttpRequest | None,
    user: AbstractBaseUser,
    method: str,
    family: TokenFamily | None = None,
) -> UserSession:
    """Record a new session, keeping the user within ``MAX_SESSIONS``.

    Beyond the cap the oldest session is ended; with ``SESSION_LIMIT_POLICY = "refuse"``
    the new sign-in is refused instead. The user is emailed about the new session (one
    notice, after commit) when it ended others, or when it comes from a device not seen
    before (``trusted_devices.is_known_device``: a browser without the account's
    trusted-device cookie, or an API client) and ``NOTIFY_NEW_SIGN_IN`` is on. Not for
    the account's very first session (its sign-up): there is no "before" to tell it from.
    """
    agent = user_agent(request)
    # The cookie's check is an HMAC; only a device it does not vouch for pays for the
    # "any session before?" read, inside the statement that locks the user anyway.
    ask_history = app_settings.NOTIFY_NEW_SIGN_IN and not trusted_devices.is_known_device(
        request, user
    )
    with transaction.atomic(savepoint=False):  # a refusal aborts the sign-in around it whole
        # A device not seen before, on an account that had sessions before.
        new_device = _lock_user(user, ask_history)
        active = active_sessions(user)
        over = len(active) + 1 - app_settings.MAX_SESSIONS
        if over > 0 and app_settings.SESSION_LIMIT_POLICY == "refuse":
            raise SignInError("too_many_sessions")
        row = UserSession.objects.create(
            user_id=user.pk,
            kind=UserSession.Kind.TOKENS if family else UserSession.Kind.BROWSER,
            family=family,
            method=method,
            device=describe_user_agent(agent),
            user_agent=agent,
            network=mask_ip(client_ip(request)),
        )
        ended = sorted(active, key=lambda r: r.created_at)[: max(over, 0)]
    for oldest in ended:
        end_session(oldest, reason="session_limit")
    if ended or new_device:
        queue_new_sign_in_email(row, ended_sessions=len(ended), new_device=new_device)
    return row


def _lock_user(user: AbstractBaseUser, ask_history: bool) -> bool:
    """Lock the user's row: concurrent sign-ins of one user wait here for each other's
    commit, or each would count the same sessions and all insert beyond the cap. With
    ``ask_history``, also say whether the account had any session before (rows are never
    deleted, ended ones included), in the same statement."""
    locked = get_user_model()._default_manager.select_for_update().filter(pk=user.pk)
    if not ask_history:
        list(locked.values("pk"))
        return False
    before = UserSession.objects.filter(user_id=OuterRef("pk"))
    return any(locked.values_list(Exists(before), flat=True))


def sign_in(
    request: HttpRequest, user: AbstractBaseUser, login_request: LoginRequest | None, method: str
) -> None:
    """Every sign-in ends here: ``login()`` cycles the session key and rotates the CSRF token.

    ``login_request`` is the emailed request completed; ``None`` for a passkey, which has
    none (``services.passkeys``).

    The session row, ``last_login`` and the audit event are written in one transaction:
    all or nothing, and one commit instead of three. Inside a caller's transaction this
    is a savepoint, so a caller that catches a refusal (``ATOMIC_REQUESTS``) goes on; a
    completion's ``BrowserSession`` skips it, its transaction ending with any failure.
    """
    with transaction.atomic():
        _log_in(request, user, login_request, method)
    trusted_devices.remember(request, _address(user, login_request))


def _address(user: AbstractBaseUser, login_request: LoginRequest | None) -> str:
    """The address the browser becomes a trusted device of: the request's, or the account's."""
    if login_request is not None:
        return login_request.email
    return str(getattr(user, user.get_email_field_name()) or "")


def _log_in(
    request: HttpRequest, user: AbstractBaseUser, login_request: LoginRequest | None, method: str
) -> None:
    """The writes of ``sign_in``; call inside a transaction."""
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


@dataclass(frozen=True)
class BrowserSession:
    """A completion's finisher that signs the browser in (``login()``): see ``sign_in``.

    ``finish`` runs inside the completion's transaction, which any failure here ends
    whole: no savepoint of its own (statements fewer than ``sign_in`` nested).
    """

    request: HttpRequest
    method: str

    def finish(self, login_request: LoginRequest, user: AbstractBaseUser) -> TokenPair | None:
        _log_in(self.request, user, login_request, self.method)
        trusted_devices.remember(self.request, login_request.email)
        return None


@dataclass(frozen=True)
class ApiTokens:
    """A completion's finisher that issues a token pair instead of a session (the API's
    ``mode: "jwt"``): see ``sign_in_with_tokens``. Runs inside the completion's
    transaction, like ``BrowserSession``."""

    request: HttpRequest | None
    method: str

    def finish(self, login_request: LoginRequest, user: AbstractBaseUser) -> TokenPair | None:
        return _issue_tokens(self.request, user, login_request, self.method)


def record_sign_in(
    request: HttpRequest | None,
    user: AbstractBaseUser,
    login_request: LoginRequest | None,
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
        details=audit.devices(login_request)
        if login_request is not None and login_request.approved_at
        else None,
    )
    signals.user_signed_in.send(
        LoginRequest, user=user, login_request=login_request, request=request, method=method
    )


def sign_out(request: HttpRequest, reason: str = "") -> None:
    """End the session on the server (``logout()`` flushes it), and record why."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        tracked = current_session(request)
        if tracked is not None:
            end_session(tracked, reason=reason or "signed_out")
        audit.record(AuthEvent.Kind.SIGNED_OUT, request=request, user=user, reason=reason)
        signals.user_signed_out.send(LoginRequest, user=user, request=request)
    logout(request)


def sign_in_with_tokens(
    request: HttpRequest | None,
    user: AbstractBaseUser,
    login_request: LoginRequest | None,
    method: str,
) -> TokenPair:
    """The API's ``mode: "jwt"`` sign-in: a token pair instead of a session.

    One commit for the family, its token, the session and the event; a savepoint inside a
    caller's transaction, as in ``sign_in``.
    """
    with transaction.atomic():
        return _issue_tokens(request, user, login_request, method)


def _issue_tokens(
    request: HttpRequest | None,
    user: AbstractBaseUser,
    login_request: LoginRequest | None,
    method: str,
) -> TokenPair:
    pair, family = issue_family(user)
    track(request, user, method, family=family)
    record_sign_in(request, user, login_request, method, reason="jwt")
    return pair


def end_own_session(request: HttpRequest, target: UserSession) -> bool:
    """End one of the caller's sessions, from the sessions page or the API.

    Ending the caller's own browser session signs it out (``sign_out``), so the page it
    is on does not go on as a session that no longer exists; any other session (a token
    client too, the caller's own included) is ended by ``revocation.end_session``.
    Returns whether the caller was signed out.
    """
    current = current_session(request)
    if current is not None and current.pk == target.pk and target.family_id is None:
        sign_out(request, reason="signed_out")
        return True
    end_session(target, reason="ended_by_user")
    return False
