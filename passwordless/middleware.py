"""Server-side idle and absolute session timeouts, shorter for staff, and ended devices.

Place after ``AuthenticationMiddleware``. The session is written only when
half of the idle window has passed since it was last renewed, so a busy
session costs no store write per request. Whether its device was ended is asked on
every request: ``backends.SessionModelBackend`` reads the ``UserSession`` row in the
statement that loads the user, at no further cost; with another backend, or a user
loaded before this middleware, ``tracking.is_ended`` answers (the cache, else the row).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import cast

from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from . import clock
from .backends import row_is_live, session_row
from .conf import app_settings
from .errors import SignInError
from .responses import json_error
from .services import current_session, reauthentication, tracking, trusted_devices
from .services.sessions import (
    SESSION_LAST_SEEN_KEY,
    SESSION_SIGNED_IN_AT_KEY,
    SESSION_TRACKING_KEY,
    timeouts_for,
)
from .services.signin import sign_out, track

__all__ = [
    "AdminReauthenticationMiddleware",
    "ServiceUnavailableMiddleware",
    "SessionTimeoutMiddleware",
    "server_error",
]

logger = logging.getLogger("passwordless")


class SessionTimeoutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        # A bearer token's user (BearerTokenMiddleware) is checked by the token's rules.
        if not getattr(request, "auth_claims", None) and _signed_in(request):
            self._enforce(request)
        response = self.get_response(request)
        # A sign-in in this request made the browser a trusted device of its address.
        trusted_devices.write_cookie(request, response)
        return response

    def _enforce(self, request: HttpRequest) -> None:
        session = request.session
        now = clock.now().timestamp()
        idle, absolute = (t.total_seconds() for t in timeouts_for(request.user))
        signed_in_at = session.get(SESSION_SIGNED_IN_AT_KEY)
        last_seen = session.get(SESSION_LAST_SEEN_KEY)
        tracked = session.get(SESSION_TRACKING_KEY)
        if not isinstance(signed_in_at, float | int) or not isinstance(last_seen, float | int):
            # Signed in some other way (the admin's password form): start the clocks now.
            session[SESSION_SIGNED_IN_AT_KEY] = session[SESSION_LAST_SEEN_KEY] = now
            user = cast(AbstractBaseUser, request.user)
            session[SESSION_TRACKING_KEY] = track(request, user, "other").public_id
            session.set_expiry(int(idle))
        elif not isinstance(tracked, str):
            # Its clocks run but no row tracks it: it could never be listed, nor ended.
            sign_out(request, reason="untracked")
        elif _ended(tracked, request.user):
            sign_out(request, reason="ended")  # from another device, by an admin, or row gone
        elif now - last_seen >= idle or now - signed_in_at >= absolute:
            sign_out(request, reason="timeout")
        elif now - last_seen >= idle / 2:
            session[SESSION_LAST_SEEN_KEY] = now
            session.set_expiry(int(idle))
            tracking.seen(tracked)


# Step-up (re-authentication) for the admin.


class AdminReauthenticationMiddleware:
    """Every admin page that changes data (a POST: add, change, delete, actions, password
    forms) needs a fresh proof (``REAUTHENTICATION_TIMEOUT``); place after
    ``AuthenticationMiddleware`` and ``SessionTimeoutMiddleware``.

    A stale session's POST is not run: the browser goes to the step-up page, and back to
    the same admin page (a GET) after, to make the change again. Nothing is replayed, so
    a form sent with a stale proof changes nothing, ever. Every ``AdminSite`` is covered
    (their URLs share the ``admin`` application namespace), wherever it is mounted; its
    sign-in and sign-out are not (signing out is never held back).
    """

    EXEMPT = frozenset({"login", "logout"})

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: object, args: object, kwargs: object
    ) -> HttpResponseBase | None:
        match = request.resolver_match
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE") or match is None:
            return None
        if match.app_name != "admin" or match.url_name in self.EXEMPT:
            return None
        if not request.user.is_authenticated:
            return None  # the admin sends it to sign in
        row = current_session(request)
        if not reauthentication.step_up_needed(request, row, "admin_change"):
            return None
        messages.info(
            request,
            _("Confirm it's you to continue. Nothing was changed yet: do it again after."),
            fail_silently=True,
        )
        query = urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(f"{reverse('passwordless:reauthenticate')}?{query}")


def _signed_in(request: HttpRequest) -> bool:
    """``request.user.is_authenticated``, the first read of which loads the user: the
    session's row is named for ``SessionModelBackend`` to read with it. The session is
    the one ``get_user`` reads anyway (nothing to load without a cookie)."""
    session = getattr(request, "session", None)
    tracked = session.get(SESSION_TRACKING_KEY) if session is not None else None
    token = session_row.set(tracked if isinstance(tracked, str) else None)
    try:
        return bool(request.user.is_authenticated)
    finally:
        session_row.reset(token)


def _ended(tracked: str, user: object) -> bool:
    """Whether the session's device was ended, or its row is gone: the answer read with the
    user, else ``tracking.is_ended``."""
    live = row_is_live(user, tracked)
    return tracking.is_ended(tracked, user) if live is None else not live


def _dependency_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [DatabaseError]
    # redis and django_redis are optional dependencies (the "redis" extra): imported only
    # to catch their errors when they are installed.
    try:
        from redis.exceptions import RedisError

        errors.append(RedisError)
    except ImportError:  # pragma: no cover - redis is optional for the app
        pass
    try:
        from django_redis.exceptions import ConnectionInterrupted

        errors.append(ConnectionInterrupted)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


class ServiceUnavailableMiddleware:
    """A database or Redis that does not answer gives a calm 503, never a traceback.

    This covers views; for failures in other middleware (the session store, read
    while authenticating) set ``handler500 = "passwordless.middleware.server_error"``.
    The page is rendered without the request's context: the session and the user
    may be exactly what cannot be loaded.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.errors = _dependency_errors()

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        return unavailable(request, exception) if isinstance(exception, self.errors) else None


def server_error(request: HttpRequest) -> HttpResponseBase:
    """``handler500`` for projects: a dependency that failed outside a view (the session
    store, read by a middleware) still gets the calm 503; anything else a plain 500."""
    exc = sys.exc_info()[1]
    if exc is not None and isinstance(exc, _dependency_errors()):
        return unavailable(request, exc)
    return HttpResponse(render_to_string("500.html"), status=500)


def unavailable(request: HttpRequest, exc: BaseException) -> HttpResponseBase:
    logger.error("dependency unavailable: %s on %s", type(exc).__name__, request.path)
    error = SignInError("service_unavailable")
    if request.path_info.startswith(app_settings.BEARER_PATH_PREFIXES):
        response: HttpResponseBase = json_error(error)
    else:
        body = render_to_string("passwordless/unavailable.html", {"error": error})
        response = HttpResponse(body, status=503)
    response["Retry-After"] = "30"
    response["Cache-Control"] = "no-store"
    return response
