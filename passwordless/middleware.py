"""Server-side idle and absolute session timeouts, shorter for staff.

Place after ``AuthenticationMiddleware``. The session is written only when
half of the idle window has passed since it was last renewed, so a busy
session costs no store write per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest, HttpResponseBase

from . import clock
from .services import tracking
from .services.sessions import (
    SESSION_LAST_SEEN_KEY,
    SESSION_SIGNED_IN_AT_KEY,
    SESSION_TRACKING_KEY,
    sign_out,
    timeouts_for,
)

__all__ = ["SessionTimeoutMiddleware"]


class SessionTimeoutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.user.is_authenticated and not getattr(request, "auth_claims", None):
            self._enforce(request)
        return self.get_response(request)

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
            session[SESSION_TRACKING_KEY] = tracking.track(request, user, "other").public_id
            session.set_expiry(int(idle))
        elif isinstance(tracked, str) and tracking.is_ended(tracked):
            sign_out(request, reason="ended")  # ended from another device, or by an admin
        elif now - last_seen >= idle or now - signed_in_at >= absolute:
            sign_out(request, reason="timeout")
        elif now - last_seen >= idle / 2:
            session[SESSION_LAST_SEEN_KEY] = now
            session.set_expiry(int(idle))
            if isinstance(tracked, str):
                tracking.seen(tracked)
