"""Step-up ("sudo mode"): whether a session's last proof is fresh, and recording one.

A sensitive action (ending other sessions, changing the address, adding or removing a
passkey, changing data in the admin) needs a proof younger than
``REAUTHENTICATION_TIMEOUT``: a passkey assertion or a newly emailed code, given by
*this* session. The proof is kept on the session's ``UserSession`` row
(``reauthenticated_at``), so it is bound to that session and ends with it; the sign-in
counts as a proof from the moment it happened, and no longer than the window.
"""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest

from .. import clock, signals
from ..adapter import get_adapter
from ..conf import app_settings
from ..models import UserSession

__all__ = ["is_fresh", "last_proof_at", "record_proof", "step_up_needed"]


def last_proof_at(user_session: UserSession) -> datetime:
    """When this session last proved who is at it: its step-up, or else its sign-in."""
    proof = user_session.reauthenticated_at
    return max(proof, user_session.created_at) if proof else user_session.created_at


def is_fresh(user_session: UserSession | None, now: datetime | None = None) -> bool:
    """Whether the session may do a sensitive thing now. No session (a user signed in by
    some other means than this app, with no row) never is: it must step up first."""
    if user_session is None or user_session.ended_at is not None:
        return False
    return (now or clock.now()) - last_proof_at(
        user_session
    ) < app_settings.REAUTHENTICATION_TIMEOUT


def record_proof(
    user_session: UserSession, method: str, request: HttpRequest | None = None
) -> None:
    """Record a fresh proof on the session that gave it (``method``: ``"passkey"`` or
    ``"code"``). Call only once the proof was checked for this very session."""
    now = clock.now()
    UserSession.objects.filter(pk=user_session.pk).update(reauthenticated_at=now)
    user_session.reauthenticated_at = now
    signals.reauthenticated.send(
        UserSession,
        user=user_session.user,
        user_session=user_session,
        method=method,
        request=request,
    )


def step_up_needed(
    request: HttpRequest | None, user_session: UserSession | None, action: str
) -> bool:
    """Whether ``action`` must wait for a step-up: the adapter says it is sensitive
    (``needs_reauthentication``) and the session's proof is not fresh. Every surface
    (pages, the JSON API, the admin) asks this, so they cannot disagree."""
    return get_adapter().needs_reauthentication(request, action) and not is_fresh(user_session)
